"""Facts about Pardot that the code depends on: paths, limits, error codes, field names.

Every value here comes from ../shared/PARDOT_API.md (the section named beside each
group); when Pardot changes, this module is the one place to change. It holds data
(and one predicate over it) only: it never talks to the network and never decides what
a failure means (that is ``strategies.core.errors.PARDOT_ERRORS``).
"""

from __future__ import annotations

import re
from typing import Final

# --- Requests (PARDOT_API.md, "Requests") ------------------------------------------

#: ``/api/<object>/version/<3|4>/do/<operation>[/<id_field>/<id>...]``
API_PATH: Final = "/api/{object}/version/{version}/do/{operation}"
#: Legacy login (PARDOT_API.md, "Legacy Pardot login").
LOGIN_PATH: Final = "/api/login/version/{version}"
#: Every version a connection may speak: 3 and 4 in the ``/version/<v>/do/`` dialect
#: (:data:`V3V4_API_VERSIONS`), 5 in its own JSON dialect (the "API v5" region below).
API_VERSIONS: Final = frozenset({3, 4, 5})
V3V4_API_VERSIONS: Final = frozenset({3, 4})
#: Pardot answers XML unless asked; we always ask for JSON (and still tolerate XML).
FORMAT_PARAM: Final = ("format", "json")
#: Parameter names the client sets itself; a caller's field may never override them.
RESERVED_PARAMS: Final = frozenset({"format", "api_key", "user_key", "access_token"})
#: Every name Pardot reads from a v3/v4 request's query or form as something other than
#: a prospect field, so a caller's field of that name would steer the request (issue 12,
#: item 4). Sources: PARDOT_API.md ("Requests": ``format``, ``output``; "Batch":
#: ``prospects``; "Legacy Pardot login": ``api_key``, ``user_key``; "List membership":
#: ``list_<id>``); Pardot's published v3/v4 docs (pardot/api-docs,
#: docs/kb/api-version-3/using-the-pardot-api.md: ``api_key``, ``user_key`` and
#: ``format`` travel in the body next to the request's parameters, "the ordering of
#: parameters is arbitrary"; docs/kb/api-version-4/prospects.md: ``fid`` as an
#: identifier next to ``id``/``email``, the optional ``user_id`` on create and upsert
#: that assigns the prospect to a Pardot user, ``list_<id>=1|0`` and
#: ``profile_criteria_<id>=match`` on a write); a public PHP client
#: (hglattergotz/pardot, README) that merges ``format`` and ``output`` into every call's
#: parameters; ``access_token`` is OAuth's form-encoded bearer parameter (RFC 6750 §2.2).
#: ``id`` and ``email`` are left out: ``id`` is a read-only field (a trait of that name is
#: ignored with a warning, as Segment's ``traits.id`` must be) and ``email`` is the field.
#: Pardot's own case rule is UNCONFIRMED: the names are compared case-insensitively, the
#: safe side (no Pardot field id is one of these in another case).
PARDOT_PARAMETERS: Final = frozenset(
    {"api_key", "user_key", "access_token", "format", "output", "prospects", "fid", "user_id"}
)
#: Parameter families: ``list_<list id>`` (list membership) and
#: ``profile_criteria_<criteria id>`` (profile matching) on a prospect write.
PARDOT_PARAMETER_PATTERN: Final = re.compile(r"(?:list|profile_criteria)_[0-9]+", re.IGNORECASE)


def is_pardot_parameter(name: str) -> bool:
    """Whether Pardot reads ``name`` as a request parameter, not as a prospect field."""
    return name.lower() in PARDOT_PARAMETERS or bool(PARDOT_PARAMETER_PATTERN.fullmatch(name))


PROSPECT: Final = "prospect"
LIST_MEMBERSHIP: Final = "listMembership"
#: A list itself: ``list/version/<v>/do/read/id/<id>`` answers ``list``, err 55 when the
#: account has no such list (Pardot's docs, "Using Lists"; the record RECORDED).
LIST: Final = "list"
#: External activities exist only in API v5: JSON in, HTTP 204 out, errors as JSON
#: ``{"code": N, "message": "..."}`` (PARDOT_API.md, "External activities").
EXTERNAL_ACTIVITIES_PATH: Final = "/api/v5/external-activities"
#: An external activity's ``value`` (the event name we send) is at most this long.
EXTERNAL_ACTIVITY_VALUE_MAX: Final = 100

# --- Authentication (PARDOT_API.md, "Authentication") ------------------------------

#: Salesforce OAuth answers a rejected grant with HTTP 400 and this ``error``.
OAUTH_INVALID_GRANT: Final = "invalid_grant"
BUSINESS_UNIT_HEADER: Final = "Pardot-Business-Unit-Id"
#: A business unit id starts with ``0Uv`` and is 18 characters long.
BUSINESS_UNIT_ID_PATTERN: Final = re.compile(r"0Uv[A-Za-z0-9]{15}")
#: A legacy user key is 32 hex characters.
USER_KEY_PATTERN: Final = re.compile(r"[0-9a-fA-F]{32}")

# --- Limits (PARDOT_API.md, "Limits", "Batch", "Query") ----------------------------

MAX_CONCURRENT_REQUESTS: Final = 5  # the sixth in flight gets err 66
MAX_BATCH_PROSPECTS: Final = 50  # err 70 beyond
MAX_QUERY_LIMIT: Final = 200  # err 23 beyond

# --- Error codes (PARDOT_API.md, "Error codes that matter here") -------------------
# What each one means to the service lives in strategies.core.errors.PARDOT_ERRORS.

ERR_INVALID_API_KEY: Final = 1  # legacy api_key expired: log in again once
ERR_INVALID_PROSPECT_ID: Final = 3
ERR_INVALID_EMAIL: Final = 4  # on a read: no prospect with that email
ERR_EMAIL_EXISTS: Final = 9  # v3 create of an existing email
ERR_LOGIN_FAILED: Final = 15
ERR_CONCURRENCY_LIMIT: Final = 66
ERR_INVALID_LIST: Final = 55
ERR_ALREADY_LIST_MEMBER: Final = 58
ERR_INVALID_FID: Final = 77
ERR_DAILY_LIMIT: Final = 122
ERR_INVALID_ACCESS_TOKEN: Final = 184  # OAuth token expired: refresh once
ERR_LEGACY_AUTH_RETIRED: Final = 199

ERR_V5_METHOD_NOT_ALLOWED: Final = 60  # v5, HTTP 405: a request we built is wrong
ERR_V5_NOT_FOUND: Final = 109  # v5, HTTP 404: "The requested record was not found."
#: What a write by id answers when the prospect is gone (deleted, merged): v3/v4's
#: err 3, v5's 109. A strategy holding a stale id drops it and resolves afresh.
ERR_PROSPECT_GONE: Final = frozenset({ERR_INVALID_PROSPECT_ID, ERR_V5_NOT_FOUND})

ERR_BATCH_TOO_BIG: Final = 70
ERR_BATCH_INVALID: Final = 71

#: Errors Pardot returns before doing anything, so even a write that is not
#: idempotent may be sent again: the sixth concurrent request is refused outright.
REFUSED_BEFORE_PROCESSING: Final = frozenset({ERR_CONCURRENCY_LIMIT})
#: A batch Pardot refused as a whole without processing any entry: over 50 entries,
#: or a ``prospects`` value it could not read. Either is a bug of ours.
BATCH_REJECTED: Final = frozenset({ERR_BATCH_TOO_BIG, ERR_BATCH_INVALID})

# --- Email (PARDOT_API.md, "Error codes that matter here", err 4) -------------------

#: The email rule Pardot staff published: a write whose email breaks it is refused
#: with err 4. Local part 1-64 characters, domain 1-255 before its last dot, a
#: top-level domain of 2-13; no space and no second ``@`` anywhere; at most
#: ``MAX_EMAIL_LENGTH`` characters in all. Checked before anything is sent.
EMAIL_PATTERN: Final = re.compile(r"^[^ @]{1,64}@[^ @]{1,255}\.[^ @]{2,13}$")
MAX_EMAIL_LENGTH: Final = 255
EMAIL_LOCAL_MAX: Final = 64
EMAIL_DOMAIN_MAX: Final = 255
EMAIL_TLD_MIN: Final = 2
EMAIL_TLD_MAX: Final = 13

# --- Batch (PARDOT_API.md, "Batch") -------------------------------------------------

#: The form variable that carries a batch's entries (JSON).
BATCH_PROSPECTS_PARAM: Final = "prospects"
BATCH_CREATE: Final = "batchCreate"
BATCH_UPDATE: Final = "batchUpdate"
BATCH_UPSERT: Final = "batchUpsert"

#: A batch answer reports a failed entry by its index and Pardot's error TEXT only, no
#: err_code: the texts of the errors a prospect write can meet, word for word (Pardot's
#: error-code page; ``clients.wire.batching`` reads an entry's code back from its text).
ENTRY_ERROR_TEXTS: Final[dict[int, str]] = {
    3: "Invalid prospect ID",
    4: "Invalid prospect email address",
    9: "A prospect with the specified email address already exists",
    13: "One or more required parameters are missing",
    14: "Non-existent prospect ID; No email address provided",
    36: "One or more required parameter values are missing",
    38: "Invalid campaign ID",
    50: "Invalid boolean",
    56: "Invalid number entered for field",
    61: "Invalid prospect account id",
    77: "Invalid prospect fid",
    81: "Prospect ID and FID do not match",
    85: "Unable to save the prospect",
    90: "Prospect array should be a flat array of attributes",
    116: "Request outdated.",
    120: "Unable to verify Salesforce connector",
    121: "Unable to sync Prospect with Salesforce",
    130: "One or more of the specified fields are invalid",
    132: "Prospect is archived",
}

# --- API v5 prospects (PARDOT_API.md, "API v5 (prospects)") ------------------------
# JSON in and out, camelCase field names, ``{"code", "message"}`` errors under real HTTP
# statuses, no batch endpoint (one call per write), reads from a cache that may trail
# writes by up to 60 s (never read-your-writes).

V5: Final = 5
V5_PROSPECTS_PATH: Final = "/api/v5/objects/prospects"
#: One prospect: GET (read), PATCH (update), DELETE. ``{id}`` is an integer.
V5_PROSPECT_PATH: Final = "/api/v5/objects/prospects/{id}"
V5_UPSERT_LATEST_BY_EMAIL_PATH: Final = "/api/v5/objects/prospects/do/upsertLatestByEmail"
#: List memberships in v5 (UNCONFIRMED path: Salesforce's v5 object list; PARDOT_API.md
#: names only their err 58 for a duplicate).
V5_LIST_MEMBERSHIPS_PATH: Final = "/api/v5/objects/list-memberships"
#: One list in v5 (``?fields=`` required, as for every v5 read); 404 code 109 when absent.
V5_LIST_PATH: Final = "/api/v5/objects/lists/{id}"
#: Query parameters of a collection: which fields to return (reads require it), the
#: email filter, and the page token of the next page.
V5_FIELDS_PARAM: Final = "fields"
V5_EMAIL_PARAM: Final = "email"
V5_NEXT_PAGE_TOKEN: Final = "nextPageToken"
V5_NEXT_PAGE_URL: Final = "nextPageUrl"
#: A query by email that pages past this many pages is not one person's prospects:
#: the client stops rather than walk an account (200 prospects a page in Pardot).
V5_MAX_QUERY_PAGES: Final = 20
#: A custom field ``org_id`` is ``org_id__c`` in v5 (``biography`` reads back as
#: ``biography__c``; the underscore case is UNCONFIRMED, by the same rule).
V5_CUSTOM_FIELD_SUFFIX: Final = "__c"

#: The v3/v4 field name (what ``strategies.fields`` produces) → its v5 name. Every
#: standard field of "Prospect fields" has one: the names PARDOT_API.md lists for v5, and
#: for the rest (``department``, ``password``, ``grade``, ``last_activity_at``,
#: ``recent_interaction``, ``is_reviewed``, ``is_starred``) the same camelCase rule;
#: the CRM ids are ``salesforce*`` in v5 (``salesforce_fid`` is ``salesforceId``,
#: ``crm_lead_fid`` ``salesforceLeadId``, …) and the archived state is ``isDeleted``
#: (the recycle bin): UNCONFIRMED beyond PARDOT_API.md's list, and what fakepardot
#: serves (fakepardot/v5_fields.py).
V5_FIELD_NAMES: Final[dict[str, str]] = {
    "id": "id",
    "email": "email",
    "campaign_id": "campaignId",
    "salutation": "salutation",
    "first_name": "firstName",
    "last_name": "lastName",
    "password": "password",
    "company": "company",
    "prospect_account_id": "prospectAccountId",
    "website": "website",
    "job_title": "jobTitle",
    "department": "department",
    "country": "country",
    "address_one": "addressOne",
    "address_two": "addressTwo",
    "city": "city",
    "state": "state",
    "territory": "territory",
    "zip": "zip",
    "phone": "phone",
    "fax": "fax",
    "source": "source",
    "annual_revenue": "annualRevenue",
    "employees": "employees",
    "industry": "industry",
    "years_in_business": "yearsInBusiness",
    "comments": "comments",
    "notes": "notes",
    "score": "score",
    "is_do_not_email": "isDoNotEmail",
    "is_do_not_call": "isDoNotCall",
    "is_reviewed": "isReviewed",
    "is_starred": "isStarred",
    "is_archived": "isDeleted",
    "grade": "grade",
    "last_activity_at": "lastActivityAt",
    "recent_interaction": "recentInteraction",
    "crm_lead_fid": "salesforceLeadId",
    "crm_contact_fid": "salesforceContactId",
    "crm_owner_fid": "salesforceOwnerId",
    "crm_account_fid": "salesforceAccountId",
    "crm_last_sync": "salesforceLastSync",
    "crm_url": "salesforceUrl",
    "opted_out": "optedOut",
    "salesforce_fid": "salesforceId",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
}
#: v5 fields whose JSON value is a number or a boolean (the rest are strings): a v3/v4
#: form value (``"42"``, ``"true"``) is sent in its JSON type.
V5_INTEGER_FIELDS: Final = frozenset({"id", "campaignId", "prospectAccountId", "score"})
V5_BOOLEAN_FIELDS: Final = frozenset(
    {"isDoNotEmail", "isDoNotCall", "isReviewed", "isStarred", "isDeleted", "optedOut"}
)
#: What a v5 read or write asks Pardot to return (``fields``): the standard fields
#: PARDOT_API.md lists for v5; custom fields are asked for by name on top.
V5_RETURNED_FIELDS: Final = (
    "id",
    "email",
    "firstName",
    "lastName",
    "salutation",
    "company",
    "jobTitle",
    "addressOne",
    "addressTwo",
    "city",
    "state",
    "zip",
    "country",
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
    "territory",
    "campaignId",
    "prospectAccountId",
    "isDoNotEmail",
    "isDoNotCall",
    "optedOut",
    "salesforceId",
    "createdAt",
    "updatedAt",
)

# --- The browser side (PARDOT_API.md, "The browser side") ---------------------------

#: The tracker script every Pardot snippet loads from the tracker host.
TRACKER_SCRIPT_PATH: Final = "/pd.js"
#: The page URL's query parameter that picks the page's campaign.
PAGE_CAMPAIGN_PARAM: Final = "pi_campaign_id"
#: Pardot's own plugin renders ``piCId = campaign_id + 1000`` (UNCONFIRMED for every
#: account, hence a connection setting, ``snippet_campaign_offset``).
PLUGIN_CAMPAIGN_OFFSET: Final = 1000
#: Linking a visitor to an email, as Segment's browser integration did: a request to
#: the tracker host's ``/analytics`` with ``pi_email``, carrying the visitor cookie.
VISITOR_ANALYTICS_PATH: Final = "/analytics"
VISITOR_EMAIL_PARAM: Final = "pi_email"

# --- Prospect fields (PARDOT_API.md, "Prospect fields") ----------------------------
# In the page's order: fakepardot returns prospects with their fields in this order.

WRITABLE_FIELDS: Final = (
    "campaign_id",
    "salutation",
    "first_name",
    "last_name",
    "email",
    "password",
    "company",
    "prospect_account_id",
    "website",
    "job_title",
    "department",
    "country",
    "address_one",
    "address_two",
    "city",
    "state",
    "territory",
    "zip",
    "phone",
    "fax",
    "source",
    "annual_revenue",
    "employees",
    "industry",
    "years_in_business",
    "comments",
    "notes",
    "score",
    "is_do_not_email",
    "is_do_not_call",
    "is_reviewed",
    "is_starred",
    "is_archived",
)

READ_ONLY_FIELDS: Final = (
    "id",
    "grade",
    "last_activity_at",
    "recent_interaction",
    "crm_lead_fid",
    "crm_contact_fid",
    "crm_owner_fid",
    "crm_account_fid",
    "crm_last_sync",
    "crm_url",
    "opted_out",
    "salesforce_fid",
    "created_at",
    "updated_at",
)

#: A custom field is addressed by its API field id (``org_id``); a multi-value field
#: is sent as ``<id>_0``, ``<id>_1``, ….
CUSTOM_FIELD_ID_PATTERN: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
#: ``fid`` is a Salesforce Lead (``00Q``) or Contact (``003``) id, 15 or 18 characters.
FID_PATTERN: Final = re.compile(r"(00Q|003)[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?")
#: Timestamps come back as ``YYYY-MM-DD HH:MM:SS`` in the account's time zone.
TIMESTAMP_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

#: Schemes the tracker host may be reached by (http only for a loopback test stub).
TRACKER_SCHEMES: Final = ("https", "http")
