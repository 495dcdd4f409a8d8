"""Who is calling: the Salesforce OAuth token endpoint, the legacy Pardot login, and
the check every API call passes (PARDOT_API.md, "Authentication").

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
    """POST /services/oauth2/token: a fresh random token, or HTTP 400."""
    params = call.params
    grant = params.get("grant_type", "")
    if grant not in c.OAUTH_GRANTS:
        return plain_json(400, c.OAUTH_UNSUPPORTED_GRANT)
    client_ok = (
        params.get("client_id") == DEMO.client_id
        and params.get("client_secret") == DEMO.client_secret
    )
    if grant == "refresh_token":
        granted = client_ok and params.get("refresh_token") == DEMO.refresh_token
    elif grant == "password":
        granted = (
            client_ok
            and params.get("username") == DEMO.username
            and params.get("password") == DEMO.password
        )
    else:
        granted = client_ok
    if not granted:
        return plain_json(400, c.OAUTH_INVALID_GRANT)
    document: dict[str, Any] = {
        "access_token": state._issue_token(),
        "instance_url": base_url,
        "id": f"{base_url}/id/00D000000000001AAA/005000000000001AAA",
        "token_type": "Bearer",
        "issued_at": str(int(time.time() * 1000)),
        "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    return plain_json(200, document)


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
            raise PardotFail(c.ERR_BU_INVALID)
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
