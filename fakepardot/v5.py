"""API v5 prospects (PARDOT_API.md, "API v5 (prospects)"): every request under
``/api/v5/objects/`` after the pipeline has authenticated it and admitted it past the
account's limits (app.py). The prospects are the v3/v4 ones (one store), shown in v5's
names (v5_fields.py); "deleted" means "in the recycle bin" (v3/v4's archived state).

    POST   /api/v5/objects/prospects/do/upsertLatestByEmail      200, the ``fields`` asked
    POST   /api/v5/objects/prospects/do/undelete                 200, the ``fields`` asked
    POST   /api/v5/objects/prospects?fields=…                    201 + Location
    GET    /api/v5/objects/prospects/<id>?fields=…               200
    PATCH  /api/v5/objects/prospects/<id>?fields=…               200, or 204 without fields
    DELETE /api/v5/objects/prospects/<id>                        204 (into the recycle bin)
    GET    /api/v5/objects/prospects?fields=…&email=…            200, a page (v5_query.py)
    POST   /api/v5/objects/list-memberships?fields=…             201 (v5_lists.py)
    GET    /api/v5/objects/lists/<id>?fields=…                   200 (v5_lists.py)

A known path with another method is 405 code 60; any other path under /objects/ is
404 code 2 ``Invalid action`` (chosen). Email matching is exact (case-sensitive, as
Segment documents Pardot's). Matching among several prospects with one email: the
``v5_upsert_match`` switch; ``fields`` on the email-keyed writes: the
``v5_upsert_fields_required`` switch (v5_switches.py).

Business units that allow one prospect per email (the fake's "v3" account): a create
or an email change onto an email another prospect holds is 400 code 54 (chosen, the
registry's "Email address is already in use"), except that a create whose email only
prospects in the recycle bin hold undeletes the latest of them instead (Salesforce Help,
"Remove a Prospect from the Recycle Bin": adding a prospect with a deleted prospect's
email undeletes it there), and upsertLatestByEmail undeletes regardless of
``secondaryDeletedSearch`` (Segment: the flag "only affects AMPSEA accounts").

Runs with the state lock held; never awaits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fakepardot import constants as c
from fakepardot import fields, v5_fields, v5_lists, v5_query
from fakepardot import v5_wire as w
from fakepardot.model import Account, ProspectRecord, V5Fail
from fakepardot.state import FakeState
from fakepardot.v5_wire import V5Call
from fakepardot.wire import NO_CONTENT, Incoming, Reply

COLLECTION = "prospects"
Handler = Callable[[V5Call], Reply]


def run(state: FakeState, call: Incoming, account: Account | None, base_url: str) -> Reply:
    """Answer one request under /api/v5/objects/ (segments: api, v5, objects, …)."""
    assert account is not None
    request = V5Call(state, call, account, base_url)
    obj, rest = call.segments[3] if len(call.segments) > 3 else "", call.segments[4:]
    methods = _routes(obj, rest)
    if methods is None:
        raise w.fail(c.ERR_INVALID_ACTION)
    handler = methods.get(call.method)
    if handler is None:
        raise w.fail(c.V5_ERR_METHOD)
    return handler(request)


def _routes(obj: str, rest: list[str]) -> Mapping[str, Handler] | None:
    if obj == "list-memberships" and not rest:
        return {"POST": v5_lists.create, "GET": v5_lists.query}
    if obj == "list-memberships" and len(rest) == 1:
        return {
            "GET": v5_lists.read_membership,
            "PATCH": v5_lists.update,
            "DELETE": v5_lists.delete,
        }
    if obj == "lists" and len(rest) == 1:
        return {"GET": v5_lists.read}
    if obj != COLLECTION:
        return None
    if not rest:
        return {"GET": v5_query.run, "POST": _create}
    if len(rest) == 1:
        return {"GET": _read, "PATCH": _update, "DELETE": _delete}
    if rest == ["do", "upsertLatestByEmail"]:
        return {"POST": _upsert_latest_by_email}
    if rest == ["do", "undelete"]:
        return {"POST": _undelete}
    return None


# --- by id ------------------------------------------------------------------------------


def _by_id(request: V5Call, *, deleted_ok: bool = False) -> ProspectRecord:
    """The prospect the path names: 404 code 109 if there is none, or if it is in the
    recycle bin (with a Pardot-Warning saying so) unless ``deleted_ok``."""
    raw = request.call.segments[4]
    record = request.account.prospects.get(int(raw)) if raw.isdigit() else None
    if record is None:
        raise w.not_found()
    if record.get("is_archived") and not deleted_ok:
        raise w.not_found(in_recycle_bin=True)
    return record


def _read(request: V5Call) -> Reply:
    """GET …/prospects/<id>?fields=… — ``fields`` required (400 code 13); ``deleted=
    true|all`` reads a prospect in the recycle bin (version 5 overview; err 192's text)."""
    names = request.selection(w.query_fields(request.call))
    if names is None:
        raise w.fail(c.ERR_PARAM_MISSING, "fields")
    deleted = request.call.query.get("deleted", "false").lower()
    record = _by_id(request, deleted_ok=deleted in ("true", "all"))
    return w.document(200, v5_fields.render(record, names))


def _update(request: V5Call) -> Reply:
    """PATCH …/prospects/<id>?fields=… — the body's fields change, the others stay; 200
    with the ``fields`` asked, 204 without (version 5 overview). A prospect in the
    recycle bin: 400 code 219 (its registry text; the status is chosen)."""
    body = w.json_body(request.call)
    names = request.selection(w.query_fields(request.call))
    record = _by_id(request, deleted_ok=True)
    if record.get("is_archived"):
        raise w.fail(c.V5_ERR_DELETED_RECORD)
    plan = v5_fields.plan(request.account, body, null_clears=request.state.v5_null_clears)
    if plan.email is not None and plan.email != record.get("email"):
        _check_email_free(request, plan.email, record)
    fields.apply_write(request.account, record, plan, request.state._now())
    if names is None:
        return NO_CONTENT
    return w.document(200, v5_fields.render(record, names))


def _delete(request: V5Call) -> Reply:
    """DELETE …/prospects/<id> — into the recycle bin, 204 with no body (version 5
    overview; v3/v4 deletes are 204 too). Its list memberships stay, to come back on an
    undelete (chosen). Deleting it again: 404 code 109 with the recycle bin warning —
    unless ``deleted=true`` asks for a prospect in the recycle bin and the
    ``v5_permanent_delete`` switch (UNCONFIRMED) lets it go for good."""
    forever = request.call.query.get("deleted", "false").lower() == "true"
    if forever and request.state.v5_permanent_delete:
        record = _by_id(request, deleted_ok=True)
        if not record.get("is_archived"):
            raise w.not_found()  # only what is in the recycle bin goes for good
        prospect_id = int(request.call.segments[4])
        request.account.prospects.remove(prospect_id)
        for members in request.account.lists.values():
            members.pop(prospect_id, None)
        return NO_CONTENT
    record = _by_id(request)
    record["is_archived"] = 1
    return NO_CONTENT


# --- create and the email-keyed writes --------------------------------------------------


def _create(request: V5Call) -> Reply:
    """POST …/prospects?fields=… — body: the prospect (``email`` required: 400 code 153).
    201, the ``fields`` asked (``id``, ``email`` without), ``Location`` of the new record."""
    body = w.json_body(request.call)
    names = request.selection(w.query_fields(request.call)) or list(v5_fields.DEFAULT_ANSWER)
    if "email" not in body:
        raise V5Fail(c.V5_ERR_MISSING_PROPERTY, "Missing required property: email")
    plan = v5_fields.plan(request.account, body, null_clears=request.state.v5_null_clears)
    assert plan.email is not None  # checked by the plan: email is a valid string
    record: ProspectRecord | None = None
    if not request.ampsea:
        holders = _with_email(request, plan.email)
        if any(not r.get("is_archived") for r in holders):
            raise w.fail(c.V5_ERR_EMAIL_IN_USE)
        if holders:
            record = _latest(request, holders)
            record["is_archived"] = None
            fields.apply_write(request.account, record, plan, request.state._now())
    if record is None:
        record = request.book.create(plan.email, plan)
    location = f"{request.base_url}/api/v5/objects/{COLLECTION}/{record['id']}"
    return w.document(201, v5_fields.render(record, names), [("Location", location)])


def _upsert_latest_by_email(request: V5Call) -> Reply:
    """POST …/do/upsertLatestByEmail — body ``{"matchEmail", "prospect": {…},
    "fields": [...], "secondaryDeletedSearch": bool}``. Updates the prospect with that
    email picked by ``v5_upsert_match``, else (``secondaryDeletedSearch: true``, or a
    business unit without AMPSEA) undeletes and updates the latest of those in the
    recycle bin, else creates one (with ``prospect.email``, else ``matchEmail``).
    ``prospect.email`` may differ from ``matchEmail``: it changes the email. HTTP 200
    either way (PARDOT_API.md), a bare object of the ``fields`` asked."""
    body = w.json_body(request.call)
    email = _match_email(body)
    prospect = body.get("prospect")
    if not isinstance(prospect, dict):
        raise V5Fail(c.V5_ERR_MISSING_PROPERTY, "Missing required property: prospect")
    deleted_search = body.get("secondaryDeletedSearch", False)
    if not isinstance(deleted_search, bool):
        raise w.fail(c.V5_ERR_INVALID_PROPERTY, "secondaryDeletedSearch must be a boolean")
    names = _answer_fields(request, body)
    plan = v5_fields.plan(request.account, prospect, null_clears=request.state.v5_null_clears)
    matches = _with_email(request, email)
    live = [r for r in matches if not r.get("is_archived")]
    deleted = [r for r in matches if r.get("is_archived")]
    record: ProspectRecord | None = None
    if live:
        record = _latest(request, live)
    elif deleted and (deleted_search or not request.ampsea):
        record = _latest(request, deleted)
    if record is None:
        record = request.book.create(plan.email or email, plan)
    else:
        if plan.email is not None and plan.email != record.get("email"):
            _check_email_free(request, plan.email, record)
        record["is_archived"] = None
        fields.apply_write(request.account, record, plan, request.state._now())
    return w.document(200, v5_fields.render(record, names))


def _undelete(request: V5Call) -> Reply:
    """POST …/do/undelete — body ``{"matchEmail", "fields": [...]}`` (chosen: the guide
    names the operation "Undelete (Record in deleted state with Latest Activity At by
    Email)" on a path without an id, so the body names the email, as upsertLatestByEmail
    does). Undeletes the prospect with that email in the recycle bin picked by
    ``v5_upsert_match``; none: 404 code 109. 200, the ``fields`` asked."""
    body = w.json_body(request.call)
    email = _match_email(body)
    names = _answer_fields(request, body)
    deleted = [r for r in _with_email(request, email) if r.get("is_archived")]
    if not deleted:
        raise w.not_found()
    record = _latest(request, deleted)
    record["is_archived"] = None
    return w.document(200, v5_fields.render(record, names))


# --- shared steps ---------------------------------------------------------------------


def _match_email(body: Mapping[str, Any]) -> str:
    email = body.get("matchEmail")
    if email is None:
        raise V5Fail(c.V5_ERR_MISSING_PROPERTY, "Missing required property: matchEmail")
    if not isinstance(email, str) or not fields.is_valid_email(email):
        raise V5Fail(c.ERR_INVALID_EMAIL)
    return email


def _answer_fields(request: V5Call, body: Mapping[str, Any]) -> list[str]:
    """The ``fields`` of an email-keyed write's body, per ``v5_upsert_fields_required``."""
    names = request.selection(w.body_fields(body))
    if names is not None:
        return names
    if request.state.v5_upsert_fields_required:
        raise w.fail(c.ERR_PARAM_MISSING, "fields")
    return list(v5_fields.DEFAULT_ANSWER)


def _with_email(request: V5Call, email: str) -> list[ProspectRecord]:
    """Every prospect whose email is exactly ``email`` (the recycle bin's included);
    the store's index ignores case, v5 does not."""
    return [r for r in request.account.prospects.with_email(email) if r.get("email") == email]


def _latest(request: V5Call, records: list[ProspectRecord]) -> ProspectRecord:
    """The prospect upsertLatestByEmail and undelete pick (``v5_upsert_match``): the
    latest activity (or update), a prospect with none counting as oldest; ties go to
    the newest (highest) id. Stored timestamps sort like the times they name."""
    column = (
        "last_activity_at" if request.state.v5_upsert_match == "last_activity" else "updated_at"
    )
    return max(records, key=lambda r: (str(r.get(column) or ""), r["id"]))


def _check_email_free(request: V5Call, email: str, record: ProspectRecord) -> None:
    """Without AMPSEA, an email another prospect holds is refused (400 code 54)."""
    if not request.ampsea and any(o is not record for o in _with_email(request, email)):
        raise w.fail(c.V5_ERR_EMAIL_IN_USE)
