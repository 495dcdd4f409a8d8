"""``POST /api/v5/objects/list-memberships?fields=…`` — add a prospect to a list, the v5
way (PARDOT_API.md lists "400 code 58 for a duplicate list membership" among v5's
errors; the membership is the one v3/v4's listMembership reads, kept per list).

Body ``{"listId": 501, "prospectId": 123, "optedOut": false}`` (``optedOut``
optional). 201 with the ``fields`` asked among ``id, listId, prospectId, optedOut,
createdAt, updatedAt`` (``id`` without: chosen). Already a member: 400 code 58; a list
the account lacks: 400 code 55; no such prospect, or one in the recycle bin: 400 code 3
(chosen); a missing ``listId``/``prospectId``: 400 code 153.

The rest of Salesforce's v5 List Membership object (developer.salesforce.com, Pardot
guide "List Membership Object" v5: Read GET ``…/list-memberships/<id>``, Update PATCH
``…/list-memberships/<id>``, Query GET ``…/list-memberships``, Delete DELETE
``…/list-memberships/<id>``):

- query: ``fields`` required (400 code 13, as every v5 read); filters ``listId`` and
  ``prospectId`` (equality; UNCONFIRMED as filter names: they are the object's field
  names, the way v5 prospect queries filter); one page ``{"nextPageToken": null,
  "nextPageUrl": null, "values": [...]}`` (chosen: a person's memberships of one list
  never fill a page); a filter that is not an integer: the invalid-query error the
  prospect query answers (``ERR_INVALID_QUERY``).
- read / PATCH / DELETE by id: 404 code 109 for a membership the account lacks. PATCH
  takes ``optedOut`` (a boolean) and answers 200 with the ``fields`` asked (204
  without); DELETE answers 204. A membership's id is ``list id * 1,000,000 + prospect
  id`` (chosen).

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
from fakepardot.wire import NO_CONTENT, Reply

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
    membership["opted_out"] = opted_out
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


# --- the rest of the list-membership object -----------------------------------------


def _asked(request: w.V5Call, *, required: bool) -> list[str] | None:
    names = w.query_fields(request.call)
    if names is None and required:
        raise w.fail(c.ERR_PARAM_MISSING, "fields")
    for name in names or ():
        if name not in MEMBERSHIP_FIELDS:
            raise w.fail(c.V5_ERR_INVALID_FIELD, name)
    return names


def _rendered(membership: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {name: _value(membership, name) for name in names}


def query(request: w.V5Call) -> Reply:
    names = _asked(request, required=True)
    assert names is not None
    wanted: dict[str, int] = {}
    for name in ("listId", "prospectId"):
        raw = request.call.query.get(name)
        if raw is not None:
            if not raw.isdigit():
                raise w.fail(c.ERR_INVALID_QUERY, f"{name} must be an integer")
            wanted[name] = int(raw)
    found = [
        membership
        for list_id, members in sorted(request.account.lists.items())
        if wanted.get("listId", list_id) == list_id
        for prospect_id, membership in sorted(members.items())
        if wanted.get("prospectId", prospect_id) == prospect_id
    ]
    values = [_rendered(membership, names) for membership in found]
    return w.document(200, {"nextPageToken": None, "nextPageUrl": None, "values": values})


def _membership(request: w.V5Call) -> dict[str, Any]:
    raw = request.call.segments[4]
    if raw.isdigit():
        list_id, prospect_id = divmod(int(raw), 1_000_000)
        found = request.account.lists.get(list_id, {}).get(prospect_id)
        if found is not None and found["id"] == int(raw):
            return found
    raise w.fail(c.V5_ERR_RECORD_NOT_FOUND)


def read_membership(request: w.V5Call) -> Reply:
    names = _asked(request, required=True)
    assert names is not None
    return w.document(200, _rendered(_membership(request), names))


def update(request: w.V5Call) -> Reply:
    names = _asked(request, required=False)
    membership = _membership(request)
    body = w.json_body(request.call)
    if "optedOut" in body:
        if not isinstance(body["optedOut"], bool):
            raise w.fail(c.V5_ERR_INVALID_PROPERTY, "optedOut must be a boolean")
        membership["opted_out"] = body["optedOut"]
    membership["updated_at"] = request.state._now()
    if names is None:
        return NO_CONTENT
    return w.document(200, _rendered(membership, names))


def delete(request: w.V5Call) -> Reply:
    membership = _membership(request)
    del request.account.lists[membership["list_id"]][membership["prospect_id"]]
    return NO_CONTENT
