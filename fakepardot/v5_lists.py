"""``POST /api/v5/objects/list-memberships?fields=…`` — add a prospect to a list, the v5
way (PARDOT_API.md lists "400 code 58 for a duplicate list membership" among v5's
errors; the membership is the one v3/v4's listMembership reads, kept per list).

Body ``{"listId": 501, "prospectId": 123, "optedOut": false}`` (``optedOut``
optional). 201 with the ``fields`` asked among ``id, listId, prospectId, optedOut,
createdAt, updatedAt`` (``id`` without: chosen). Already a member: 400 code 58; a list
the account lacks: 400 code 55; no such prospect, or one in the recycle bin: 400 code 3
(chosen); a missing ``listId``/``prospectId``: 400 code 153. Only create is emulated
(not emulated: another method on the collection is 405 code 60, a path below it 404
code 2, where Pardot has read, query, update and delete).

``GET /api/v5/objects/lists/<id>?fields=…`` — read a list (track checks that a mapping's
lists exist before any write): 200 with the ``fields`` asked among ``id, name, title,
description, isPublic, isDynamic, createdAt, updatedAt``; ``fields`` required (400 code
13, as for every v5 read); a list the account lacks: 404 code 109 "The requested record
was not found." (v5's answer for any record it does not have, PARDOT_API.md).

Runs with the state lock held; never awaits.
"""

from __future__ import annotations

from typing import Any

from fakepardot import constants as c
from fakepardot import fields
from fakepardot import v5_wire as w
from fakepardot.engagement import list_record
from fakepardot.model import V5Fail
from fakepardot.v5_fields import iso_timestamp
from fakepardot.wire import Reply

#: v5 name → the stored membership key.
MEMBERSHIP_FIELDS = {
    "id": "id",
    "listId": "list_id",
    "prospectId": "prospect_id",
    "optedOut": "opted_out",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}


def create(request: w.V5Call) -> Reply:
    body = w.json_body(request.call)
    names = w.query_fields(request.call) or ["id"]
    for name in names:
        if name not in MEMBERSHIP_FIELDS:
            raise w.fail(c.V5_ERR_INVALID_FIELD, name)
    list_id, prospect_id = _id(body, "listId"), _id(body, "prospectId")
    opted_out = body.get("optedOut", False)
    if not isinstance(opted_out, bool):
        raise w.fail(c.V5_ERR_INVALID_PROPERTY, "optedOut must be a boolean")
    members = request.account.lists.get(list_id)
    if members is None:
        raise w.fail(c.ERR_INVALID_LIST)
    record = request.account.prospects.get(prospect_id)
    if record is None or record.get("is_archived"):
        raise w.fail(c.ERR_INVALID_PROSPECT_ID)
    if prospect_id in members:
        raise w.fail(c.ERR_ALREADY_MEMBER)
    membership = fields.membership(list_id, prospect_id, request.state._now())
    membership["opted_out"] = 1 if opted_out else None
    members[prospect_id] = membership
    return w.document(201, {name: _value(membership, name) for name in names})


def _id(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if value is None:
        raise V5Fail(c.V5_ERR_MISSING_PROPERTY, f"Missing required property: {name}")
    if not isinstance(value, int) or isinstance(value, bool):
        raise w.fail(c.V5_ERR_INVALID_PROPERTY, f"{name} must be an integer")
    return value


def _value(membership: dict[str, Any], name: str) -> Any:
    value = membership.get(MEMBERSHIP_FIELDS[name])
    if name == "optedOut":
        return bool(value)
    if name in ("createdAt", "updatedAt") and value is not None:
        return iso_timestamp(str(value))
    return value


#: v5 name → the v3/v4 list record's key (engagement.list_record).
LIST_FIELDS = {
    "id": "id",
    "name": "name",
    "title": "title",
    "description": "description",
    "isPublic": "is_public",
    "isDynamic": "is_dynamic",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}


def read(request: w.V5Call) -> Reply:
    names = w.query_fields(request.call)
    if names is None:
        raise w.fail(c.ERR_PARAM_MISSING, "fields")
    for name in names:
        if name not in LIST_FIELDS:
            raise w.fail(c.V5_ERR_INVALID_FIELD, name)
    raw = request.call.segments[4]
    if not raw.isdigit() or int(raw) not in request.account.lists:
        raise w.fail(c.V5_ERR_RECORD_NOT_FOUND)
    record = list_record(int(raw))
    answer: dict[str, Any] = {}
    for name in names:
        value = record[LIST_FIELDS[name]]
        if name in ("createdAt", "updatedAt"):
            value = iso_timestamp(str(value))
        answer[name] = value
    return w.document(200, answer)
