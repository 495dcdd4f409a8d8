"""Every fact the fake takes from Pardot: error codes and their exact texts, which HTTP
status each error travels with, limits, and the prospect field lists.

Source: ../shared/PARDOT_API.md ("Error codes that matter here", "Limits", "Prospect
fields"); texts not given there follow Pardot's published error-code page word for word
(typos and double spaces included, because clients match on them). Codes marked
"(chosen)" are the fake's own pick where Pardot's text is not documented.

This module holds data only: no logic, no I/O.
"""

from __future__ import annotations

from typing import Final

# --- Error codes (v3/v4 dialect: <err code="N">text</err>) -------------------------

ERR_INVALID_KEY: Final = 1
ERR_INVALID_ACTION: Final = 2
ERR_INVALID_PROSPECT_ID: Final = 3
ERR_INVALID_EMAIL: Final = 4
ERR_INVALID_QUERY: Final = 5
ERR_INVALID_TIMESTAMP: Final = 7
ERR_EMAIL_EXISTS: Final = 9
ERR_PARAM_MISSING: Final = 13
ERR_UPSERT_NO_EMAIL: Final = 14
ERR_LOGIN_FAILED: Final = 15
ERR_SORT_BY: Final = 19
ERR_SORT_ORDER: Final = 20
ERR_OFFSET: Final = 21
ERR_UNSUPPORTED_VERSION: Final = 22
ERR_LIMIT: Final = 23
ERR_PARAM_VALUE_MISSING: Final = 36
ERR_INVALID_CAMPAIGN: Final = 38
ERR_PERMISSION: Final = 46
ERR_ACCESS_DENIED: Final = 49
ERR_INVALID_BOOLEAN: Final = 50
ERR_INVALID_LIST: Final = 55
ERR_INVALID_NUMBER: Final = 56
ERR_ALREADY_MEMBER: Final = 58
ERR_INVALID_PROSPECT_ACCOUNT: Final = 61
ERR_CONCURRENCY: Final = 66
ERR_BATCH_TOO_BIG: Final = 70
ERR_BATCH_INVALID: Final = 71
ERR_INVALID_FID: Final = 77
ERR_ID_FID_MISMATCH: Final = 81
ERR_SAVE_FAILED: Final = 85
ERR_MUST_USE_V4: Final = 88
ERR_CANNOT_USE_V4: Final = 89
ERR_NOT_FLAT: Final = 90
ERR_INVALID_VERSION: Final = 94
ERR_DAILY_LIMIT: Final = 122
ERR_AUTH_MECHANISM: Final = 126
ERR_INVALID_FIELDS: Final = 130
ERR_PROSPECT_ARCHIVED: Final = 132
ERR_BU_HEADER_MISSING: Final = 181
ERR_INVALID_TOKEN: Final = 184
ERR_API_KEY_RETIRED: Final = 199
ERR_BU_INVALID: Final = 201

ERROR_TEXTS: Final[dict[int, str]] = {
    1: "Invalid API key or user key",
    2: "Invalid action",
    3: "Invalid prospect ID",
    4: "Invalid prospect email address",
    5: "Invalid query parameters",
    7: "Invalid timestamp",
    9: "A prospect with the specified email address already exists",
    13: "One or more required parameters are missing",
    14: "Non-existent prospect ID; No email address provided",
    15: "Login failed",
    19: "Invalid value specified for sort_by",
    20: "Invalid value specified for sort_order",
    21: "Invalid value specified for offset",
    22: "Unsupported feature in this version of the API",
    23: "Invalid value specified for limit",
    36: "One or more required parameter values are missing",
    38: "Invalid campaign ID",
    46: "This API user lacks sufficient permissions for the requested operation",
    49: "Access Denied",
    50: "Invalid boolean",
    55: "Invalid list ID",
    56: "Invalid number entered for field",
    # Pardot's own text, typo included.
    58: "That prospect is already a memeber of that list. Update the membership instead.",
    61: "Invalid prospect account id",
    # Two spaces after "limit.": Pardot's text, kept byte for byte.
    66: "You have exceeded your concurrent request limit.  Please wait, before trying again",
    70: "Batch processing is limited to 50 prospects at once.",
    71: "Input needs to be valid JSON or XML",
    77: "Invalid prospect fid",
    81: "Prospect ID and FID do not match",
    85: "Unable to save the prospect",
    88: "Your account must use version 4 of the API.",
    89: "Your account is unable to use version 4 of the API.",
    90: "Prospect array should be a flat array of attributes",
    94: "The provided version is not a valid number",
    116: "Request outdated.",
    120: "Unable to verify Salesforce connector",
    121: "Unable to sync Prospect with Salesforce",
    122: "Daily API rate limit met",
    126: "Invalid authentication mechanism",
    # The fake answers 130 for an unknown custom field when the switch says "error".
    130: "One or more of the specified fields are invalid",
    132: "Prospect is archived",
    # 181 and 201: PARDOT_API.md, "Authentication" (181 as Pardot's v5 answers give it).
    181: "A required header is missing: Pardot-Business-Unit-Id header not found on request.",
    183: "The request timed out",  # (chosen)
    184: "access_token is invalid, unknown, or malformed: Inactive token",
    199: "api_key is no longer supported: authenticate with Salesforce OAuth",  # (chosen)
    201: "Business Unit specified in Pardot-Business-Unit-Id header not found or inactive.",
    214: "An internal error occurred",  # (chosen)
}

#: The text for an injected err_code the table does not know.
UNKNOWN_ERROR_TEXT: Final = "An unknown error occurred"

#: Errors that come back with a non-200 HTTP status; every other error is HTTP 200 with
#: stat="fail" (PARDOT_API.md, "Responses": 400 for malformed input, 401 for err 184;
#: "Authentication": 400 for err 181). Two more travel with their own status, set where
#: they are raised: err 4 from a v4 read/email that finds nobody (400, RECORDED) and
#: err 201, whose status is a switch (``state.bu_invalid_http_status``: UNCONFIRMED).
ERROR_HTTP_STATUS: Final[dict[int, int]] = {
    ERR_BATCH_TOO_BIG: 400,
    ERR_BATCH_INVALID: 400,
    ERR_BU_HEADER_MISSING: 400,
    ERR_INVALID_TOKEN: 401,
}
#: HTTP status of a v4 read/email that finds nobody (err 4): RECORDED.
READ_EMAIL_NOT_FOUND_HTTP_STATUS: Final = 400
#: The statuses err 201 may come with (UNCONFIRMED); the first is the default.
BU_INVALID_HTTP_STATUSES: Final = (400, 403)

# --- Version 5 (JSON only: {"code": N, "message": "..."}) ----------------------------

V5_ERR_INVALID_JSON: Final = 150
V5_ERR_CONTENT_TYPE: Final = 151
V5_ERR_EMPTY_BODY: Final = 152
V5_ERR_MISSING_PROPERTY: Final = 153
V5_ERR_INVALID_PROPERTY: Final = 154

#: HTTP status of a v5 error; any other code is 400. (chosen: 429 for the limits)
V5_ERROR_HTTP_STATUS: Final[dict[int, int]] = {
    ERR_INVALID_TOKEN: 401,
    ERR_CONCURRENCY: 429,
    ERR_DAILY_LIMIT: 429,
}

V5_ERROR_TEXTS: Final[dict[int, str]] = {
    150: "Input needs to be valid JSON",
    151: "Unsupported content-type",
    152: "Request body can't be empty",
    153: "Missing required property in request",
    154: "Invalid property in request",
}

# --- OAuth (Salesforce token endpoint) -----------------------------------------------

# Every refusal is HTTP 400 with ``error`` / ``error_description``, and they differ by
# cause (PARDOT_API.md, "Authentication": RECORDED in Salesforce client issues).

#: Wrong username or password (password grant).
OAUTH_AUTHENTICATION_FAILURE: Final = {
    "error": "invalid_grant",
    "error_description": "authentication failure",
}
#: A refresh token that is unknown, revoked or expired.
OAUTH_EXPIRED_TOKEN: Final = {
    "error": "invalid_grant",
    "error_description": "expired access/refresh token",
}
#: A client_id no connected app has.
OAUTH_INVALID_CLIENT_ID: Final = {
    "error": "invalid_client_id",
    "error_description": "client identifier invalid",
}
#: A client_secret that is not the connected app's.
OAUTH_INVALID_CLIENT: Final = {
    "error": "invalid_client",
    "error_description": "invalid client credentials",
}
OAUTH_UNSUPPORTED_GRANT: Final = {
    "error": "unsupported_grant_type",
    "error_description": "grant type not supported",
}
#: A refresh_token grant while another grant of the same refresh token is in progress.
OAUTH_ALREADY_PROCESSING: Final = {
    "error": "invalid_grant",
    "error_description": "token request is already being processed",
}
OAUTH_GRANTS: Final = ("refresh_token", "password", "client_credentials")

# --- Limits ------------------------------------------------------------------------

MAX_CONCURRENT_REQUESTS: Final = 5
MAX_BATCH_PROSPECTS: Final = 50
MAX_QUERY_LIMIT: Final = 200
API_KEY_TTL_S: Final = 3600.0
MAX_EMAIL_LENGTH: Final = 255

# --- Content types -----------------------------------------------------------------

JSON_CONTENT_TYPE: Final = "application/json"
XML_CONTENT_TYPE: Final = "text/xml; charset=utf-8"

# --- Prospect fields (PARDOT_API.md, "Prospect fields") ------------------------------

# The fake keeps its own copy of Pardot's field lists (it imports nothing of ours, as
# the emulator of Pardot, not of our client); tests/fakepardot/test_fake_fields_and_shapes.py
# checks it against the client's strategies.core.pardot_facts.

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

#: What a stored prospect holds: every standard field (the write-only password apart,
#: which is kept aside), ``is_archived`` and ``prospect_account_id`` included.
RECORD_FIELDS: Final = (
    "id",
    *(f for f in WRITABLE_FIELDS if f != "password"),
    *READ_ONLY_FIELDS[1:],
)

#: A prospect as Pardot returns it, in Pardot's order (PARDOT_API.md, "Responses": the
#: default output, RECORDED). ``password`` is always null; ``is_archived`` and
#: ``prospect_account_id`` are writable but never come back. Then: ``campaign``
#: ({id, name}, when the prospect has one), the custom fields that hold a value, and in
#: a full answer ``profile``, ``visitors``, ``visitor_activities`` and ``lists``.
OUTPUT_FIELDS: Final = (
    "id",
    "campaign_id",
    "salutation",
    "first_name",
    "last_name",
    "email",
    "password",
    "company",
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
    "grade",
    "last_activity_at",
    "recent_interaction",
    "crm_lead_fid",
    "crm_contact_fid",
    "crm_owner_fid",
    "crm_account_fid",
    "salesforce_fid",
    "crm_last_sync",
    "crm_url",
    "is_do_not_email",
    "is_do_not_call",
    "opted_out",
    "is_reviewed",
    "is_starred",
    "created_at",
    "updated_at",
)
#: Standard fields a prospect holds that never come back.
HIDDEN_FIELDS: Final = ("is_archived", "prospect_account_id")

#: ``output=mobile``: only these (PARDOT_API.md, "Responses"; RECORDED on a query).
MOBILE_FIELDS: Final = ("id", "first_name", "last_name", "email", "company")
#: The ``output`` values (PARDOT_API.md, "Requests"). "full" (the default of a read or
#: write) adds a prospect's relations to "simple"; "bulk" (chosen) is "simple".
OUTPUTS: Final = ("full", "simple", "mobile", "bulk")
#: The relations a full answer ends with (none are kept: the fake has no visitors).
#: A query answer never carries them (Pardot's query docs).
PROFILE: Final = {
    "id": 1,
    "name": "Default",
    "profile_criteria": [
        {"id": 1 + n, "name": name, "matches": "Unknown"}
        for n, name in enumerate(
            ("Company Size", "Industry", "Location", "Job Title", "Department")
        )
    ],
}
#: What a new prospect's ``recent_interaction`` says (RECORDED).
NEVER_ACTIVE: Final = "Never active."

#: Integers on the wire ("ids, campaign_id, score are integers").
INTEGER_FIELDS: Final = frozenset({"id", "campaign_id", "score", "prospect_account_id"})

#: "Booleans come back as 1 or null".
BOOLEAN_FIELDS: Final = frozenset(
    {"is_do_not_email", "is_do_not_call", "is_reviewed", "is_starred", "is_archived", "opted_out"}
)

#: Query sorting (Pardot's supported sort_by values for prospects).
SORT_BY_FIELDS: Final = ("created_at", "id", "last_activity_at", "updated_at")

#: Salesforce ids a prospect fid may carry: Lead (00Q…) or Contact (003…).
FID_PREFIXES: Final = ("00Q", "003")

TIMESTAMP_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

# --- API v5 prospects and list memberships (v5.py, v5_query.py, v5_lists.py) -----------
# PARDOT_API.md, "API v5 (prospects)". v5 errors are JSON {"code": N, "message": "..."}
# with a 4xx status; the codes are the registry v3/v4 share (Salesforce's error-code
# page), the messages v5's own where PARDOT_API.md quotes one.

V5_ERR_RECORD_NOT_FOUND: Final = 109
V5_ERR_METHOD: Final = 60
V5_ERR_INVALID_ID: Final = 16
V5_ERR_EMAIL_IN_USE: Final = 54
V5_ERR_INVALID_FIELD: Final = 180
V5_ERR_DELETED_RECORD: Final = 219
V5_ERR_PAGE_TOKEN: Final = 211

#: v5 wording of a code whose v3/v4 text differs (or that v3/v4 never answers).
V5_PROSPECT_TEXTS: Final[dict[int, str]] = {
    ERR_PARAM_MISSING: "One or more required parameters are missing",
    ERR_BU_HEADER_MISSING: (
        "A required header is missing: Pardot-Business-Unit-Id header not found on request."
    ),
    16: "Invalid ID",
    54: "Email address is already in use",
    60: "Invalid HTTP request method",
    109: "The requested record was not found.",
    180: "One or more of the specified fields are invalid",
    211: "Page token is invalid.",
    219: "Deleted records can't be updated. Please undelete before updating.",
}

#: v5 statuses other than 400 (the limits' status is the ``v5_limit_status`` switch).
V5_PROSPECT_HTTP_STATUS: Final[dict[int, int]] = {
    ERR_INVALID_TOKEN: 401,
    ERR_INVALID_ACTION: 404,  # (chosen) a path under /api/v5/objects/ the fake lacks
    109: 404,
    60: 405,
}

#: Statuses of the auth failures when ``v5_auth_errors`` is "xml" (the v3/v4 envelope);
#: err 201's status is ``state.bu_invalid_http_status`` in either envelope.
V5_XML_AUTH_STATUS: Final[dict[int, int]] = {
    ERR_INVALID_TOKEN: 400,
    ERR_BU_HEADER_MISSING: 400,
}

#: Pardot-Warning header on a 404 for a record in the recycle bin (version 5 overview).
V5_WARNING_RECYCLE_BIN: Final = "201;Record In Recycle Bin"

V5_DEFAULT_PAGE_SIZE: Final = 200
V5_MAX_PAGE_SIZE: Final = 1000
