"""Contract: the /_fake/ control API (what another process uses) and running the fake
(start/stop/context manager, independent instances)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import httpx
import pytest

from fakepardot import DEMO, FakePardot, FakeState

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot


def test_control_switches_round_trip(http: httpx.Client, fake: FakePardot) -> None:
    response = http.post(
        "/_fake/switches",
        json={"latency_s": 0.01, "daily_limit": 7, "unknown_custom_field": "error"},
    )
    assert response.status_code == 200
    assert (fake.state.latency_s, fake.state.daily_limit) == (0.01, 7)
    assert fake.state.unknown_custom_field == "error"
    assert http.get("/_fake/state").json()["switches"]["daily_limit"] == 7


def test_control_refuses_unknown_switches_and_values(http: httpx.Client) -> None:
    assert http.post("/_fake/switches", json={"speed": 1}).status_code == 400
    response = http.post("/_fake/switches", json={"unknown_custom_field": "maybe"})
    assert response.status_code == 400
    assert "unknown_custom_field" in response.json()["error"]


def test_control_inject_reaches_the_api(v4: Pardot, http: httpx.Client) -> None:
    assert http.post("/_fake/inject", json={"kind": "err", "err_code": 85}).status_code == 200
    v4.fails(85, "query")
    assert http.post("/_fake/inject", json={"kind": "nope"}).status_code == 400


def test_control_expire_tokens(v4: Pardot, http: httpx.Client) -> None:
    v4.ok("query")
    http.post("/_fake/expire-tokens")
    v4.fails(184, "query", http_status=401)


def test_control_seeds_reads_and_deletes_prospects(
    v4: Pardot, http: httpx.Client, fake: FakePardot
) -> None:
    seeded = http.post("/_fake/accounts/v4/prospects", json={"email": "c@example.com"}).json()
    assert v4.ok("read", "id", seeded["id"])["prospect"]["email"] == "c@example.com"
    assert http.get(f"/_fake/accounts/v4/prospects/{seeded['id']}").json() == seeded
    assert [p["id"] for p in http.get("/_fake/accounts/v4/prospects").json()] == [seeded["id"]]
    assert http.delete(f"/_fake/accounts/v4/prospects/{seeded['id']}").status_code == 200
    assert http.get(f"/_fake/accounts/v4/prospects/{seeded['id']}").status_code == 404
    assert http.get("/_fake/accounts/nope/prospects").status_code == 400


def test_control_calls_are_recorded_without_control_requests(
    v4: Pardot, http: httpx.Client
) -> None:
    v4.ok("query")
    calls = http.get("/_fake/calls").json()
    assert [c["path"] for c in calls] == [
        "/services/oauth2/token",
        "/api/prospect/version/4/do/query",
    ]
    assert calls[1]["account"] == "v4"
    http.delete("/_fake/calls")
    assert http.get("/_fake/calls").json() == []


def test_control_lists_activities_and_reset(
    v4: Pardot, http: httpx.Client, fake: FakePardot
) -> None:
    prospect = fake.state.add_prospect("v4", email="m@example.com")
    http.post("/_fake/accounts/v4/lists/501", json={"prospect_id": prospect["id"]})
    assert http.get("/_fake/accounts/v4/lists/501").json() == [prospect["id"]]
    assert http.get("/_fake/accounts/v4/activities").json() == []
    http.post("/_fake/reset")
    assert fake.state.prospects("v4") == []


def test_control_configure_account(v4: Pardot, http: httpx.Client) -> None:
    http.post("/_fake/accounts/v4/configure", json={"custom_fields": ["tier"], "lists": [700]})
    prospect = v4.ok("create", "email", "t@example.com", tier="x", list_700=1)["prospect"]
    assert prospect["tier"] == "x"


def test_url_before_start_is_an_error() -> None:
    fake = FakePardot()
    with pytest.raises(RuntimeError, match="start"):
        _ = fake.url


def test_instances_are_independent_and_stop_closes_the_port() -> None:
    shared = FakeState()
    with FakePardot(state=shared) as first, FakePardot() as second:
        assert first.url != second.url
        assert first.token_url == first.url + "/services/oauth2/token"
        assert first.state is shared
        shared.add_prospect("v4", email="only-in-first@example.com")
        assert second.state.prospects("v4") == []
        url = first.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_fake/state", timeout=1.0)


def test_calls_is_the_live_log_and_can_be_cleared(v4: Pardot, fake: FakePardot) -> None:
    log = fake.state.calls
    v4.ok("query")
    assert [c.path for c in log][-1] == "/api/prospect/version/4/do/query"
    fake.state.calls.clear()
    v4.ok("query")
    assert len(fake.state.calls) == 1


def test_a_request_outliving_a_reset_leaves_no_call_record(
    http: httpx.Client, fake: FakePardot
) -> None:
    fake.state.inject("delay", delay_s=0.15, path_contains="/oauth2/token")
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO.client_id,
        "client_secret": DEMO.client_secret,
    }
    with pytest.raises(httpx.ReadTimeout):
        http.post("/services/oauth2/token", data=form, timeout=0.02)
    fake.state.reset()
    waiter = threading.Event()
    for _ in range(500):  # bounded: the delayed grant finishes on the fake's loop
        if fake.state.token_grants:
            break
        waiter.wait(0.01)
    assert fake.state.token_grants == 1
    assert fake.state.calls == []
