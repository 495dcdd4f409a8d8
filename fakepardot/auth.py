"""Who is calling: the Salesforce OAuth token endpoint, the legacy Pardot login, and
the check every API call passes (PARDOT_API.md, "Authentication").

Token grants are refused by cause, HTTP 400 with Salesforce's ``error`` /
``error_description`` (RECORDED in Salesforce client issues), checked in this order
(chosen): a grant type the endpoint does not take (``state.oauth_grant_types``) →
``unsupported_grant_type``; an unknown ``client_id`` → ``invalid_client_id``; a wrong
``client_secret`` → ``invalid_client``; then the grant's own credentials: a wrong
refresh token → ``invalid_grant`` / ``expired access/refresh token``, a wrong username
or password → ``invalid_grant`` / ``authentication failure``.

Several refreshes of one refresh token at once: Salesforce processes one and refuses
the others with ``invalid_grant`` / ``token request is already being processed``
(Segment's Pardot destination retries it). The fake does the same for real, never by a
switch, because Salesforce only ever answers it to requests that overlap: a grant is
"being processed" for the whole time it is in flight (``state.latency_s``), and a
refresh_token grant whose time in flight overlapped a granted one of the same refresh
token is refused (it is answered at the end of its own time in flight, since the
pipeline answers only then; an injected delay is not counted in its time in flight).

API calls, in order: credentials in the query string → err 49; ``Authorization: Bearer``
→ unknown/expired token err 184 (HTTP 401), missing ``Pardot-Business-Unit-Id`` err 181,
unknown business unit err 201; ``Authorization: Pardot api_key=…, user_key=…`` → err 199
once ``legacy_retired`` is on, unknown/expired api key or wrong user key err 1; no usable
Authorization header → err 184 (OAuth is the only mode Pardot still accepts).

Runs with the state lock held. Never records or echoes a secret: failures name no value.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from typing import Any

from fakepardot import constants as c
from fakepardot.demo import DEMO
from fakepardot.model import Account, PardotFail
from fakepardot.state import FakeState
from fakepardot.wire import Incoming, Reply, plain_json

_LEGACY_HEADER = re.compile(r"^\s*Pardot\s+(.*)$", re.IGNORECASE)
_QUERY_CREDENTIALS = ("api_key", "user_key", "password")


def grant_token(state: FakeState, call: Incoming, base_url: str) -> Reply:
    """POST /services/oauth2/token: a fresh random token, or HTTP 400 naming the cause."""
    params = call.params
    grant = params.get("grant_type", "")
    refusal = _refusal(state, grant, params)
    if refusal is None and grant == "refresh_token":
        refusal = _overlapping_refresh(state, params["refresh_token"])
    if refusal is not None:
        return plain_json(400, refusal)
    document: dict[str, Any] = {
        "access_token": state._issue_token(),
        "instance_url": base_url,
        "id": f"{base_url}/id/00D000000000001AAA/005000000000001AAA",
        "token_type": "Bearer",
        "issued_at": str(int(time.time() * 1000)),
        "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    return plain_json(200, document)


def _refusal(state: FakeState, grant: str, params: dict[str, str]) -> dict[str, str] | None:
    """Why Salesforce refuses these credentials, if it does (in the module's order)."""
    if grant not in state._oauth_grant_types:
        return c.OAUTH_UNSUPPORTED_GRANT
    if params.get("client_id") != DEMO.client_id:
        return c.OAUTH_INVALID_CLIENT_ID
    if params.get("client_secret") != DEMO.client_secret:
        return c.OAUTH_INVALID_CLIENT
    if grant == "refresh_token" and params.get("refresh_token") != DEMO.refresh_token:
        return c.OAUTH_EXPIRED_TOKEN
    if grant == "password" and (
        params.get("username") != DEMO.username or params.get("password") != DEMO.password
    ):
        return c.OAUTH_AUTHENTICATION_FAILURE
    return None


def _overlapping_refresh(state: FakeState, refresh_token: str) -> dict[str, str] | None:
    """The grant of ``refresh_token`` answered now began ``latency_s`` ago; refused when
    a granted one of the same token was still being processed then."""
    now = time.monotonic()
    began = now - state.latency_s
    busy_until = state._refresh_grants.get(refresh_token)
    if busy_until is not None and began < busy_until:
        return c.OAUTH_ALREADY_PROCESSING
    state._refresh_grants[refresh_token] = now
    return None


def login(state: FakeState, call: Incoming) -> dict[str, Any]:
    """POST /api/login/version/<3|4>: the payload of a successful login."""
    if any(name in call.query for name in _QUERY_CREDENTIALS):
        raise PardotFail(c.ERR_ACCESS_DENIED)
    if state.legacy_retired:
        raise PardotFail(c.ERR_API_KEY_RETIRED)
    email = call.form.get("email", "")
    account_name = DEMO.legacy_users.get(email)
    if (
        account_name is None
        or call.form.get("password") != DEMO.legacy_password
        or call.form.get("user_key") != DEMO.user_key
    ):
        raise PardotFail(c.ERR_LOGIN_FAILED)
    payload: dict[str, Any] = {"api_key": state._issue_api_key(email)}
    if state._account(account_name).version == 4:
        payload["version"] = 4
    return payload


def authenticate(state: FakeState, call: Incoming, *, allow_legacy: bool = True) -> Account:
    """The account an API call acts on, or the Pardot error that refuses it."""
    if any(name in call.query for name in _QUERY_CREDENTIALS):
        raise PardotFail(c.ERR_ACCESS_DENIED)
    header = call.headers.get("authorization", "")
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        if not state._token_valid(credentials.strip()):
            raise PardotFail(c.ERR_INVALID_TOKEN)
        business_unit = call.headers.get("pardot-business-unit-id", "").strip()
        if not business_unit:
            raise PardotFail(c.ERR_BU_HEADER_MISSING)
        account = state._account_for_business_unit(business_unit)
        if account is None:
            raise PardotFail(c.ERR_BU_INVALID, http_status=state.bu_invalid_http_status)
        return account
    legacy = _LEGACY_HEADER.match(header)
    if legacy:
        if not allow_legacy:
            raise PardotFail(c.ERR_AUTH_MECHANISM)
        if state.legacy_retired:
            raise PardotFail(c.ERR_API_KEY_RETIRED)
        pairs = dict(
            part.strip().partition("=")[::2] for part in legacy.group(1).split(",") if part.strip()
        )
        email = state._api_key_user(pairs.get("api_key", "").strip())
        if email is None or pairs.get("user_key", "").strip() != DEMO.user_key:
            raise PardotFail(c.ERR_INVALID_KEY)
        return state._account(DEMO.legacy_users[email])
    raise PardotFail(c.ERR_INVALID_TOKEN)
