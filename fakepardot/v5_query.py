"""``GET /api/v5/objects/prospects?fields=…`` — the v5 prospect query, one page at a time
(PARDOT_API.md: collections come back as ``{"nextPageToken": …, "nextPageUrl": …,
"values": [...]}``; the version 5 overview for the parameters).

Parameters: ``fields`` (required: 400 code 13), ``email`` (exact, case-sensitive: every
prospect with it when the business unit allows several), ``deleted`` (``false`` default,
``true`` only the recycle bin, ``all``), ``orderBy`` (``id``, ``createdAt``,
``updatedAt`` or ``lastActivityAt``, then optionally ``asc``/``desc``; default ``id
asc``), ``limit`` (1 to 1000, default the ``v5_page_size`` switch, 200 as in Pardot;
else 400 code 23). Other parameters are ignored (chosen). A bad ``deleted`` or
``orderBy`` is 400 code 5 (chosen).

Paging: when more records follow, ``nextPageToken`` is an opaque string and
``nextPageUrl`` the URL of the next page (``…/prospects?nextPageToken=<token>``); on
the last page both are null. The token carries the query and the last record's sort key
(a cursor, not an offset: records written between pages neither repeat nor vanish from
later pages). With a token only ``fields`` may accompany it (else 400 code 5: the
overview says other parameters are refused); a token the fake did not issue is 400 code
211 ``Page token is invalid.``. Tokens never expire in the fake (Pardot's live 4 hours).

Runs with the state lock held; never awaits.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import quote

from fakepardot import constants as c
from fakepardot import v5_fields
from fakepardot import v5_wire as w
from fakepardot.model import ProspectRecord
from fakepardot.wire import Reply

#: orderBy names → the stored column they sort on.
ORDER_COLUMNS = {
    "id": "id",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "lastActivityAt": "last_activity_at",
}
DELETED_MODES = ("false", "true", "all")
SortKey = tuple[Any, ...]


def run(request: w.V5Call) -> Reply:
    params = request.call.query
    names = request.selection(w.query_fields(request.call))
    token = params.get("nextPageToken")
    if token is not None:
        spec = _read_token(token)
        if set(params) - {"nextPageToken", "fields"}:
            raise w.fail(c.ERR_INVALID_QUERY, "only fields may accompany nextPageToken")
        names = names or spec["fields"]
    else:
        spec = _spec(request, params)
    if not names:
        raise w.fail(c.ERR_PARAM_MISSING, "fields")
    column, descending = ORDER_COLUMNS[spec["order"]], spec["desc"]
    after = tuple(spec["after"]) if spec.get("after") is not None else None
    records = sorted(
        (
            r
            for r in _matching(request, spec)
            if after is None or _beyond(r, column, after, descending)
        ),
        key=lambda r: _key(r, column),
        reverse=descending,
    )
    page, more = records[: spec["limit"]], len(records) > spec["limit"]
    next_token = next_url = None
    if more:
        next_token = _write_token({**spec, "fields": names, "after": _key(page[-1], column)})
        next_url = f"{request.base_url}/api/v5/objects/prospects?nextPageToken={quote(next_token)}"
    return w.document(
        200,
        {
            "nextPageToken": next_token,
            "nextPageUrl": next_url,
            "values": [v5_fields.render(r, names) for r in page],
        },
    )


def _spec(request: w.V5Call, params: dict[str, str]) -> dict[str, Any]:
    """The query a first page asks for (what a page token carries on)."""
    deleted = params.get("deleted", "false").lower()
    if deleted not in DELETED_MODES:
        raise w.fail(c.ERR_INVALID_QUERY, "deleted must be true, false or all")
    order, _, direction = params.get("orderBy", "id").strip().partition(" ")
    direction = direction.strip().lower() or "asc"
    if order not in ORDER_COLUMNS or direction not in ("asc", "desc"):
        raise w.fail(c.ERR_INVALID_QUERY, f"orderBy {params.get('orderBy')!r}")
    raw_limit = params.get("limit")
    limit = request.state.v5_page_size
    if raw_limit is not None:
        if not raw_limit.strip().isdigit() or not 1 <= int(raw_limit) <= c.V5_MAX_PAGE_SIZE:
            raise w.fail(c.ERR_LIMIT)
        limit = int(raw_limit)
    return {
        "email": params.get("email"),
        "deleted": deleted,
        "order": order,
        "desc": direction == "desc",
        "limit": limit,
        "after": None,
    }


def _matching(request: w.V5Call, spec: dict[str, Any]) -> list[ProspectRecord]:
    email = spec["email"]
    prospects = request.account.prospects
    pool = (
        [r for r in prospects.with_email(email) if r.get("email") == email]
        if email is not None
        else list(prospects.values())
    )
    if spec["deleted"] == "all":
        return pool
    wants_deleted = spec["deleted"] == "true"
    return [r for r in pool if bool(r.get("is_archived")) == wants_deleted]


def _key(record: ProspectRecord, column: str) -> SortKey:
    if column == "id":
        return (record["id"],)
    return (str(record.get(column) or ""), record["id"])


def _beyond(record: ProspectRecord, column: str, after: SortKey, descending: bool) -> bool:
    key = _key(record, column)
    return key < after if descending else key > after


def _write_token(spec: dict[str, Any]) -> str:
    raw = json.dumps(spec, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        spec = json.loads(raw)
    except (ValueError, binascii.Error):
        raise w.fail(c.V5_ERR_PAGE_TOKEN) from None
    keys = {"email", "deleted", "order", "desc", "limit", "after", "fields"}
    if not isinstance(spec, dict) or set(spec) != keys or spec["order"] not in ORDER_COLUMNS:
        raise w.fail(c.V5_ERR_PAGE_TOKEN)
    return spec
