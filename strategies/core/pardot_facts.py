"""Facts about Pardot that the code depends on: paths, limits, error codes, field names.

Every value here comes from ../shared/PARDOT_API.md (the section named beside each
group); when Pardot changes, this module is the one place to change. It holds data
only: it never talks to the network and never decides what a failure means (that is
``strategies.core.errors.PARDOT_ERRORS``).
"""

from __future__ import annotations

import re
from typing import Final

# --- Requests (PARDOT_API.md, "Requests") ------------------------------------------

#: ``/api/<object>/version/<3|4>/do/<operation>[/<id_field>/<id>...]``
API_PATH: Final = "/api/{object}/version/{version}/do/{operation}"
#: Legacy login (PARDOT_API.md, "Legacy Pardot login").
LOGIN_PATH: Final = "/api/login/version/{version}"
API_VERSIONS: Final = frozenset({3, 4})
#: Pardot answers XML unless asked; we always ask for JSON (and still tolerate XML).
FORMAT_PARAM: Final = ("format", "json")
#: Parameter names the client sets itself; a caller's field may never override them.
RESERVED_PARAMS: Final = frozenset({"format", "api_key", "user_key", "access_token"})

PROSPECT: Final = "prospect"
LIST_MEMBERSHIP: Final = "listMembership"
#: External activities exist only in API v5: JSON in, HTTP 204 out, errors as JSON
#: ``{"code": N, "message": "..."}`` (PARDOT_API.md, "External activities").
EXTERNAL_ACTIVITIES_PATH: Final = "/api/v5/external-activities"

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

ERR_BATCH_TOO_BIG: Final = 70
ERR_BATCH_INVALID: Final = 71

#: Errors Pardot returns before doing anything, so even a write that is not
#: idempotent may be sent again: the sixth concurrent request is refused outright.
REFUSED_BEFORE_PROCESSING: Final = frozenset({ERR_CONCURRENCY_LIMIT})
#: A batch Pardot refused as a whole without processing any entry: over 50 entries,
#: or a ``prospects`` value it could not read. Either is a bug of ours.
BATCH_REJECTED: Final = frozenset({ERR_BATCH_TOO_BIG, ERR_BATCH_INVALID})

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
