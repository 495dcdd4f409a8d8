"""The API v5 dialect (PARDOT_API.md, "API v5", "External activities"): JSON bodies,
paths under ``/api/v5/``, answers that are bare JSON documents and errors as
``{"code": N, "message": "..."}`` under a real HTTP status.

Today the service speaks v5 for external activities only. v5 prospects
(``/api/v5/objects/prospects…``: create, read by id, PATCH, ``upsertLatestByEmail``)
would add their request builders here, beside :func:`external_activity`, and the
transport would send them unchanged: it knows :class:`PardotRequest`, not dialects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clients.wire.request import PardotRequest
from clients.wire.responses import error_text, json_object, not_pardot
from strategies.core import pardot_facts as facts
from strategies.core.errors import PardotError


def v5_request(
    method: str,
    path: str,
    body: Mapping[str, Any] | None,
    *,
    idempotent: bool,
    query: Mapping[str, str] | None = None,
) -> PardotRequest:
    """A v5 request: ``body`` travels as JSON, the answer is read by
    :func:`parse_v5_response`. ``path`` is a constant of ``pardot_facts`` (with path
    values encoded by ``clients.wire.paths.encode_path_value``), never request data."""
    return PardotRequest(method, path, idempotent, parse_v5_response, query=query, json_body=body)


def external_activity(extension: str, activity_type: str, value: str, email: str) -> PardotRequest:
    """Record one external activity for the prospect with ``email``. Pardot records an
    activity once per request, so a resend could record it twice: not idempotent."""
    body = {"extension": extension, "type": activity_type, "value": value, "email": email}
    return v5_request("POST", facts.EXTERNAL_ACTIVITIES_PATH, body, idempotent=False)


def parse_v5_response(status: int, content_type: str, body: bytes) -> dict[str, Any]:
    """A version 5 answer (JSON only): the success document, or what a failure means.

    - 204 with an empty body (an external activity recorded) → ``{}``;
    - a JSON object with an integer ``code`` → :class:`PardotError` of that code,
      whatever the status, so the one err_code table decides (184 refreshes the
      token, 66 is retried, 122 is the daily limit);
    - another JSON object under a 2xx status → that object;
    - anything else (a proxy's page, an empty 200) is not Pardot's: as
      :func:`~clients.wire.responses.not_pardot` says.
    """
    text = body.strip()
    if status == 204 and not text:
        return {}
    document = json_object(text)
    if document is not None:
        code = document.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            raise PardotError(code, error_text(document.get("message")), http_status=status)
        if 200 <= status < 300:
            return document
    what = "a body that is not Pardot's" if text else "an empty body"
    raise not_pardot(status, what)
