"""What a track call can do besides writing fields: list membership
(``listMembership/version/<v>/do/<op>/list_id/<l>/prospect_id/<p>``), the list read that
checks a list exists (``list/version/<v>/do/read/id/<l>``) and external activities
(``POST /api/v5/external-activities``). PARDOT_API.md, "List membership" and "External
activities".

A list read answers ``{"list": {id, name, is_public, is_dynamic, title, description,
is_crm_visible, created_at, updated_at}}`` (the record RECORDED in the answer to
``list/version/4/do/create``, grouparoo's fixtures; a read answers the same element,
Pardot's docs), err 55 for a list the account does not have (the error table's
"Invalid list ID"), err 13 without an id. The fake's lists have no names of their own:
each is "List <id>", private, static, made at the demo's start (chosen).

``update`` sets the membership's ``opted_out`` from the request's ``opted_out`` (Pardot's
v4 List Membership Update, "update a list membership's information, including … list
subscription"; micahlmartin/pardot ``lib/list-membership.js`` calls
``do/update/list_id/<l>/prospect_id/<p>`` with the fields as parameters); a request
without ``opted_out`` changes nothing but ``updated_at``. A membership's ``opted_out``
travels as a JSON boolean (RECORDED). Whether Pardot accepts ``opted_out=false`` to
re-subscribe is UNCONFIRMED: the fake does.

Fake's choices: read/update/delete of a membership that does not exist answer err 3; an
external activity for an email with no prospect is still accepted (204) and recorded
with no prospect ids. Runs with the state lock held; never awaits, never renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fakepardot import constants as c
from fakepardot import fields
from fakepardot.model import Account, PardotFail, V5Fail
from fakepardot.prospects import ProspectBook

MEMBERSHIP_OPS = ("create", "read", "update", "delete")
#: When every list of the fake was made (chosen: lists come with the account).
LIST_CREATED_AT = "2021-05-04 15:45:40"


def list_record(list_id: int) -> dict[str, Any]:
    """A list as Pardot's v3/v4 read answers it (module docstring)."""
    return {
        "id": list_id,
        "name": f"List {list_id}",
        "is_public": False,
        "is_dynamic": False,
        "title": None,
        "description": None,
        "is_crm_visible": False,
        "created_at": LIST_CREATED_AT,
        "updated_at": LIST_CREATED_AT,
    }


def read_list(book: ProspectBook, op: str, rest: list[str]) -> dict[str, Any]:
    """``list/version/<v>/do/read/id/<l>``; other list operations are not emulated."""
    if op != "read":
        raise PardotFail(c.ERR_INVALID_ACTION)
    keys = dict(zip(rest[::2], rest[1::2], strict=False))
    raw = keys.get("id", "")
    if not raw:
        raise PardotFail(c.ERR_PARAM_MISSING)
    if not raw.isdigit() or int(raw) not in book.account.lists:
        raise PardotFail(c.ERR_INVALID_LIST)
    return {"list": list_record(int(raw))}


def list_membership(
    book: ProspectBook, op: str, rest: list[str], form: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    keys = dict(zip(rest[::2], rest[1::2], strict=False))
    if op not in MEMBERSHIP_OPS:
        raise PardotFail(c.ERR_INVALID_ACTION)
    raw_list, raw_prospect = keys.get("list_id", ""), keys.get("prospect_id", "")
    if not raw_list or not raw_prospect:
        raise PardotFail(c.ERR_PARAM_MISSING)
    if not raw_list.isdigit() or int(raw_list) not in book.account.lists:
        raise PardotFail(c.ERR_INVALID_LIST)
    members = book.account.lists[int(raw_list)]
    record = book.by_id(raw_prospect)
    if record is None:
        raise PardotFail(c.ERR_INVALID_PROSPECT_ID)
    prospect_id = record["id"]
    if op == "create":
        if prospect_id in members:
            raise PardotFail(c.ERR_ALREADY_MEMBER)
        members[prospect_id] = fields.membership(int(raw_list), prospect_id, book.state._now())
    elif prospect_id not in members:
        raise PardotFail(c.ERR_INVALID_PROSPECT_ID)
    elif op == "delete":
        del members[prospect_id]
        return None
    elif op == "update":
        _update_membership(members[prospect_id], form or {}, book.state._now())
    return {"list_membership": dict(members[prospect_id])}


def _update_membership(membership: dict[str, Any], form: Mapping[str, str], now: str) -> None:
    raw = form.get("opted_out")
    if raw is not None:
        membership["opted_out"] = fields.parse_boolean(raw) == 1
    membership["updated_at"] = now


def external_activity(book: ProspectBook, body: Any) -> None:
    """Record one activity; the v5 endpoint answers 204 with no body."""
    if not isinstance(body, Mapping):
        raise V5Fail(c.V5_ERR_INVALID_JSON)
    for name in ("extension", "type", "value", "email"):
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise V5Fail(c.V5_ERR_MISSING_PROPERTY, f"Missing required property: {name}")
    account: Account = book.account
    if (body["extension"], body["type"]) not in account.activity_types:
        raise V5Fail(
            c.V5_ERR_INVALID_PROPERTY,
            "Invalid property: no external activity type "
            f"{body['type']!r} in extension {body['extension']!r}",
        )
    if not fields.is_valid_email(body["email"]):
        raise V5Fail(c.V5_ERR_INVALID_PROPERTY, "Invalid property: email")
    matched = sorted(r["id"] for r in book.with_email(body["email"], archived=False))
    account.activities.append(
        {
            "extension": body["extension"],
            "type": body["type"],
            "value": body["value"],
            "email": body["email"],
            "prospect_ids": matched,
            "created_at": book.state._now(),
        }
    )
