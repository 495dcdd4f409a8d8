"""``prospect/version/<v>/do/query`` (PARDOT_API.md, "Query").

Filters: created_after/created_before, updated_after/updated_before, id_greater_than/
id_less_than, score_greater_than/score_less_than, list_id, deleted (archived prospects:
excluded by default, only them with ``true``, both with ``all``). ``fields`` narrows
each prospect (``id`` always stays), ``output=mobile`` keeps id, names, email and company
(RECORDED), and no prospect carries its relations (profile, visitors, lists);
``limit`` ≤ 200 (err 23), ``offset``, ``sort_by``
(created_at, id, last_activity_at, updated_at) and ``sort_order`` (default: created_at,
descending). Unknown parameters are ignored. There is no filter on a custom field's
value, as in Pardot.

Runs with the state lock held; never awaits, never renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fakepardot import constants as c
from fakepardot import fields
from fakepardot.model import PardotFail, ProspectRecord
from fakepardot.prospects import ProspectBook

Predicate = Callable[[ProspectRecord], bool]


def run(book: ProspectBook, params: Mapping[str, str]) -> dict[str, Any]:
    predicates = _filters(book, params)
    limit = _integer(params.get("limit"), c.MAX_QUERY_LIMIT, c.ERR_LIMIT)
    if limit > c.MAX_QUERY_LIMIT or limit < 1:
        raise PardotFail(c.ERR_LIMIT)
    offset = _integer(params.get("offset"), 0, c.ERR_OFFSET)
    sort_by = params.get("sort_by") or "created_at"
    if sort_by not in c.SORT_BY_FIELDS:
        raise PardotFail(c.ERR_SORT_BY)
    sort_order = params.get("sort_order") or "descending"
    if sort_order not in ("ascending", "descending"):
        raise PardotFail(c.ERR_SORT_ORDER)

    matches = [r for r in book.account.prospects.values() if all(p(r) for p in predicates)]
    matches.sort(
        key=lambda r: (r.get(sort_by) is not None, r.get(sort_by) or 0, r["id"]),
        reverse=sort_order == "descending",
    )
    only = _only(params.get("fields"))
    # A query's prospects carry no relations (profile, visitors, lists): simple, or mobile.
    output = "mobile" if params.get("output") == "mobile" else "simple"
    page = [fields.render(r, only, output=output) for r in matches[offset : offset + limit]]
    result: dict[str, Any] = {"total_results": len(matches)}
    if page:
        result["prospect"] = page[0] if len(page) == 1 else page
    return {"result": result}


def _filters(book: ProspectBook, params: Mapping[str, str]) -> list[Predicate]:
    predicates: list[Predicate] = []
    deleted = (params.get("deleted") or "false").lower()
    if deleted not in ("true", "false", "all"):
        raise PardotFail(c.ERR_INVALID_QUERY)
    if deleted != "all":
        wants_archived = deleted == "true"
        predicates.append(lambda r: bool(r.get("is_archived")) == wants_archived)
    for name, column, after in (
        ("created_after", "created_at", True),
        ("created_before", "created_at", False),
        ("updated_after", "updated_at", True),
        ("updated_before", "updated_at", False),
    ):
        if name in params:
            predicates.append(_time_filter(column, _timestamp(params[name]), after))
    for name, column, greater in (
        ("id_greater_than", "id", True),
        ("id_less_than", "id", False),
        ("score_greater_than", "score", True),
        ("score_less_than", "score", False),
    ):
        if name in params:
            bound = _integer(params[name], 0, c.ERR_INVALID_QUERY)
            predicates.append(_number_filter(column, bound, greater))
    if "list_id" in params:
        list_id = _integer(params["list_id"], 0, c.ERR_INVALID_LIST)
        if list_id not in book.account.lists:
            raise PardotFail(c.ERR_INVALID_LIST)
        members = book.account.lists[list_id]
        predicates.append(lambda r: r["id"] in members)
    return predicates


def _time_filter(column: str, bound: str, after: bool) -> Predicate:
    # "YYYY-MM-DD HH:MM:SS" strings sort like the times they name.
    if after:
        return lambda r: (r.get(column) or "") > bound
    return lambda r: (r.get(column) or "") < bound


def _number_filter(column: str, bound: int, greater: bool) -> Predicate:
    if greater:
        return lambda r: (r.get(column) or 0) > bound
    return lambda r: (r.get(column) or 0) < bound


def _timestamp(value: str) -> str:
    """Pardot takes GNU date input; the fake takes ISO dates/times and a few keywords."""
    now = datetime.now(UTC).replace(tzinfo=None)
    keywords = {
        "today": now.replace(hour=0, minute=0, second=0, microsecond=0),
        "yesterday": now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1),
        "last_7_days": now - timedelta(days=7),
        "last_30_days": now - timedelta(days=30),
    }
    moment = keywords.get(value.strip().lower())
    if moment is None:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise PardotFail(c.ERR_INVALID_TIMESTAMP) from None
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime(c.TIMESTAMP_FORMAT)


def _integer(value: str | None, default: int, err_code: int) -> int:
    if value is None or value == "":
        return default
    if not value.strip().isdigit():
        raise PardotFail(err_code)
    return int(value)


def _only(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    return frozenset(name.strip() for name in value.split(",") if name.strip())
