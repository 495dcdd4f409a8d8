"""Contract: authentication (PARDOT_API.md, "Authentication") — Salesforce OAuth and the
legacy Pardot login, their failures, and the header checks every API call passes.

Evidence: the OAuth refusals by cause are PARDOT_API.md, "Authentication": RECORDED in
Salesforce client issues; the concurrent-refresh answer also in Segment's Pardot and
Salesforce destinations (segmentio/action-destinations ``actions-pardot/index.ts`` and
pull request #2300, whose author reproduced it under load against Salesforce). The
order in which the fake checks a grant is its own choice (fakepardot/auth.py)."""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from fakepardot import DEMO, FakePardot

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot

INVALID_TOKEN_TEXT = "access_token is invalid, unknown, or malformed: Inactive token"


def _grant(http: httpx.Client, **form: str) -> httpx.Response:
    return http.post("/services/oauth2/token", data=form)


CLIENT = {"client_id": DEMO.client_id, "client_secret": DEMO.client_secret}


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "refresh_token", "refresh_token": DEMO.refresh_token, **CLIENT},
        {
            "grant_type": "password",
            "username": DEMO.username,
            "password": DEMO.password,
            **CLIENT,
        },
        {"grant_type": "client_credentials", **CLIENT},
    ],
    ids=["refresh_token", "password", "client_credentials"],
)
def test_oauth_grant_returns_salesforce_token_document_without_expires_in(
    http: httpx.Client, fake: FakePardot, form: dict[str, str]
) -> None:
    response = _grant(http, **form)
    assert response.status_code == 200
    document = response.json()
    assert set(document) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
    }
    assert document["token_type"] == "Bearer"
    assert re.fullmatch(r"\d{13}", document["issued_at"])
    assert fake.state.token_grants == 1


def test_oauth_tokens_are_random_per_grant(http: httpx.Client, fake: FakePardot) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": DEMO.refresh_token, **CLIENT}
    first = _grant(http, **form).json()["access_token"]
    second = _grant(http, **form).json()["access_token"]
    assert first != second
    assert fake.state.token_grants == 2


AUTHENTICATION_FAILURE = {"error": "invalid_grant", "error_description": "authentication failure"}
EXPIRED_TOKEN = {"error": "invalid_grant", "error_description": "expired access/refresh token"}
INVALID_CLIENT_ID = {"error": "invalid_client_id", "error_description": "client identifier invalid"}
INVALID_CLIENT = {"error": "invalid_client", "error_description": "invalid client credentials"}
UNSUPPORTED_GRANT = {
    "error": "unsupported_grant_type",
    "error_description": "grant type not supported",
}
ALREADY_PROCESSING = {
    "error": "invalid_grant",
    "error_description": "token request is already being processed",
}
REFRESH = {"grant_type": "refresh_token", "refresh_token": DEMO.refresh_token, **CLIENT}


@pytest.mark.parametrize(
    ("form", "answer"),
    [
        ({**REFRESH, "refresh_token": "wrong"}, EXPIRED_TOKEN),
        ({**REFRESH, "refresh_token": ""}, EXPIRED_TOKEN),
        (
            {"grant_type": "password", "username": DEMO.username, "password": "wrong", **CLIENT},
            AUTHENTICATION_FAILURE,
        ),
        (
            {"grant_type": "password", "username": "x@example.com", "password": DEMO.password}
            | CLIENT,
            AUTHENTICATION_FAILURE,
        ),
        ({"grant_type": "client_credentials", **CLIENT, "client_secret": "x"}, INVALID_CLIENT),
        ({**REFRESH, "client_secret": "x"}, INVALID_CLIENT),
        ({**REFRESH, "client_id": "someone-else"}, INVALID_CLIENT_ID),
        ({"grant_type": "refresh_token", "refresh_token": DEMO.refresh_token}, INVALID_CLIENT_ID),
        ({"grant_type": "authorization_code", **CLIENT}, UNSUPPORTED_GRANT),
        ({**CLIENT}, UNSUPPORTED_GRANT),
    ],
    ids=[
        "bad-refresh-token",
        "no-refresh-token",
        "bad-password",
        "bad-username",
        "bad-client-secret",
        "bad-client-secret-on-refresh",
        "unknown-client-id",
        "no-client",
        "unknown-grant-type",
        "no-grant-type",
    ],
)
def test_oauth_refusals_are_http_400_and_name_the_cause(
    http: httpx.Client, fake: FakePardot, form: dict[str, str], answer: dict[str, str]
) -> None:
    """PARDOT_API.md, "Authentication": RECORDED in Salesforce client issues."""
    response = _grant(http, **form)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == answer
    assert fake.state.token_grants == 0


@pytest.mark.parametrize(
    ("form", "answer"),
    [
        ({**REFRESH, "client_id": "someone-else", "refresh_token": "x"}, INVALID_CLIENT_ID),
        ({**REFRESH, "client_secret": "x", "refresh_token": "x"}, INVALID_CLIENT),
        ({**REFRESH, "grant_type": "authorization_code", "client_id": "x"}, UNSUPPORTED_GRANT),
    ],
    ids=["client-id-first", "then-client-secret", "grant-type-before-all"],
)
def test_oauth_checks_the_grant_type_then_the_client_then_its_credentials(
    http: httpx.Client, form: dict[str, str], answer: dict[str, str]
) -> None:
    """The fake's order (chosen: Salesforce's own is not on record)."""
    assert _grant(http, **form).json() == answer


def test_oauth_grant_types_switch_stands_for_a_flow_the_app_does_not_offer(
    http: httpx.Client, fake: FakePardot
) -> None:
    fake.state.oauth_grant_types = ["refresh_token", "password"]
    response = _grant(http, grant_type="client_credentials", **CLIENT)
    assert (response.status_code, response.json()) == (400, UNSUPPORTED_GRANT)
    assert _grant(http, **REFRESH).status_code == 200
    with pytest.raises(ValueError, match="oauth_grant_types"):
        fake.state.oauth_grant_types = ["authorization_code"]
    fake.state.reset()
    assert fake.state.oauth_grant_types == ["refresh_token", "password", "client_credentials"]


def _grants_at_once(fake: FakePardot, forms: list[dict[str, str]]) -> list[httpx.Response]:
    """Send every grant at the same moment, each on its own connection."""
    responses: list[httpx.Response | None] = [None] * len(forms)
    start = threading.Barrier(len(forms))

    def send(index: int) -> None:
        with httpx.Client(base_url=fake.url, timeout=5.0) as client:
            start.wait()
            responses[index] = _grant(client, **forms[index])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(forms))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r is not None for r in responses)
    return [r for r in responses if r is not None]


def test_overlapping_refreshes_of_one_refresh_token_grant_one_refuse_the_others(
    fake: FakePardot,
) -> None:
    """Salesforce processes one refresh of a refresh token at a time and answers the
    others ``invalid_grant`` / ``token request is already being processed`` (PARDOT_API.md,
    "Authentication": RECORDED; Segment's destinations retry it). A grant is "being
    processed" while it is in flight: ``latency_s``."""
    fake.state.latency_s = 0.3

    responses = _grants_at_once(fake, [REFRESH, REFRESH, REFRESH])

    assert sorted(r.status_code for r in responses) == [200, 400, 400]
    assert [r.json() for r in responses if r.status_code == 400] == [ALREADY_PROCESSING] * 2
    assert fake.state.token_grants == 1


def test_a_refresh_after_the_other_is_done_is_granted(http: httpx.Client, fake: FakePardot) -> None:
    fake.state.latency_s = 0.05
    assert _grant(http, **REFRESH).status_code == 200
    assert _grant(http, **REFRESH).status_code == 200  # sequential: never "in progress"
    assert fake.state.token_grants == 2


def test_overlapping_password_grants_are_all_granted(fake: FakePardot) -> None:
    """The single flight is the refresh token's: other grants do not collide."""
    fake.state.latency_s = 0.3
    form = {"grant_type": "password", "username": DEMO.username, "password": DEMO.password}
    responses = _grants_at_once(fake, [form | CLIENT, form | CLIENT])
    assert [r.status_code for r in responses] == [200, 200]


def test_a_refused_refresh_does_not_hold_the_refresh_token(fake: FakePardot) -> None:
    """Only a grant Salesforce processes blocks the others (a wrong secret is refused
    before the refresh token is looked at)."""
    fake.state.latency_s = 0.3
    responses = _grants_at_once(fake, [{**REFRESH, "client_secret": "x"}, REFRESH])
    assert [r.json().get("error", "granted") for r in responses] == ["invalid_client", "granted"]


def test_bearer_token_with_business_unit_reaches_the_account(v4: Pardot) -> None:
    created = v4.ok("create", "email", "someone@example.com")
    assert created["prospect"]["email"] == "someone@example.com"


def test_missing_business_unit_header_is_err_181_with_http_400(
    client_for: Callable[..., Pardot], new_token: Callable[[], str]
) -> None:
    """PARDOT_API.md, "Authentication": the text and status of Pardot's own answer."""
    pardot = client_for({"Authorization": f"Bearer {new_token()}"}, 4)
    text = pardot.fails(181, "read", "id", 1, http_status=400)
    assert (
        text == "A required header is missing: Pardot-Business-Unit-Id header not found on request."
    )


@pytest.mark.parametrize("status", [None, 400, 403], ids=["default", "400", "403"])
def test_unknown_business_unit_is_err_201_with_the_switched_http_status(
    client_for: Callable[..., Pardot],
    new_token: Callable[[], str],
    fake: FakePardot,
    status: int | None,
) -> None:
    """PARDOT_API.md, "Authentication": the text as Pardot gives it; the HTTP status is
    UNCONFIRMED (400 or 403), so it is a switch, 400 by default (the status of its
    sibling header check, err 181)."""
    if status is not None:
        fake.state.bu_invalid_http_status = status
    headers = {
        "Authorization": f"Bearer {new_token()}",
        "Pardot-Business-Unit-Id": "0Uv000000000099CAA",
    }
    text = client_for(headers, 4).fails(201, "read", "id", 1, http_status=status or 400)
    assert (
        text == "Business Unit specified in Pardot-Business-Unit-Id header not found or inactive."
    )
    xml = client_for(headers, 4).call("read", "id", 1, fmt="xml")
    assert xml.status_code == (status or 400)
    err = ET.fromstring(xml.content).find("err")
    assert err is not None and err.attrib == {"code": "201"}


def test_bu_invalid_http_status_switch_takes_400_or_403(fake: FakePardot) -> None:
    with pytest.raises(ValueError, match="bu_invalid_http_status"):
        fake.state.bu_invalid_http_status = 401
    fake.state.bu_invalid_http_status = 403
    fake.state.reset()
    assert fake.state.bu_invalid_http_status == 400


def test_bad_token_is_err_184_with_http_401(client_for: Callable[..., Pardot]) -> None:
    headers = {
        "Authorization": "Bearer not-a-token",
        "Pardot-Business-Unit-Id": DEMO.business_unit_v4,
    }
    text = client_for(headers, 4).fails(184, "read", "id", 1, http_status=401)
    assert text == INVALID_TOKEN_TEXT


def test_no_authorization_header_is_err_184(client_for: Callable[..., Pardot]) -> None:
    pardot = client_for({"Pardot-Business-Unit-Id": DEMO.business_unit_v4}, 4)
    pardot.fails(184, "read", "id", 1, http_status=401)


def test_expire_tokens_invalidates_issued_tokens_until_a_new_grant(
    v4: Pardot, fake: FakePardot, new_token: Callable[[], str]
) -> None:
    v4.ok("create", "email", "a@example.com")
    fake.state.expire_tokens()
    assert v4.fails(184, "read", "email", "a@example.com", http_status=401) == INVALID_TOKEN_TEXT
    v4.headers["Authorization"] = f"Bearer {new_token()}"
    v4.ok("read", "email", "a@example.com")


def test_token_ttl_switch_expires_tokens(v4: Pardot, fake: FakePardot) -> None:
    fake.state.token_ttl_s = 0.0
    v4.fails(184, "read", "id", 1, http_status=401)


# --- legacy login ----------------------------------------------------------------------


def _login(http: httpx.Client, email: str, version: int = 3, **extra: str) -> httpx.Response:
    form = {"email": email, "password": DEMO.legacy_password, "user_key": DEMO.user_key}
    return http.post(f"/api/login/version/{version}", data={**form, **extra})


def test_legacy_login_answers_xml_api_key_by_default(http: httpx.Client, fake: FakePardot) -> None:
    response = _login(http, DEMO.legacy_v3_email)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    rsp = ET.fromstring(response.content)
    assert rsp.tag == "rsp"
    assert rsp.attrib == {"stat": "ok", "version": "1.0"}
    assert re.fullmatch(r"[0-9a-f]{32}", rsp.findtext("api_key") or "")
    assert rsp.find("version") is None  # v3 accounts get no <version>
    assert fake.state.logins == 1


@pytest.mark.parametrize("path_version", [3, 4])
def test_legacy_login_on_v4_account_says_version_4(http: httpx.Client, path_version: int) -> None:
    rsp = ET.fromstring(_login(http, DEMO.legacy_v4_email, path_version).content)
    assert rsp.findtext("version") == "4"


def test_legacy_login_json_has_top_level_api_key(http: httpx.Client) -> None:
    document = _login(http, DEMO.legacy_v4_email, format="json").json()
    assert document["@attributes"] == {"stat": "ok", "version": 1}
    assert isinstance(document["api_key"], str)
    assert document["version"] == 4


@pytest.mark.parametrize(
    "form",
    [
        {"email": DEMO.legacy_v3_email, "password": "wrong", "user_key": DEMO.user_key},
        {"email": DEMO.legacy_v3_email, "password": DEMO.legacy_password, "user_key": "0" * 32},
        {
            "email": "nobody@example.com",
            "password": DEMO.legacy_password,
            "user_key": DEMO.user_key,
        },
    ],
    ids=["password", "user_key", "email"],
)
def test_legacy_login_failure_is_err_15(
    http: httpx.Client, fake: FakePardot, form: dict[str, str]
) -> None:
    response = http.post("/api/login/version/3", data=form)
    assert response.status_code == 200
    rsp = ET.fromstring(response.content)
    assert rsp.attrib == {"stat": "fail", "version": "1.0"}
    err = rsp.find("err")
    assert err is not None
    assert err.attrib == {"code": "15"}
    assert err.text == "Login failed"
    assert fake.state.logins == 0


def test_legacy_api_key_calls_work_on_the_users_account(
    legacy_v3: Pardot, legacy_v4: Pardot, fake: FakePardot
) -> None:
    legacy_v3.ok("create", "email", "three@example.com")
    legacy_v4.ok("create", "email", "four@example.com")
    assert [p["email"] for p in fake.state.prospects("v3")] == ["three@example.com"]
    assert [p["email"] for p in fake.state.prospects("v4")] == ["four@example.com"]


def test_legacy_wrong_user_key_is_err_1(legacy_v3: Pardot) -> None:
    api_key = legacy_v3.headers["Authorization"].split("api_key=")[1].split(",")[0]
    legacy_v3.headers["Authorization"] = f"Pardot api_key={api_key}, user_key={'f' * 32}"
    assert legacy_v3.fails(1, "read", "id", 1) == "Invalid API key or user key"


def test_legacy_unknown_or_expired_api_key_is_err_1(legacy_v3: Pardot, fake: FakePardot) -> None:
    legacy_v3.ok("create", "email", "a@example.com")
    fake.state.expire_tokens()
    legacy_v3.fails(1, "read", "email", "a@example.com")


def test_legacy_api_key_ttl_switch(legacy_v3: Pardot, fake: FakePardot) -> None:
    fake.state.api_key_ttl_s = 0.0
    legacy_v3.fails(1, "read", "id", 1)


def test_credentials_in_query_string_are_err_49(legacy_v3: Pardot, http: httpx.Client) -> None:
    api_key = legacy_v3.headers["Authorization"].split("api_key=")[1].split(",")[0]
    response = http.get(
        "/api/prospect/version/3/do/read/id/1",
        params={"api_key": api_key, "user_key": DEMO.user_key, "format": "json"},
        headers=legacy_v3.headers,
    )
    document = response.json()
    assert document["@attributes"]["err_code"] == 49
    assert document["err"] == "Access Denied"


def test_legacy_retired_switch_answers_err_199(
    legacy_v3: Pardot, http: httpx.Client, fake: FakePardot
) -> None:
    fake.state.legacy_retired = True
    legacy_v3.fails(199, "read", "id", 1)
    rsp = ET.fromstring(_login(http, DEMO.legacy_v3_email).content)
    err = rsp.find("err")
    assert err is not None and err.attrib["code"] == "199"


# --- version mismatch ----------------------------------------------------------------


def test_v3_call_on_v4_account_is_err_88(v4: Pardot) -> None:
    text = v4.fails(88, "read", "email", "a@example.com", version=3)
    assert text == "Your account must use version 4 of the API."


def test_v4_call_on_v3_account_is_err_89(v3: Pardot) -> None:
    text = v3.fails(89, "read", "id", 1, version=4)
    assert text == "Your account is unable to use version 4 of the API."


def test_legacy_user_account_decides_the_version(legacy_v3: Pardot) -> None:
    legacy_v3.fails(89, "read", "id", 1, version=4)


# --- secrets never recorded ----------------------------------------------------------


def test_recorded_calls_redact_every_secret(
    http: httpx.Client, legacy_v3: Pardot, fake: FakePardot
) -> None:
    _grant(
        http,
        grant_type="password",
        username=DEMO.username,
        password=DEMO.password,
        **CLIENT,
    )
    _grant(http, grant_type="refresh_token", refresh_token=DEMO.refresh_token, **CLIENT)
    legacy_v3.ok("create", "email", "a@example.com")
    secrets = {DEMO.client_secret, DEMO.password, DEMO.refresh_token, DEMO.user_key}
    recorded: list[dict[str, Any]] = [call.as_dict() for call in fake.state.calls]
    assert len(recorded) == 4  # login (fixture), two grants, one create
    flat = repr(recorded)
    for secret in secrets:
        assert secret not in flat
    token_call = recorded[1]
    assert token_call["form"]["client_secret"] == "[REDACTED]"
    assert token_call["form"]["password"] == "[REDACTED]"
    assert token_call["form"]["username"] == DEMO.username
