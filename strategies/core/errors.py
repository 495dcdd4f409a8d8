"""The service's error model (DESIGN.md, "Contract highlights"): the catalogue of every
reason the service reports, the error classes, and the one table of what a Pardot
err_code means.

Every failure the service reports is a :class:`ProspectSyncError`: a canonical gRPC
code, a stable UPPER_SNAKE reason from :class:`Reason`, a message that names the field
and the fix, and the details a caller can act on (field violations, a retry delay,
Pardot's err_code). ``server.status`` turns one into a rich gRPC status; nothing else
formats errors.

:class:`Reason` is the one list of reasons: each with its default gRPC code, whether
the client retries it by itself, and its line in docs/errors.md (a test renders the
table from here and compares, so the page and the code cannot drift). A new reason is
one member here and its row there.

What a Pardot err_code means lives in ONE table, :data:`PARDOT_ERRORS` (STYLE.md: "One
table for what a Pardot error means"), read by the client for retry/refresh decisions
and by the server for the status. This module is part of the leaf
(``strategies.core``): it imports nothing of ours and never talks to the network.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from grpc import StatusCode

from strategies.core import pardot_facts as facts

DOMAIN = "prospectsync.pardot"


@dataclass(frozen=True)
class _About:
    code: StatusCode
    doc: str
    #: The client sends the request again by itself (within the caller's deadline).
    retryable: bool = False
    #: Codes the reason is also reported with (docs/errors.md's code column).
    also: tuple[StatusCode, ...] = ()
    #: docs/errors.md's err column where no row of PARDOT_ERRORS gives it.
    err: str = ""


class Reason(enum.Enum):
    """Every ``ErrorInfo.reason`` the service can report, with its default code and its
    line in docs/errors.md ("when, and the fix")."""

    @property
    def code(self) -> StatusCode:
        return self.value.code

    @property
    def retryable(self) -> bool:
        return self.value.retryable

    @property
    def doc(self) -> str:
        return self.value.doc

    @property
    def codes(self) -> tuple[StatusCode, ...]:
        return (self.value.code, *self.value.also)

    @property
    def err(self) -> str:
        return self.value.err

    INVALID_ARGUMENT = _About(
        StatusCode.INVALID_ARGUMENT,
        "a request field is missing, malformed or over its limit: no email for v3, a bad "
        "email (RFC syntax and Pardot's rule: ≤ 64 characters before the @, a top-level "
        "domain of 2-13, ≤ 255 in all), a custom field name that is not a Pardot field id"
        " or is a parameter Pardot reads from the request (`format`, `api_key`, "
        "`prospects`, …), an id/fid of the wrong shape, a trait that is an object, or a "
        "list for a standard field or holding an object, a list or a null (a list of "
        "scalars for a custom field is a multi-select value), more than 100 values in "
        "one, a number that is NaN or Infinity, a Timestamp outside protobuf's range, "
        "list ids that are not positive integers or are both added and removed, "
        "more than 200 traits, a value over 64 KiB (UTF-8), a string over its limit (the "
        "proto gives each; `user_id`, `message_id`, an event name or a lookup value over "
        "255 characters, a Struct name over 255), an unknown `settings.api_version` or "
        "`settings.strategy`. BadRequest names the field; the message quotes at most 200 "
        "characters of a value.",
    )
    MALFORMED_REQUEST = _About(
        StatusCode.INVALID_ARGUMENT,
        "the request bytes are not the method's protobuf message (hand-built, truncated, or "
        "nested deeper than protobuf's limit of 100 levels). Use the generated stub; "
        "flatten the traits.",
    )
    INVALID_EMAIL = _About(
        StatusCode.INVALID_ARGUMENT,
        "Pardot refused the email on a write.",
    )
    EMAIL_REQUIRED = _About(
        StatusCode.INVALID_ARGUMENT,
        "Pardot needs an email to create this prospect: send `traits.email`.",
    )
    PARDOT_PARAMETER_MISSING = _About(
        StatusCode.INVALID_ARGUMENT,
        "Pardot found a required value missing.",
    )
    INVALID_CAMPAIGN = _About(
        StatusCode.INVALID_ARGUMENT,
        "`settings.campaign_id` names no campaign of the account.",
    )
    INVALID_FIELD = _About(
        StatusCode.INVALID_ARGUMENT,
        "a trait names a custom field the account does not have.",
    )
    INVALID_FIELD_VALUE = _About(
        StatusCode.INVALID_ARGUMENT,
        "a value does not fit its Pardot field (boolean, number, account id).",
    )
    INVALID_LIST = _About(
        StatusCode.INVALID_ARGUMENT,
        "a track mapping names a list the account does not have.",
    )
    ID_FID_MISMATCH = _About(
        StatusCode.INVALID_ARGUMENT,
        "`pardot.id` and `pardot.fid` name different prospects.",
    )
    FAILED_PRECONDITION = _About(
        StatusCode.FAILED_PRECONDITION,
        "the settings or the server's configuration cannot serve the call as asked; the "
        "message names the setting.",
    )
    NO_MATCHING_STRATEGY = _About(
        StatusCode.FAILED_PRECONDITION,
        "API v4 with nothing to match a prospect by: send `pardot.id`/`pardot.fid`, set "
        "`settings.lookup_field`, or opt in with `settings.create_when_unmatched`.",
    )
    UNKNOWN_CONNECTION = _About(
        StatusCode.FAILED_PRECONDITION,
        "`settings.connection` names no configured connection (the message lists them).",
    )
    API_VERSION_INVALID = _About(
        StatusCode.FAILED_PRECONDITION,
        "the API version resolved for the call is not 3, 4 or 5.",
    )
    FID_NEEDS_V4 = _About(
        StatusCode.FAILED_PRECONDITION,
        "a Salesforce fid is a v4 key (v5 has no fid operations): set `settings.api_version` "
        "to 4, send `pardot.id`, or match by email.",
    )
    UPSERT_BY_EMAIL_NEEDS_V3 = _About(
        StatusCode.FAILED_PRECONDITION,
        "a forced strategy asked for upsert by email on v4, where it always creates, or on "
        "v5, whose upsert is `upsertLatestByEmail` (EmailV5): match by id, fid or a lookup "
        "field, or use EmailV5 on v5.",
    )
    CONNECTION_MISCONFIGURED = _About(
        StatusCode.FAILED_PRECONDITION,
        "a connection setting the call needs is unusable; the message names the key. (The "
        "tracking snippet's scheme and campaign offset are checked at start instead.)",
    )
    BUSINESS_UNIT_MISSING = _About(
        StatusCode.FAILED_PRECONDITION,
        "the connection sends no business unit: set `business_unit_id`.",
    )
    BUSINESS_UNIT_INVALID = _About(
        StatusCode.FAILED_PRECONDITION,
        "the business unit id is malformed, unknown or inactive.",
    )
    ACCOUNT_REQUIRES_API_V4 = _About(
        StatusCode.FAILED_PRECONDITION,
        "the account allows several prospects per email: use API v4.",
    )
    ACCOUNT_REQUIRES_API_V3 = _About(
        StatusCode.FAILED_PRECONDITION,
        "the account cannot use v4: use API v3.",
    )
    PARDOT_AUTH_FAILED = _About(
        StatusCode.FAILED_PRECONDITION,
        "the credentials were rejected even after one refresh (or the login/grant failed); "
        "the connection fails fast for `auth_failure_cooldown_s`. The message names the "
        "keys to fix.",
    )
    PARDOT_AUTH_ENDPOINT_INVALID = _About(
        StatusCode.FAILED_PRECONDITION,
        "the token endpoint answered with something that is not OAuth: check `token_url`.",
    )
    PARDOT_AUTH_MECHANISM_INVALID = _About(
        StatusCode.FAILED_PRECONDITION,
        "Pardot refuses the way the connection authenticates.",
    )
    LEGACY_AUTH_RETIRED = _About(
        StatusCode.FAILED_PRECONDITION,
        'Pardot no longer accepts the legacy login: set `auth = "oauth"`.',
    )
    PARDOT_PERMISSION_DENIED = _About(
        StatusCode.FAILED_PRECONDITION,
        "the Pardot user lacks a role (or the app the `pardot_api` scope) for the operation.",
    )
    PARDOT_UNSUPPORTED_IN_VERSION = _About(
        StatusCode.FAILED_PRECONDITION,
        "the operation does not exist in the API version used.",
    )
    PROSPECT_ARCHIVED = _About(
        StatusCode.FAILED_PRECONDITION,
        "the prospect is archived (in Pardot's recycle bin).",
    )
    EXTERNAL_ACTIVITY_NEEDS_OAUTH = _About(
        StatusCode.FAILED_PRECONDITION,
        "a track mapping asks for an external activity (API v5) on a legacy-login connection.",
    )
    EXTERNAL_ACTIVITY_REFUSED = _About(
        StatusCode.FAILED_PRECONDITION,
        "Pardot refused the external activity: the account lacks the extension or activity type.",
        err="any",
    )
    PARDOT_ERROR = _About(
        StatusCode.FAILED_PRECONDITION,
        "Pardot refused with an err_code the service has no rule for; the message has "
        "Pardot's text.",
        err="any other",
    )
    LOOKUP_FIELD_NOT_STORED = _About(
        StatusCode.FAILED_PRECONDITION,
        "`prospect-sync backfill` only: Pardot accepted the write but kept no lookup field "
        "(the account has no such custom field).",
    )
    PERSON_FORGOTTEN = _About(
        StatusCode.FAILED_PRECONDITION,
        "the person was erased with `Forget`: the service keeps a suppression (a keyed "
        "hash of the email and ids, never the plain value) and refuses to re-create them. "
        "Nothing was sent to Pardot. An operator lifts it only by removing the "
        "suppression (docs/erasure.md).",
    )
    FORGET_NEEDS_A_KEY = _About(
        StatusCode.INVALID_ARGUMENT,
        "`Forget` names nobody: send `email`, `user_id`, `lookup_value` or `pardot_id` "
        "(`user_id` and `lookup_value` need `settings.lookup_field`).",
    )
    PROSPECT_NOT_FOUND = _About(
        StatusCode.NOT_FOUND,
        "`pardot.id` / `pardot.fid` names no prospect.",
    )
    PROSPECT_EMAIL_EXISTS = _About(
        StatusCode.ALREADY_EXISTS,
        "v3 (or v5 on a business unit with one prospect per email): a prospect with the "
        "email exists.",
    )
    ALREADY_LIST_MEMBER = _About(
        StatusCode.ALREADY_EXISTS,
        "the prospect is already on the list (track reports this as success).",
    )
    PARDOT_DAILY_LIMIT = _About(
        StatusCode.RESOURCE_EXHAUSTED,
        "the account's daily budget is spent; no call is sent on the connection until the "
        "account's next midnight. RetryInfo says how long.",
    )
    PARDOT_QUEUE_FULL = _About(
        StatusCode.RESOURCE_EXHAUSTED,
        "the Pardot account is so busy that `max_queued_writes` writes already wait for a "
        "batch call (docs/batching.md); nothing was sent. Retry after RetryInfo (about the "
        "time the queue takes to drain), same `message_id`; or raise the connection's "
        "`max_queued_writes`.",
    )
    SERVER_BUSY = _About(
        StatusCode.RESOURCE_EXHAUSTED,
        "more events are in progress than `server.max_in_flight` (default 2,000; a call "
        "counts 1, a BatchSync 1 per item) allows; "
        "refused at once, nothing was sent to Pardot. Retry after RetryInfo (1 s), same "
        "`message_id`; or raise `server.max_in_flight` where memory allows (~30 KB a call).",
    )
    PARDOT_UNAVAILABLE = _About(
        StatusCode.UNAVAILABLE,
        "Pardot did not answer usefully (connection error, timeout, HTTP 5xx, a body that "
        "is not Pardot's) after the service's own retries.",
        retryable=True,
    )
    PARDOT_CONCURRENCY_LIMIT = _About(
        StatusCode.UNAVAILABLE,
        "Pardot's limit of requests in flight was hit even after retries.",
        retryable=True,
    )
    PARDOT_SAVE_FAILED = _About(
        StatusCode.UNAVAILABLE,
        "Pardot could not save the prospect this time.",
        retryable=True,
    )
    PARDOT_WRITE_UNCONFIRMED = _About(
        StatusCode.UNAVAILABLE,
        "a write that is not safe to repeat (a v4 create, an external activity) failed "
        "without telling whether Pardot applied it, so it was not resent; a retry re-reads "
        "first instead of creating twice.",
    )
    STATE_UNAVAILABLE = _About(
        StatusCode.UNAVAILABLE,
        "the service's own state (identity map, message_id records, create holds under "
        "`server.state_dir`) cannot be written just now (a full disk, a read-only or "
        "missing folder); refused before any Pardot write, and health reports NOT_SERVING "
        "until state can be written again. Retry after RetryInfo, same `message_id`; an "
        "operator frees the disk or fixes the folder.",
    )
    DEADLINE_UNREACHABLE = _About(
        StatusCode.UNAVAILABLE,
        "the call cannot finish before its deadline at the Pardot account's current pace "
        "(its observed latency, the requests a call makes and the queue ahead: "
        "docs/batching.md); refused before any Pardot call, so retrying is safe for any "
        "write. Retry after RetryInfo, same `message_id`, or with a longer deadline.",
    )
    DEADLINE_EXCEEDED = _About(
        StatusCode.DEADLINE_EXCEEDED,
        "the caller's deadline left no time to call Pardot (again).",
    )
    UNAUTHENTICATED = _About(
        StatusCode.UNAUTHENTICATED,
        "caller authentication is on and the call has no accepted bearer token (see "
        "docs/security.md).",
    )
    INTERNAL = _About(
        StatusCode.INTERNAL,
        'a bug: the message and `metadata["error_id"]` hold an id to find the traceback in '
        "the server log.",
    )
    PARDOT_BATCH_REJECTED = _About(
        StatusCode.INTERNAL,
        "Pardot refused a batch the service built (a bug: batches hold at most 50 "
        "prospects). The service logs `pardot.batch_rejected` and sends each write of the "
        "batch alone, so a caller sees this only from a single call.",
    )
    PARDOT_REQUEST_REJECTED = _About(
        StatusCode.INTERNAL,
        "Pardot refused a request the service built (a bug, not the caller's doing).",
    )
    PARDOT_UNEXPECTED_RESPONSE = _About(
        StatusCode.INTERNAL,
        "Pardot's answer lacked what the operation returns (INTERNAL), or the configured "
        "host answered a 4xx that is not Pardot's (FAILED_PRECONDITION: check "
        "`pardot_url`).",
        also=(StatusCode.FAILED_PRECONDITION,),
    )


#: How much of one input value a message quotes: a caller recognises its value from its
#: start, and a status must stay far below gRPC's 8 KiB metadata soft limit whatever the
#: input (issue 12, item 5: from ~3 KB of echoed value clients got RESOURCE_EXHAUSTED).
QUOTE_MAX_CHARS = 200
#: The most a status message (or one BadRequest description) may hold, in UTF-8 bytes.
#: A status travels twice in the trailers: as ``grpc-message`` (percent-encoded, so up
#: to 3 characters a byte) and inside ``grpc-status-details-bin`` (base64, 4 for 3), next
#: to the field violations. 1,000 bytes keep all of it under 6 KiB for any text.
MESSAGE_MAX_BYTES = 1000
#: A field path is the request's own name for a field and is kept whole; this bound is
#: a safety net only (every path built from input is checked against its limit first).
FIELD_MAX_BYTES = 400
_CUT = "…"


def quoted(value: object) -> str:
    """``value`` as a message quotes it: its ``repr``, cut after :data:`QUOTE_MAX_CHARS`
    characters with an ellipsis and the value's length, so the caller sees which value
    it was and how long it was without the status growing with the input."""
    if isinstance(value, str) and len(value) > QUOTE_MAX_CHARS:
        return f"{value[:QUOTE_MAX_CHARS]!r}{_CUT} ({len(value):,} characters)"
    text = repr(value)
    if len(text) > QUOTE_MAX_CHARS + 2:
        return f"{text[:QUOTE_MAX_CHARS]}{_CUT} ({len(text):,} characters)"
    return text


def capped(text: str, max_bytes: int = MESSAGE_MAX_BYTES) -> str:
    """``text`` within ``max_bytes`` of UTF-8, cut at a character with an ellipsis: the
    last guard, for a message that quotes input without :func:`quoted` (or holds text
    from elsewhere, such as a Pardot error)."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    suffix = f"{_CUT} ({len(text):,} characters in all)"
    room = max(max_bytes - len(suffix.encode()), 0)
    return encoded[:room].decode(errors="ignore") + suffix


class ProspectSyncError(Exception):
    """A failure with everything needed to report it as a canonical gRPC status.

    ``reason`` (a :class:`Reason`; the class's ``default_reason`` when not given) sets
    the code, unless ``code`` overrides it for this one failure. ``self.reason`` is the
    reason's name, as ErrorInfo carries it; ``self.catalogued`` the catalogue entry.

    The message and each violation are :func:`capped` here, once, for every error:
    what reaches a status is bounded whatever the input was.
    """

    default_reason: ClassVar[Reason] = Reason.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: StatusCode | None = None,
        reason: Reason | None = None,
        violations: Sequence[tuple[str, str]] = (),
        retry_after: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        message = capped(message)
        super().__init__(message)
        self.message = message
        self.catalogued = reason if reason is not None else self.default_reason
        self.reason: str = self.catalogued.name
        self.code: StatusCode = code if code is not None else self.catalogued.code
        self.violations = tuple(
            (capped(field, FIELD_MAX_BYTES), capped(description))
            for field, description in violations
        )
        self.retry_after = retry_after
        self.metadata = dict(metadata or {})

    @property
    def retryable(self) -> bool:
        """Whether the client sends the request again by itself (Reason.retryable)."""
        return self.catalogued.retryable


class InvalidArgument(ProspectSyncError):
    """The caller sent something unusable. ``field`` is its path in the request and
    ``description`` a verb phrase ("is required for API v3 (EmailV3)"), so the message
    reads as one sentence: "traits.email is required for API v3 (EmailV3)"."""

    default_reason = Reason.INVALID_ARGUMENT

    def __init__(self, field: str, description: str, *, reason: Reason | None = None) -> None:
        super().__init__(f"{field} {description}", reason=reason, violations=[(field, description)])
        self.field = field


class FailedPrecondition(ProspectSyncError):
    """The settings or the server's configuration cannot serve this call as asked."""

    default_reason = Reason.FAILED_PRECONDITION


@dataclass(frozen=True)
class ErrorRule:
    """What one Pardot err_code means to the service: a reason (its code, and whether
    the client retries it), whether fresh credentials may cure it, and for an operator
    what to change.

    ``fix`` names settings by ``{key}`` placeholders that :meth:`PardotError.explain`
    turns into ``connections.<name>.<key>`` (and ``{connection}`` into the connection's
    name). Only errors a setting can cure have one.
    """

    reason: Reason
    refresh_credentials: bool = False
    fix: str = ""

    @property
    def code(self) -> StatusCode:
        return self.reason.code

    @property
    def retryable(self) -> bool:
        return self.reason.retryable


_AUTH = ErrorRule(Reason.PARDOT_AUTH_FAILED, refresh_credentials=True)
_UNAVAILABLE = ErrorRule(Reason.PARDOT_UNAVAILABLE)
_NOT_FOUND = ErrorRule(Reason.PROSPECT_NOT_FOUND)
_PERMISSION_FIX = (
    "give the Pardot user that connection {connection} signs in as (the Salesforce user "
    "behind {client_id}, or {email} for a legacy login) a Pardot role that allows this "
    "operation; the connected app also needs the pardot_api OAuth scope"
)
_FIELD_VALUE = ErrorRule(Reason.INVALID_FIELD_VALUE)
#: Pardot refused a request this service built: a bug here, not the caller's doing.
_OUR_BUG = ErrorRule(Reason.PARDOT_REQUEST_REJECTED)

#: err_code → meaning. Codes and texts: ../shared/PARDOT_API.md, "Error codes that matter
#: here"; the texts of 22, 38, 50, 56, 61, 90, 94, 126, 130 and 132 follow Pardot's
#: published error-code page (fakepardot/constants.py holds them word for word).
PARDOT_ERRORS: dict[int, ErrorRule] = {
    1: _AUTH,
    2: _OUR_BUG,  # Invalid action: a path this service built is wrong
    3: _NOT_FOUND,
    4: ErrorRule(Reason.INVALID_EMAIL),
    9: ErrorRule(Reason.PROSPECT_EMAIL_EXISTS),
    # v5 codes (PARDOT_API.md "API v5 (prospects)"; the registry v3/v4 share, as
    # fakepardot/constants.py answers them): 16 Invalid ID and 211 Page token is invalid
    # (ids and tokens come from Pardot or are checked first), 150-153 a JSON body we
    # built that Pardot could not read (our bug). 154 "Invalid property" has no row: on
    # an external activity it means the account lacks the type (strategies.track).
    16: _OUR_BUG,
    13: ErrorRule(Reason.PARDOT_PARAMETER_MISSING),
    14: ErrorRule(Reason.EMAIL_REQUIRED),
    15: ErrorRule(Reason.PARDOT_AUTH_FAILED),
    # Unsupported feature in this version of the API: the version is a setting.
    22: ErrorRule(
        Reason.PARDOT_UNSUPPORTED_IN_VERSION,
        fix="check {api_version} and the request's settings.api_version",
    ),
    36: ErrorRule(Reason.PARDOT_PARAMETER_MISSING),
    # Invalid campaign ID: settings.campaign_id (or a campaign_id trait) names none.
    38: ErrorRule(Reason.INVALID_CAMPAIGN),
    46: ErrorRule(Reason.PARDOT_PERMISSION_DENIED, fix=_PERMISSION_FIX),
    49: ErrorRule(Reason.PARDOT_PERMISSION_DENIED, fix=_PERMISSION_FIX),
    50: _FIELD_VALUE,  # Invalid boolean
    # v5: Email address is already in use (a business unit with one prospect per email).
    54: ErrorRule(Reason.PROSPECT_EMAIL_EXISTS),
    55: ErrorRule(Reason.INVALID_LIST),
    56: _FIELD_VALUE,  # Invalid number entered for field
    58: ErrorRule(Reason.ALREADY_LIST_MEMBER),
    # v5, HTTP 405 Invalid HTTP request method: a request this service built is wrong.
    60: _OUR_BUG,
    61: _FIELD_VALUE,  # Invalid prospect account id
    66: ErrorRule(Reason.PARDOT_CONCURRENCY_LIMIT),
    70: ErrorRule(Reason.PARDOT_BATCH_REJECTED),
    71: ErrorRule(Reason.PARDOT_BATCH_REJECTED),
    77: _NOT_FOUND,
    81: ErrorRule(Reason.ID_FID_MISMATCH),
    85: ErrorRule(Reason.PARDOT_SAVE_FAILED),
    88: ErrorRule(
        Reason.ACCOUNT_REQUIRES_API_V4,
        fix="set {api_version} = 4 (and send settings.api_version 4, or leave it unset)",
    ),
    89: ErrorRule(
        Reason.ACCOUNT_REQUIRES_API_V3,
        fix="set {api_version} = 3 (and send settings.api_version 3, or leave it unset)",
    ),
    90: _OUR_BUG,  # Prospect array should be a flat array: values are validated first
    94: _OUR_BUG,  # The provided version is not a valid number: paths are built here
    # v5, HTTP 404 The requested record was not found: as err 3 (a read answers [];
    # a write by id is NOT_FOUND, or a stale identity-map entry resolved afresh).
    109: _NOT_FOUND,
    116: _UNAVAILABLE,
    120: _UNAVAILABLE,
    121: _UNAVAILABLE,
    122: ErrorRule(Reason.PARDOT_DAILY_LIMIT),
    126: ErrorRule(
        Reason.PARDOT_AUTH_MECHANISM_INVALID,
        fix='this API accepts only Salesforce OAuth: set {auth} = "oauth"',
    ),
    # One or more of the specified fields are invalid: a trait names a custom field
    # the account does not have (when Pardot is set to refuse unknown fields).
    130: ErrorRule(Reason.INVALID_FIELD),
    # Prospect is archived: update and read refuse it; upsert by id or fid unarchives.
    132: ErrorRule(Reason.PROSPECT_ARCHIVED),
    150: _OUR_BUG,
    151: _OUR_BUG,
    152: _OUR_BUG,
    153: _OUR_BUG,
    # v5: One or more of the specified fields are invalid (as 130).
    180: ErrorRule(Reason.INVALID_FIELD),
    181: ErrorRule(Reason.BUSINESS_UNIT_MISSING, fix="set {business_unit_id}"),
    183: _UNAVAILABLE,
    184: _AUTH,
    199: ErrorRule(
        Reason.LEGACY_AUTH_RETIRED,
        fix='set {auth} = "oauth" with a business unit and Salesforce credentials',
    ),
    201: ErrorRule(
        Reason.BUSINESS_UNIT_INVALID,
        fix=(
            "set {business_unit_id} to the Pardot Business Unit Id these credentials may "
            "use (Salesforce Setup > Pardot Account Setup: 18 characters starting with 0Uv)"
        ),
    ),
    211: _OUR_BUG,
    214: _UNAVAILABLE,
    # v5: Deleted records can't be updated (a PATCH of a prospect in the recycle bin).
    219: ErrorRule(Reason.PROSPECT_ARCHIVED),
}

#: An err_code the table does not know: Pardot refused, and retrying will not help.
UNKNOWN_PARDOT_ERROR = ErrorRule(Reason.PARDOT_ERROR)


def rule_for(err_code: int) -> ErrorRule:
    return PARDOT_ERRORS.get(err_code, UNKNOWN_PARDOT_ERROR)


class PardotError(ProspectSyncError):
    """Pardot answered ``stat="fail"``: its err_code decides the status via the table."""

    def __init__(self, err_code: int, text: str, *, http_status: int = 200) -> None:
        self.err_code = err_code
        self.text = text
        self.http_status = http_status
        self.rule = rule_for(err_code)
        self._explained = False
        super().__init__(
            f"Pardot err {err_code}: {text}",
            reason=self.rule.reason,
            metadata={"err_code": str(err_code)},
        )

    def explain(self, config: SettingKeys) -> PardotError:
        """Add what the operator must change (the rule's ``fix``, with this
        connection's setting keys) to the message; returns self."""
        if self.rule.fix and not self._explained:
            fix = self.rule.fix.format_map(_SettingKeys(config))
            self.message = f"{self.message.rstrip('.')}; to fix: {fix}"
            self.args = (self.message,)
            self._explained = True
        return self


class SettingKeys(Protocol):
    """Where a connection's settings live in the configuration (``ConnectionConfig``
    is one): what a ``fix`` names."""

    @property
    def name(self) -> str: ...

    def key(self, name: str) -> str: ...


class _SettingKeys(dict[str, str]):
    """``{api_version}`` → ``connections.<name>.api_version``; ``{connection}`` → name."""

    def __init__(self, config: SettingKeys) -> None:
        super().__init__(connection=repr(config.name))
        self._config = config

    def __missing__(self, name: str) -> str:
        return self._config.key(name)


class DailyLimitReached(PardotError):
    """Pardot's daily API budget of the account is spent (err 122): no call is sent on
    the connection until the account's next midnight; ``retry_after`` says how long
    that is. Raised for Pardot's own err 122 and for every call refused meanwhile."""

    def __init__(self, message: str, *, retry_after: float, text: str = "") -> None:
        super().__init__(facts.ERR_DAILY_LIMIT, text or message)
        self.message = message
        self.args = (message,)
        self.retry_after = retry_after


class PardotUnavailable(ProspectSyncError):
    """No Pardot answer came back: a connection error, a timeout, a 5xx or a body that
    is not Pardot's (a proxy's HTML page, an empty 200). Always safe to retry reads."""

    default_reason = Reason.PARDOT_UNAVAILABLE


class StateUnwritable(ProspectSyncError):
    """The service's own state could not be written (or read) when a call needed it.
    Raised before any Pardot write, so nothing is applied that the service would not
    remember; UNAVAILABLE with a RetryInfo, as the condition is an operator's to mend."""

    default_reason = Reason.STATE_UNAVAILABLE


class PardotAuthFailed(ProspectSyncError):
    """Credentials were rejected even after one refresh: an operator must fix them."""

    default_reason = Reason.PARDOT_AUTH_FAILED


class DeadlineExceeded(ProspectSyncError):
    """The caller's deadline left no time for (another) Pardot call. Raised instead of
    sending a request that could not finish in time, or retrying past the deadline."""

    default_reason = Reason.DEADLINE_EXCEEDED


class PardotWriteUnconfirmed(ProspectSyncError):
    """A write that is not safe to repeat (a v4 create, an external activity) failed in
    a way that leaves open whether Pardot applied it, so it was not resent.

    ``settled`` is True when Pardot itself answered (an err envelope such as 85): its
    work on the request is over, so a read now tells whether the write landed. It is
    False when no answer came (a timeout, a dropped connection, a proxy's page): the
    write may still land later, so ``clients.gateway`` holds back another create of
    the same prospect for a while (``unconfirmed_create_hold_s``). UNAVAILABLE with a
    RetryInfo: the caller's retry re-reads and updates what landed instead of
    creating it twice.
    """

    default_reason = Reason.PARDOT_WRITE_UNCONFIRMED

    def __init__(
        self,
        message: str,
        *,
        settled: bool,
        code: StatusCode | None = None,
        retry_after: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, retry_after=retry_after, metadata=metadata)
        self.settled = settled
