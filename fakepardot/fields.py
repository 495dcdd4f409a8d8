"""Prospect fields: which names a write may set, how values are validated and stored,
and how a stored prospect looks on the wire.

Rules (PARDOT_API.md, "Prospect fields"): writable standard fields are stored,
read-only ones are ignored, custom fields are stored only if the account has them
(unknown ones are ignored or refused, per ``state.unknown_custom_field``), an empty
value clears a field, ``field_0=a&field_1=b`` is a multi-value custom field, and
``list_<id>=1`` adds the prospect to a list and ``list_<id>=0`` removes it (PARDOT_API.md,
"List membership"; removing a non-member is no error: chosen, nothing documents one).
What ``list_<id>=1`` does to a membership the prospect opted out of is not documented:
the switch ``list_field_resubscribes`` (False: it stays opted out; True: subscribed
again). Never touches the network or the lock.

On the wire (``render``, PARDOT_API.md "Responses", RECORDED): Pardot's default field
order, ``password`` null, no ``is_archived`` / ``prospect_account_id``, then
``campaign: {id, name}``, the custom fields that hold a value and, in a full answer,
``profile``, ``visitors``, ``visitor_activities`` and ``lists``; ``output=mobile`` gives
only id, first_name, last_name, email and company. Fake's choices: a campaign is named
"Campaign <id>" and a list "List <id>" (the fake keeps no names); every prospect has
the same "Default" profile; ``visitors`` and ``visitor_activities`` are null.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fakepardot import constants as c
from fakepardot.model import Account, PardotFail, ProspectRecord

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_FID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_LIST_FIELD = re.compile(r"^list_(\d+)$")
_MULTI_VALUE = re.compile(r"^(.+)_(\d+)$")

#: Request parameters that are not prospect fields.
NOT_FIELDS = frozenset({"format", "output", "api_key", "user_key", "id", "fid"})

_WRITABLE = frozenset(c.WRITABLE_FIELDS)
_READ_ONLY = frozenset(c.READ_ONLY_FIELDS)
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false", ""})


def is_valid_email(value: str) -> bool:
    return len(value) <= c.MAX_EMAIL_LENGTH and bool(_EMAIL.match(value))


def is_valid_fid(value: str) -> bool:
    """A Salesforce Lead or Contact id, 15 or 18 characters."""
    return bool(_FID.match(value)) and value.startswith(c.FID_PREFIXES)


def fid_field(fid: str) -> str:
    """Where a prospect keeps ``fid``: a Lead's (00Q…) or a Contact's (003…) CRM id."""
    return "crm_lead_fid" if fid.startswith("00Q") else "crm_contact_fid"


def fid_matches(record: ProspectRecord, fid: str) -> bool:
    """A 15-character id names the same record as its 18-character form."""
    for key in ("crm_lead_fid", "crm_contact_fid"):
        stored = record.get(key)
        if not stored:
            continue
        if stored == fid or (min(len(stored), len(fid)) == 15 and stored[:15] == fid[:15]):
            return True
    return False


@dataclass
class WritePlan:
    """A validated write: nothing is applied until every value passed."""

    standard: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, str | list[str] | None] = field(default_factory=dict)
    lists: dict[int, bool] = field(default_factory=dict)

    @property
    def email(self) -> str | None:
        return self.standard.get("email")

    def without_email(self) -> WritePlan:
        if "email" not in self.standard:
            return self  # plans are never changed once made: no copy needed
        standard = {k: v for k, v in self.standard.items() if k != "email"}
        return WritePlan(standard, dict(self.custom), dict(self.lists))


def plan_write(account: Account, form: Mapping[str, str], unknown_custom_field: str) -> WritePlan:
    """Validate a write's fields against the account; raise the first Pardot error."""
    plan = WritePlan()
    multi: dict[str, dict[int, str]] = {}
    for name, raw in form.items():
        value = raw if isinstance(raw, str) else str(raw)
        if name in NOT_FIELDS or name in _READ_ONLY:
            continue
        if name in _WRITABLE:
            plan.standard[name] = _standard_value(account, name, value)
        elif name in account.custom_fields:
            plan.custom[name] = value or None
        elif match := _LIST_FIELD.match(name):
            list_id = int(match.group(1))
            if list_id not in account.lists:
                raise PardotFail(c.ERR_INVALID_LIST)
            plan.lists[list_id] = _boolean(value) == 1
        elif (match := _MULTI_VALUE.match(name)) and match.group(1) in account.custom_fields:
            multi.setdefault(match.group(1), {})[int(match.group(2))] = value
        elif unknown_custom_field == "error":
            raise PardotFail(c.ERR_INVALID_FIELDS)
    for name, values in multi.items():
        kept = [values[i] for i in sorted(values) if values[i]]
        plan.custom[name] = kept or None
    return plan


def _standard_value(account: Account, name: str, value: str) -> Any:
    if name in c.BOOLEAN_FIELDS:
        return _boolean(value)
    if name == "campaign_id":
        if not value.isdigit() or int(value) not in account.campaigns:
            raise PardotFail(c.ERR_INVALID_CAMPAIGN)
        return int(value)
    if name == "score":
        if not re.fullmatch(r"-?\d+", value or "0"):
            raise PardotFail(c.ERR_INVALID_NUMBER)
        return int(value or "0")
    if name == "prospect_account_id":
        if value and not value.isdigit():
            raise PardotFail(c.ERR_INVALID_PROSPECT_ACCOUNT)
        return int(value) if value else None
    return value or None


def parse_boolean(value: str) -> int | None:
    """A form boolean as Pardot reads it: 1, None (false or empty), or err 76."""
    return _boolean(value)


def _boolean(value: str) -> int | None:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return 1
    if lowered in _FALSE:
        return None
    raise PardotFail(c.ERR_INVALID_BOOLEAN)


_BLANK: ProspectRecord = dict.fromkeys(c.RECORD_FIELDS)


def blank_record(prospect_id: int, now: str) -> ProspectRecord:
    record = _BLANK.copy()
    record.update(
        id=prospect_id,
        score=0,
        recent_interaction=c.NEVER_ACTIVE,
        created_at=now,
        updated_at=now,
        _custom={},
    )
    return record


def apply_write(account: Account, record: ProspectRecord, plan: WritePlan, now: str) -> None:
    """Apply a validated plan; ``record`` must already be in ``account.prospects``."""
    for name, value in plan.standard.items():
        if name == "password":
            record["_password"] = value
        elif name == "email":
            account.prospects.set_email(record, value)  # keeps the email index right
        else:
            record[name] = value
    custom = record.setdefault("_custom", {})
    for name, value in plan.custom.items():
        if value is None:
            custom.pop(name, None)
        else:
            custom[name] = value
    for list_id, member in plan.lists.items():
        members = account.lists[list_id]
        if member and record["id"] not in members:
            members[record["id"]] = membership(list_id, record["id"], now)
        elif member and members[record["id"]]["opted_out"] and account.list_field_resubscribes:
            members[record["id"]].update(opted_out=False, updated_at=now)
        elif not member:
            members.pop(record["id"], None)  # a non-member: nothing to remove, no error
    record["updated_at"] = now


def membership(list_id: int, prospect_id: int, now: str) -> dict[str, Any]:
    return {
        "id": list_id * 1_000_000 + prospect_id,
        "list_id": list_id,
        "prospect_id": prospect_id,
        "opted_out": False,  # a JSON boolean here (RECORDED), unlike a prospect's 1/null
        "created_at": now,
        "updated_at": now,
    }


def render(
    record: ProspectRecord,
    only: frozenset[str] | None = None,
    *,
    output: str | None = None,
    account: Account | None = None,
) -> dict[str, Any]:
    """The prospect as Pardot returns it (see the module docstring). ``only``: a
    query's ``fields`` (``id`` always stays). ``output``: "full" (the default), "simple"
    and "bulk" (no relations), "mobile"; anything else reads as the default. A full
    answer's ``lists`` come from ``account``'s memberships (null without one)."""
    if output == "mobile":
        return {name: record.get(name) for name in c.MOBILE_FIELDS}
    out: dict[str, Any] = {name: record.get(name) for name in c.OUTPUT_FIELDS}
    out["password"] = None  # write-only: Pardot answers null, whatever was set
    campaign_id = record.get("campaign_id")
    if campaign_id is not None:
        out["campaign"] = {"id": campaign_id, "name": f"Campaign {campaign_id}"}
    for name, value in record.get("_custom", {}).items():
        out[name] = _custom_output(value)
    if only is not None:
        return {k: v for k, v in out.items() if k == "id" or k in only}
    if output in (None, "", "full"):
        out["profile"] = c.PROFILE
        out["visitors"] = None
        out["visitor_activities"] = None
        out["lists"] = _lists(record["id"], account)
    return out


def _custom_output(value: str | list[str]) -> str | dict[str, list[str]]:
    """A custom field as v3/v4 show it: a multi-value field's several values as
    ``{"value": [...]}`` (XML: one ``<value>`` element each), one value as a plain one
    (code-dot-org/code-dot-org PR 35472, from real v4 XML answers:
    ``<db_Roles><value>Teacher</value><value>CSF Teacher</value></db_Roles>``, and
    ``<db_Hour_of_Code_Organizer>2013</db_Hour_of_Code_Organizer>`` for one)."""
    if not isinstance(value, list):
        return value
    return {"value": list(value)} if len(value) > 1 else value[0]


def _lists(prospect_id: int, account: Account | None) -> dict[str, Any] | None:
    """A full answer's ``lists``: ``{"list_subscription": one or a list}``, or null."""
    if account is None:
        return None
    subscriptions = [
        _subscription(list_id, members[prospect_id])
        for list_id, members in sorted(account.lists.items())
        if prospect_id in members
    ]
    if not subscriptions:
        return None
    return {"list_subscription": subscriptions[0] if len(subscriptions) == 1 else subscriptions}


def _subscription(list_id: int, member: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": member["id"],
        "did_opt_in": False,
        "did_opt_out": False,
        "created_at": member["created_at"],
        "updated_at": member["updated_at"],
        "list": {
            "id": list_id,
            "name": f"List {list_id}",
            "is_public": False,
            "is_dynamic": False,
            "title": None,
            "description": None,
            "is_crm_visible": False,
            "created_at": member["created_at"],
            "updated_at": member["updated_at"],
        },
    }
