"""How API v5 requests are read and its answers look (PARDOT_API.md, "API v5
(prospects)"): JSON in and out, errors ``{"code": N, "message": "..."}`` with a real
HTTP status, a few answers with headers of their own (``Location`` on a create,
``Pardot-Warning: 201;Record In Recycle Bin`` on a 404 for a deleted record).

Bodies: a write needs ``Content-Type: application/json`` and a JSON object; a form body
is 400 code 151 ``Unsupported content-type``, no body 400 code 152, unreadable JSON (or a
JSON value that is no object) 400 code 150. The call log records a v5 JSON body with
every secret replaced by ``[REDACTED]`` at any depth (a prospect's ``password`` sits
one level down, in ``prospect``).

``V5Call`` is one request as the handlers see it (the state, the decoded call, the
account and its prospects, the base URL answers link to).

Error statuses: 401 for 184, 404 for 109, 405 for 60, else 400; err 66 and 122 follow
the ``v5_limit_status`` switch and the auth failures the ``v5_auth_errors`` switch
(v5_switches.py). Decides only how an answer looks, never what it says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fakepardot import constants as c
from fakepardot import v5_fields, wire
from fakepardot.model import Account, PardotFail, V5Fail
from fakepardot.prospects import ProspectBook
from fakepardot.state import FakeState
from fakepardot.wire import Incoming, Reply

Headers = tuple[tuple[str, str], ...]

#: Errors that say who is calling, not what was asked (the ``v5_auth_errors`` switch).
AUTH_CODES = frozenset({c.ERR_INVALID_TOKEN, c.ERR_BU_HEADER_MISSING, c.ERR_BU_INVALID})
LIMIT_CODES = frozenset({c.ERR_CONCURRENCY, c.ERR_DAILY_LIMIT})


@dataclass(frozen=True)
class V5Reply(Reply):
    """A Reply with response headers of its own."""

    headers: Headers = ()


class V5Call:
    """One v5 request, decoded, with what it acts on: the account, its prospects, and the
    base URL its answers link to (``Location``, ``nextPageUrl``)."""

    def __init__(self, state: FakeState, call: Incoming, account: Account, base_url: str) -> None:
        self.state = state
        self.call = call
        self.account = account
        self.book = ProspectBook(state, account)
        self.base_url = base_url

    @property
    def ampsea(self) -> bool:
        """Does the business unit allow several prospects per email? (v4 accounts do.)"""
        return self.account.version == 4

    def selection(self, names: list[str] | None) -> list[str] | None:
        """The answer's fields (400 code 180 for an unknown one); None if none asked."""
        return v5_fields.selection(self.account, names) if names else None


class V5FailWithHeaders(V5Fail):
    """A v5 error that carries response headers (the recycle bin's Pardot-Warning)."""

    def __init__(self, code: int, message: str, http_status: int, headers: Headers) -> None:
        super().__init__(code, message, http_status)
        self.headers = headers


def fail(code: int, detail: str | None = None, *, headers: Headers = ()) -> V5Fail:
    """The v5 error for ``code``: v5's own wording (then ``: detail``) and status."""
    text = (
        c.V5_PROSPECT_TEXTS.get(code)
        or c.V5_ERROR_TEXTS.get(code)
        or c.ERROR_TEXTS.get(code, c.UNKNOWN_ERROR_TEXT)
    )
    message = f"{text}: {detail}" if detail else text
    status = c.V5_PROSPECT_HTTP_STATUS.get(code, 400)
    if headers:
        return V5FailWithHeaders(code, message, status, headers)
    return V5Fail(code, message, status)


def not_found(*, in_recycle_bin: bool = False) -> V5Fail:
    """404 code 109; a record in the recycle bin says so in a Pardot-Warning header."""
    headers: Headers = (("Pardot-Warning", c.V5_WARNING_RECYCLE_BIN),) if in_recycle_bin else ()
    return fail(c.V5_ERR_RECORD_NOT_FOUND, headers=headers)


def json_body(call: Incoming) -> dict[str, Any]:
    """A write's JSON object, or the v5 error for the body it came with."""
    if call.body_error:
        raise V5Fail(c.V5_ERR_INVALID_JSON)
    if call.json_body is None:
        raise V5Fail(c.V5_ERR_CONTENT_TYPE if call.form else c.V5_ERR_EMPTY_BODY)
    if not isinstance(call.json_body, dict):
        raise V5Fail(c.V5_ERR_INVALID_JSON)
    return call.json_body


def query_fields(call: Incoming) -> list[str] | None:
    """``fields=a,b,c`` of the query string; None when absent or empty."""
    names = [n.strip() for n in call.query.get("fields", "").split(",") if n.strip()]
    return names or None


def body_fields(body: Mapping[str, Any]) -> list[str] | None:
    """``"fields": ["a", "b"]`` of a JSON body; None when absent, null or empty."""
    names = body.get("fields")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise fail(c.V5_ERR_INVALID_PROPERTY, "fields must be an array of field names")
    return [n for n in names if n.strip()] or None


def document(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    body = wire.plain_json(status, payload).body
    return V5Reply(status, body, c.JSON_CONTENT_TYPE, headers=tuple(headers))


def failure_reply(failure: PardotFail | V5Fail, state: FakeState) -> Reply:
    """Any failure on a v5 path, rendered as v5 (or, for auth failures with the
    ``v5_auth_errors`` switch on "xml", in the v3/v4 XML envelope)."""
    if isinstance(failure, V5Fail):
        if failure.code in LIMIT_CODES:
            failure = V5Fail(failure.code, failure.message, state.v5_limit_status)
        reply = wire.v5_fail(failure)
        headers = getattr(failure, "headers", ())
        return V5Reply(reply.status, reply.body, reply.content_type, reply.err_code, headers)
    code = failure.err_code
    if code == c.ERR_BU_INVALID:
        status = state.bu_invalid_http_status  # one switch for every dialect (auth.py)
    elif code in LIMIT_CODES:
        status = state.v5_limit_status
    elif code in AUTH_CODES and state.v5_auth_errors == "xml":
        status = c.V5_XML_AUTH_STATUS[code]
    else:
        status = c.V5_PROSPECT_HTTP_STATUS.get(code, c.V5_ERROR_HTTP_STATUS.get(code, 400))
    if code in AUTH_CODES and state.v5_auth_errors == "xml":
        return wire.fail(PardotFail(code, failure.text, status), "xml")
    message = c.V5_PROSPECT_TEXTS.get(code, failure.text) if code in AUTH_CODES else failure.text
    return wire.v5_fail(V5Fail(code, message, status))
