"""Prospect operations of API versions 3 and 4, with each version's identity rules
(PARDOT_API.md, "Prospect operations"):

- v3: email is unique. create/email fails with err 9 if the email exists; upsert/email
  updates or creates; upsert/id falls back to the email, then creates, else err 14;
  update/email cannot change the email.
- v4: several prospects may share an email. create/email and upsert/email ALWAYS
  create; read/email returns every non-archived match, and finding none is err 4 with
  HTTP 400 (RECORDED); update and upsert need id or fid; upsert unarchives its match.
  upsert/fid with an fid no prospect has and an ``email`` creates a prospect with that
  email and fid, as Pardot's docs say (UNCONFIRMED in traffic: ``state.upsert_fid_creates``,
  default True; False answers err 77 as when no email is sent).

Answers honour ``output`` (fields.render): full by default, simple, mobile.

Fake's choices where the spec is silent: read/update/delete of an archived prospect
answer err 132 ("Prospect is archived"); v4 update/upsert/delete by email and v3 by fid
answer err 2 ("Invalid action"); a delete removes the prospect for good; a path id and a
form ``fid`` (or path fid and form ``id``) naming different prospects answer err 81.

Runs with the state lock held; never awaits, never sleeps, never renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fakepardot import constants as c
from fakepardot import fields
from fakepardot.fields import WritePlan
from fakepardot.model import Account, PardotFail, ProspectRecord
from fakepardot.state import FakeState

Payload = dict[str, Any] | None  # None: HTTP 204, empty body
#: What an operation touched: the prospect, every prospect read (v4 read/email), or None
#: (a delete: HTTP 204).
Outcome = ProspectRecord | list[ProspectRecord] | None


class ProspectBook:
    """One account's prospects, with the lookups and writes every operation shares."""

    def __init__(self, state: FakeState, account: Account) -> None:
        self.state = state
        self.account = account

    # --- lookups ---------------------------------------------------------------------

    def by_id(self, raw_id: str) -> ProspectRecord | None:
        return self.account.prospects.get(int(raw_id)) if raw_id.isdigit() else None

    def by_fid(self, fid: str) -> ProspectRecord | None:
        if not fields.is_valid_fid(fid):
            return None
        for record in self.account.prospects.with_fid_prefix(fid):
            if fields.fid_matches(record, fid):
                return record
        return None

    def with_email(self, email: str, *, archived: bool) -> list[ProspectRecord]:
        matches = self.account.prospects.with_email(email)
        if archived:
            return matches
        return [record for record in matches if not record.get("is_archived")]

    # --- writes ----------------------------------------------------------------------

    def plan(self, form: Mapping[str, str]) -> WritePlan:
        return fields.plan_write(self.account, form, self.state.unknown_custom_field)

    def create(self, email: str, plan: WritePlan, *, fid: str | None = None) -> ProspectRecord:
        """A new prospect; ``fid`` (a valid Lead or Contact id) is stored as its CRM id."""
        if not fields.is_valid_email(email):
            raise PardotFail(c.ERR_INVALID_EMAIL)
        now = self.state._now()
        record = fields.blank_record(self.state._next_id(), now)
        record["email"] = email
        if fid is not None:  # before ``add``: fids are indexed once, when it is added
            record[fields.fid_field(fid)] = fid
        if self.account.campaigns:
            record["campaign_id"] = self.account.campaigns[0]  # the oldest campaign
        self.account.prospects.add(record)
        fields.apply_write(self.account, record, plan.without_email(), now)
        return record

    def update(
        self, record: ProspectRecord, plan: WritePlan, *, email_rule: str, unarchive: bool = False
    ) -> ProspectRecord:
        """``email_rule``: "keep" (the key was the email), "unique" (v3) or "free" (v4)."""
        if plan.email is not None and email_rule != "keep":
            self._check_new_email(record, plan.email, unique=email_rule == "unique")
        else:
            plan = plan.without_email()
        if unarchive and record.get("is_archived") and "is_archived" not in plan.standard:
            record["is_archived"] = None
        fields.apply_write(self.account, record, plan, self.state._now())
        return record

    def remove(self, record: ProspectRecord) -> None:
        self.account.prospects.remove(record["id"])
        for members in self.account.lists.values():
            members.pop(record["id"], None)

    def _check_new_email(self, record: ProspectRecord, email: str, *, unique: bool) -> None:
        if not fields.is_valid_email(email):
            raise PardotFail(c.ERR_INVALID_EMAIL)
        if unique and any(o is not record for o in self.with_email(email, archived=True)):
            raise PardotFail(c.ERR_EMAIL_EXISTS)


def run(
    book: ProspectBook, version: int, op: str, key: tuple[str, str] | None, form: Mapping[str, str]
) -> Payload:
    """One prospect operation: ``op`` from ``do/<op>``, ``key`` = (id_field, value)."""
    outcome = apply(book, version, op, key, form)
    if outcome is None:
        return None
    output, account = form.get("output"), book.account
    if isinstance(outcome, list):
        rendered = [fields.render(r, output=output, account=account) for r in outcome]
        return {"prospect": rendered[0] if len(rendered) == 1 else rendered}
    return {"prospect": fields.render(outcome, output=output, account=account)}


def apply(
    book: ProspectBook, version: int, op: str, key: tuple[str, str] | None, form: Mapping[str, str]
) -> Outcome:
    """``run`` without the answer's rendering: a batch entry's answer is only whether
    it failed, and rendering every prospect of a batch was wasted work."""
    if key is None or key[0] not in ("email", "id", "fid"):
        raise PardotFail(c.ERR_PARAM_MISSING if key is None else c.ERR_INVALID_ACTION)
    handler = (_V3 if version == 3 else _V4).get((op, key[0]))
    if handler is None:
        raise PardotFail(c.ERR_INVALID_ACTION)
    return handler(book, key[1], form)


# --- shared steps --------------------------------------------------------------------


def _found(record: ProspectRecord | None, err_code: int) -> ProspectRecord:
    if record is None:
        raise PardotFail(err_code)
    return record


def _live(record: ProspectRecord) -> ProspectRecord:
    if record.get("is_archived"):
        raise PardotFail(c.ERR_PROSPECT_ARCHIVED)
    return record


def _by_id(book: ProspectBook, raw_id: str, form: Mapping[str, str]) -> ProspectRecord:
    record = _found(book.by_id(raw_id), c.ERR_INVALID_PROSPECT_ID)
    fid = form.get("fid")
    if fid and not fields.fid_matches(record, fid):
        raise PardotFail(c.ERR_ID_FID_MISMATCH)
    return record


def _by_fid(book: ProspectBook, fid: str, form: Mapping[str, str]) -> ProspectRecord:
    record = _found(book.by_fid(fid), c.ERR_INVALID_FID)
    raw_id = form.get("id")
    if raw_id and str(record["id"]) != raw_id:
        raise PardotFail(c.ERR_ID_FID_MISMATCH)
    return record


def _v3_by_email(book: ProspectBook, email: str) -> ProspectRecord:
    matches = book.with_email(email, archived=True)
    return _found(matches[0] if matches else None, c.ERR_INVALID_EMAIL)


# --- version 3 (email is unique) -------------------------------------------------------


def _v3_create_email(book: ProspectBook, email: str, form: Mapping[str, str]) -> Outcome:
    if fields.is_valid_email(email) and book.with_email(email, archived=True):
        raise PardotFail(c.ERR_EMAIL_EXISTS)
    return book.create(email, book.plan(form))


def _v3_read_email(book: ProspectBook, email: str, form: Mapping[str, str]) -> Outcome:
    return _live(_v3_by_email(book, email))


def _read_id(book: ProspectBook, raw_id: str, form: Mapping[str, str]) -> Outcome:
    return _live(_by_id(book, raw_id, form))


def _v3_update_email(book: ProspectBook, email: str, form: Mapping[str, str]) -> Outcome:
    record = _live(_v3_by_email(book, email))
    return book.update(record, book.plan(form), email_rule="keep")


def _v3_update_id(book: ProspectBook, raw_id: str, form: Mapping[str, str]) -> Outcome:
    record = _live(_by_id(book, raw_id, form))
    return book.update(record, book.plan(form), email_rule="unique")


def _v3_upsert_email(book: ProspectBook, email: str, form: Mapping[str, str]) -> Outcome:
    plan = book.plan(form)
    if not fields.is_valid_email(email):
        raise PardotFail(c.ERR_INVALID_EMAIL)
    matches = book.with_email(email, archived=True)
    if matches:
        return book.update(matches[0], plan, email_rule="keep", unarchive=True)
    return book.create(email, plan)


def _v3_upsert_id(book: ProspectBook, raw_id: str, form: Mapping[str, str]) -> Outcome:
    plan = book.plan(form)
    record = book.by_id(raw_id)
    if record is not None:
        return book.update(record, plan, email_rule="unique", unarchive=True)
    email = plan.email
    if not email:
        raise PardotFail(c.ERR_UPSERT_NO_EMAIL)
    if not fields.is_valid_email(email):
        raise PardotFail(c.ERR_INVALID_EMAIL)
    matches = book.with_email(email, archived=True)
    if matches:
        return book.update(matches[0], plan, email_rule="keep", unarchive=True)
    return book.create(email, plan)


def _v3_delete_email(book: ProspectBook, email: str, form: Mapping[str, str]) -> Outcome:
    book.remove(_v3_by_email(book, email))
    return None


def _delete_id(book: ProspectBook, raw_id: str, form: Mapping[str, str]) -> Outcome:
    book.remove(_by_id(book, raw_id, form))
    return None


# --- version 4 (several prospects may share an email) ----------------------------------


def _v4_create_email(book: ProspectBook, email: str, form: Mapping[str, str]) -> Outcome:
    return book.create(email, book.plan(form))


def _v4_read_email(book: ProspectBook, email: str, form: Mapping[str, str]) -> Outcome:
    matches = sorted(book.with_email(email, archived=False), key=lambda r: r["id"])
    if not matches:  # nobody (or a malformed email): HTTP 400, RECORDED
        raise PardotFail(c.ERR_INVALID_EMAIL, http_status=c.READ_EMAIL_NOT_FOUND_HTTP_STATUS)
    return matches


def _v4_read_fid(book: ProspectBook, fid: str, form: Mapping[str, str]) -> Outcome:
    return _live(_by_fid(book, fid, form))


def _v4_update_id(book: ProspectBook, raw_id: str, form: Mapping[str, str]) -> Outcome:
    record = _live(_by_id(book, raw_id, form))
    return book.update(record, book.plan(form), email_rule="free")


def _v4_update_fid(book: ProspectBook, fid: str, form: Mapping[str, str]) -> Outcome:
    record = _live(_by_fid(book, fid, form))
    return book.update(record, book.plan(form), email_rule="free")


def _v4_upsert_id(book: ProspectBook, raw_id: str, form: Mapping[str, str]) -> Outcome:
    record = _by_id(book, raw_id, form)
    return book.update(record, book.plan(form), email_rule="free", unarchive=True)


def _v4_upsert_fid(book: ProspectBook, fid: str, form: Mapping[str, str]) -> Outcome:
    if book.by_fid(fid) is None and book.state.upsert_fid_creates and not form.get("id"):
        plan = book.plan(form)
        if plan.email and fields.is_valid_fid(fid):  # no email: err 77, as below
            return book.create(plan.email, plan, fid=fid)
    record = _by_fid(book, fid, form)
    return book.update(record, book.plan(form), email_rule="free", unarchive=True)


def _v4_delete_fid(book: ProspectBook, fid: str, form: Mapping[str, str]) -> Outcome:
    book.remove(_by_fid(book, fid, form))
    return None


_V3 = {
    ("create", "email"): _v3_create_email,
    ("read", "email"): _v3_read_email,
    ("read", "id"): _read_id,
    ("update", "email"): _v3_update_email,
    ("update", "id"): _v3_update_id,
    ("upsert", "email"): _v3_upsert_email,
    ("upsert", "id"): _v3_upsert_id,
    ("delete", "email"): _v3_delete_email,
    ("delete", "id"): _delete_id,
}

_V4 = {
    ("create", "email"): _v4_create_email,
    ("read", "email"): _v4_read_email,
    ("read", "id"): _read_id,
    ("read", "fid"): _v4_read_fid,
    ("update", "id"): _v4_update_id,
    ("update", "fid"): _v4_update_fid,
    ("upsert", "id"): _v4_upsert_id,
    ("upsert", "fid"): _v4_upsert_fid,
    ("upsert", "email"): _v4_create_email,  # ALWAYS creates: email is not a key in v4
    ("delete", "id"): _delete_id,
    ("delete", "fid"): _v4_delete_fid,
}
