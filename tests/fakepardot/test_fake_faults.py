"""Contract: injected faults — what a client must survive besides Pardot's own errors
(PARDOT_API.md, "Responses": a body with no @attributes/rsp is an error, never success)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import httpx
import pytest

from fakepardot import DEMO, FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot


def _wait_for_calls(fake: FakePardot, count: int, timeout_s: float = 5.0) -> None:
    """Requests finish on the fake's own loop; wait (bounded) until it logged them."""
    waiter = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if len(fake.state.calls) >= count:
            return
        waiter.wait(0.01)
    raise AssertionError(f"fake logged {len(fake.state.calls)} calls, expected {count}")


def test_html_502_is_a_proxy_page_then_service_resumes(v4: Pardot, fake: FakePardot) -> None:
    fake.state.inject("html_502")
    response = v4.call("query")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert b"502 Bad Gateway" in response.content
    assert b"@attributes" not in response.content
    v4.ok("query")


def test_http_500(v4: Pardot, fake: FakePardot) -> None:
    fake.state.inject("http_500")
    assert v4.call("query").status_code == 500
    v4.ok("query")


def test_empty_200(v4: Pardot, fake: FakePardot) -> None:
    fake.state.inject("empty_200")
    response = v4.call("create", "email", "e@example.com")
    assert (response.status_code, response.content) == (200, b"")
    assert fake.state.prospects("v4") == []  # nothing behind the fault ran


@pytest.mark.parametrize(
    ("err_code", "http_status", "text"),
    [
        (
            66,
            200,
            "You have exceeded your concurrent request limit.  Please wait, before trying again",
        ),
        (184, 401, "access_token is invalid, unknown, or malformed: Inactive token"),
        (71, 400, "Input needs to be valid JSON or XML"),
        (85, 200, "Unable to save the prospect"),
    ],
)
def test_err_is_a_pardot_error_with_its_usual_status(
    v4: Pardot, fake: FakePardot, err_code: int, http_status: int, text: str
) -> None:
    fake.state.inject("err", err_code=err_code)
    assert v4.fails(err_code, "query", http_status=http_status) == text
    v4.ok("query")


def test_err_in_xml(v4: Pardot, fake: FakePardot) -> None:
    fake.state.inject("err", err_code=121)
    response = v4.call("query", fmt="xml")
    assert b'<err code="121">Unable to sync Prospect with Salesforce</err>' in response.content


def test_times_and_path_contains_select_the_faulted_requests(v4: Pardot, fake: FakePardot) -> None:
    fake.state.inject("http_500", times=2, path_contains="/do/read/")
    created = v4.ok("create", "email", "p@example.com")["prospect"]
    assert v4.call("read", "id", created["id"]).status_code == 500
    assert v4.call("read", "id", created["id"]).status_code == 500
    v4.ok("read", "id", created["id"])
    assert fake.state.pending_faults() == []


def test_faults_reach_the_token_endpoint_too(http: httpx.Client, fake: FakePardot) -> None:
    fake.state.inject("html_502", path_contains="/services/oauth2/token")
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO.client_id,
        "client_secret": DEMO.client_secret,
    }
    assert http.post("/services/oauth2/token", data=form).status_code == 502
    assert http.post("/services/oauth2/token", data=form).status_code == 200


def test_delay_makes_a_client_time_out_but_pardot_still_processes(
    v4: Pardot, fake: FakePardot
) -> None:
    fake.state.inject("delay", delay_s=0.15)
    before = len(fake.state.calls)
    with pytest.raises(httpx.ReadTimeout):
        v4.http.post(
            "/api/prospect/version/4/do/create/email/slow%40example.com",
            data={"format": "json"},
            headers=v4.headers,
            timeout=0.02,
        )
    _wait_for_calls(fake, before + 1)
    assert [p["email"] for p in fake.state.prospects("v4")] == ["slow@example.com"]
    assert fake.state.calls[-1].fault == "delay"


def test_drop_closes_the_connection_without_a_response(v4: Pardot, fake: FakePardot) -> None:
    fake.state.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        v4.call("create", "email", "dropped@example.com")
    assert fake.state.prospects("v4") == []
    last = fake.state.calls[-1]
    assert (last.http_status, last.fault) == (0, "drop")
    v4.ok("create", "email", "after@example.com")


def test_inject_validates_its_arguments(fake: FakePardot) -> None:
    with pytest.raises(ValueError, match="fault kind"):
        fake.state.inject("explode")
    with pytest.raises(ValueError, match="err_code"):
        fake.state.inject("err")
    with pytest.raises(ValueError, match="delay_s"):
        fake.state.inject("delay")
    with pytest.raises(ValueError, match="err_code"):
        fake.state.inject("refuse", match="a@example.com")
    with pytest.raises(ValueError, match="match"):
        fake.state.inject("refuse", err_code=85)


def test_refuse_fails_the_single_write_it_names_and_nothing_else(
    v4: Pardot, fake: FakePardot
) -> None:
    """A "refuse" fault is a prospect write's, not a request's: a read of the same
    prospect, or a write of another, passes it by; the write naming ``match`` gets the
    err (its usual text and status), as an "err" fault would answer it. (Its batch
    side: tests/fakepardot/test_fake_batch.py.)"""
    kept = fake.state.add_prospect("v4", email="kept@example.com")
    refused = fake.state.add_prospect("v4", email="refused@example.com")
    fake.state.inject("refuse", err_code=85, match=str(refused["id"]))
    v4.ok("read", "id", refused["id"])
    v4.ok("update", "id", kept["id"], city="Turku")
    assert len(fake.state.pending_faults()) == 1
    assert v4.fails(85, "update", "id", refused["id"], city="X") == "Unable to save the prospect"
    assert fake.state.calls[-1].fault == "err"
    assert fake.state.get_prospect("v4", refused["id"])["city"] is None  # type: ignore[index]
    v4.ok("update", "id", refused["id"], city="Espoo")  # consumed


def test_refuse_matches_an_email_without_regard_to_case(v4: Pardot, fake: FakePardot) -> None:
    fake.state.inject("refuse", err_code=4, match="Odd@Example.com", times=2)
    v4.fails(4, "create", "email", "odd@example.com")
    v4.fails(4, "create", "email", "ODD@example.com")
    v4.ok("create", "email", "odd@example.com")
    assert [p["email"] for p in fake.state.prospects("v4")] == ["odd@example.com"]


def test_refuse_with_path_contains_spares_single_writes(v4: Pardot, fake: FakePardot) -> None:
    fake.state.inject("refuse", err_code=4, match="b@example.com", path_contains="/do/batch")
    v4.ok("create", "email", "b@example.com")
    assert fake.state.pending_faults()[0]["match"] == "b@example.com"


def test_refuse_over_the_control_api(http: httpx.Client, fake: FakePardot) -> None:
    fault = {"kind": "refuse", "err_code": 85, "match": "c@example.com", "text": "Nope"}
    assert http.post("/_fake/inject", json=fault).status_code == 200
    (pending,) = http.get("/_fake/state").json()["faults"]
    assert {k: pending[k] for k in fault} == fault


def test_reset_clears_faults_and_switches(v4: Pardot, fake: FakePardot) -> None:
    fake.state.inject("http_500", times=5)
    fake.state.latency_s = 1.0
    fake.state.reset()
    assert fake.state.pending_faults() == []
    assert fake.state.latency_s == 0.0
    v4.fails(184, "query", http_status=401)  # tokens are gone too
