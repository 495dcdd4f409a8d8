"""API v5's names for a prospect's fields, and the one record both dialects share.

A v5 prospect is the v3/v4 record (a prospect written by v4 reads back in v5), shown
under v5's camelCase names (PARDOT_API.md, "API v5 (prospects)"): ``first_name`` is
``firstName``, a custom field ``org_id`` is ``org_id__c`` (``<field id>__c``, by the rule
PARDOT_API.md gives for ``biography``; UNCONFIRMED for ids with underscores). On the wire
v5 is typed where v3/v4 was not: booleans are ``true``/``false`` (stored as 1/None),
ids, ``campaignId``, ``score`` and ``prospectAccountId`` are integers, timestamps are
ISO-8601 with an offset (``2024-01-01T10:00:00+00:00``: the fake's clock is UTC), an
empty field is ``null``, a multi-value custom field is an array. ``isDeleted`` is
whether the prospect is in the recycle bin (v3/v4's "archived" state: err 132's text
says an archived prospect "is in the recycle bin and can't be read").

Writes (fake's choices, v5 being "stricter typing" in Salesforce's words): a name that is
not a writable v5 field (a read-only one, an unknown one, a custom field the account
lacks) is 400 code 180; a value of the wrong JSON type is 400 with the code v3/v4 use
for that field (4 email, 50 boolean, 56 score, 38 campaignId, 61 prospectAccountId) or
154 for a string field. ``""`` clears a field; ``null`` clears it too unless the
``v5_null_clears`` switch is off (UNCONFIRMED: v3/v4 clear by an empty value, RECORDED
that null in v4's batch JSON leaves the value as it was; v5_switches.py); ``email``
cannot be cleared.

Never touches the network or the lock; raises V5Fail, renders plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fakepardot import constants as c
from fakepardot import fields
from fakepardot.fields import WritePlan
from fakepardot.model import Account, ProspectRecord, V5Fail

#: Every standard v5 prospect field the fake knows → the stored (v3/v4) field.
V5_TO_STORED: Final[dict[str, str]] = {
    "id": "id",
    "email": "email",
    "firstName": "first_name",
    "lastName": "last_name",
    "salutation": "salutation",
    "company": "company",
    "jobTitle": "job_title",
    "department": "department",
    "addressOne": "address_one",
    "addressTwo": "address_two",
    "city": "city",
    "state": "state",
    "zip": "zip",
    "country": "country",
    "territory": "territory",
    "phone": "phone",
    "fax": "fax",
    "website": "website",
    "annualRevenue": "annual_revenue",
    "employees": "employees",
    "industry": "industry",
    "yearsInBusiness": "years_in_business",
    "comments": "comments",
    "notes": "notes",
    "score": "score",
    "grade": "grade",
    "source": "source",
    "campaignId": "campaign_id",
    "prospectAccountId": "prospect_account_id",
    "isDoNotEmail": "is_do_not_email",
    "isDoNotCall": "is_do_not_call",
    "isReviewed": "is_reviewed",
    "isStarred": "is_starred",
    "optedOut": "opted_out",
    "password": "password",
    "lastActivityAt": "last_activity_at",
    "recentInteraction": "recent_interaction",
    "salesforceId": "salesforce_fid",
    "salesforceLeadId": "crm_lead_fid",
    "salesforceContactId": "crm_contact_fid",
    "salesforceOwnerId": "crm_owner_fid",
    "salesforceAccountId": "crm_account_fid",
    "salesforceLastSync": "crm_last_sync",
    "salesforceUrl": "crm_url",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}

#: Fields a v5 write may set (PARDOT_API.md's writable list, in v5's names).
WRITABLE: Final = frozenset(
    {
        "email",
        "firstName",
        "lastName",
        "salutation",
        "company",
        "jobTitle",
        "department",
        "addressOne",
        "addressTwo",
        "city",
        "state",
        "zip",
        "country",
        "territory",
        "phone",
        "fax",
        "website",
        "annualRevenue",
        "employees",
        "industry",
        "yearsInBusiness",
        "comments",
        "notes",
        "score",
        "source",
        "campaignId",
        "prospectAccountId",
        "isDoNotEmail",
        "isDoNotCall",
        "isReviewed",
        "isStarred",
        "password",
    }
)

#: Readable names: every standard field but the write-only password, and isDeleted.
READABLE: Final = frozenset((set(V5_TO_STORED) - {"password"}) | {"isDeleted"})

BOOLEANS: Final = frozenset({"isDoNotEmail", "isDoNotCall", "isReviewed", "isStarred", "optedOut"})
INTEGERS: Final = frozenset({"id", "campaignId", "score", "prospectAccountId"})
TIMESTAMPS: Final = frozenset({"createdAt", "updatedAt", "lastActivityAt", "salesforceLastSync"})
CUSTOM_SUFFIX: Final = "__c"

#: What an email-keyed write (upsertLatestByEmail, undelete) and a create answer when
#: the request names no ``fields`` (v5_switches.py, ``v5_upsert_fields_required``).
DEFAULT_ANSWER: Final = ("id", "email")


def invalid_field(name: str) -> V5Fail:
    return V5Fail(c.V5_ERR_INVALID_FIELD, f"{c.V5_PROSPECT_TEXTS[c.V5_ERR_INVALID_FIELD]}: {name}")


def custom_field_id(account: Account, name: str) -> str | None:
    """The account's custom field id a v5 name ``<id>__c`` addresses, else None."""
    if not name.endswith(CUSTOM_SUFFIX):
        return None
    field_id = name[: -len(CUSTOM_SUFFIX)]
    return field_id if field_id in account.custom_fields else None


def selection(account: Account, names: Iterable[str]) -> list[str]:
    """The fields an answer shows, in the order asked (repeats dropped); an unknown name
    is 400 code 180 (chosen: the code v5 uses for fields a request may not name)."""
    chosen: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name or name in chosen:
            continue
        if name not in READABLE and custom_field_id(account, name) is None:
            raise invalid_field(name)
        chosen.append(name)
    return chosen


def render(record: ProspectRecord, names: Iterable[str]) -> dict[str, Any]:
    """The prospect as v5 shows it: exactly the ``names`` asked for (checked by
    ``selection``), an empty field as null."""
    return {name: _value(record, name) for name in names}


def _value(record: ProspectRecord, name: str) -> Any:
    if name == "isDeleted":
        return bool(record.get("is_archived"))
    if name.endswith(CUSTOM_SUFFIX) and name not in V5_TO_STORED:
        value = record.get("_custom", {}).get(name[: -len(CUSTOM_SUFFIX)])
        return list(value) if isinstance(value, list) else value
    value = record.get(V5_TO_STORED[name])
    if name in BOOLEANS:
        return bool(value) and value not in ("0", "false")
    if value is None or value == "":
        return None
    if name in TIMESTAMPS:
        return iso_timestamp(str(value))
    if name in INTEGERS:
        text = str(value)
        return int(text) if text.lstrip("-").isdigit() else value
    return value


def iso_timestamp(stored: str) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC, as the fake stamps) → ISO-8601 with its offset;
    anything else a test seeded is shown as it was stored."""
    try:
        moment = datetime.strptime(stored, c.TIMESTAMP_FORMAT)
    except ValueError:
        return stored
    return moment.replace(tzinfo=UTC).isoformat()


def plan(account: Account, prospect: Mapping[str, Any], *, null_clears: bool = True) -> WritePlan:
    """Validate a v5 prospect body into the plan fields.apply_write applies; nothing is
    applied unless every value passed. With ``null_clears`` off (the ``v5_null_clears``
    switch) a null leaves its field as it was, as null does in v4's batch JSON."""
    out = WritePlan()
    for name, value in prospect.items():
        if value is None and not null_clears:
            if name not in WRITABLE and custom_field_id(account, name) is None:
                raise invalid_field(name)
            continue
        field_id = custom_field_id(account, name)
        if field_id is not None:
            out.custom[field_id] = _custom_value(name, value)
        elif name in WRITABLE:
            out.standard[V5_TO_STORED[name]] = _standard_value(account, name, value)
        else:
            raise invalid_field(name)
    return out


def _standard_value(account: Account, name: str, value: Any) -> Any:
    if name == "email":
        if not isinstance(value, str) or not fields.is_valid_email(value):
            raise V5Fail(c.ERR_INVALID_EMAIL)
        return value
    if name in BOOLEANS:
        if value is None:
            return None
        if not isinstance(value, bool):
            raise V5Fail(c.ERR_INVALID_BOOLEAN, f"Invalid boolean: {name}")
        return 1 if value else None
    if name == "campaignId":
        if not _is_int(value) or value not in account.campaigns:
            raise V5Fail(c.ERR_INVALID_CAMPAIGN)
        return value
    if name == "score":
        if value is None:
            return 0
        if not _is_int(value):
            raise V5Fail(c.ERR_INVALID_NUMBER, f"Invalid number entered for field: {name}")
        return value
    if name == "prospectAccountId":
        if value is not None and not _is_int(value):
            raise V5Fail(c.ERR_INVALID_PROSPECT_ACCOUNT)
        return value
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise V5Fail(c.V5_ERR_INVALID_PROPERTY, f"Invalid property in request: {name}")
    return value


def _custom_value(name: str, value: Any) -> str | list[str] | None:
    """A custom field takes a string or a number, or an array of them (multi-value)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        if not all(_is_scalar(v) for v in value):
            raise V5Fail(c.V5_ERR_INVALID_PROPERTY, f"Invalid property in request: {name}")
        return [str(v) for v in value if v != ""] or None
    if not _is_scalar(value):
        raise V5Fail(c.V5_ERR_INVALID_PROPERTY, f"Invalid property in request: {name}")
    return str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    )
