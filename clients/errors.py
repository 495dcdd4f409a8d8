"""The service's error model (DESIGN.md, "Contract highlights").

Every failure the service reports is a :class:`ProspectSyncError`: a canonical gRPC
code, a stable UPPER_SNAKE reason, a message that names the field and the fix, and the
details a caller can act on (field violations, a retry delay, Pardot's err_code).
``server.status`` turns one into a rich gRPC status; nothing else formats errors.

What a Pardot err_code means lives in ONE table, :data:`PARDOT_ERRORS` (STYLE.md: "One
table for what a Pardot error means"), read by the client for retry/refresh decisions
and by the server for the status. This module never talks to the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grpc import StatusCode

from clients import pardot_facts as facts

if TYPE_CHECKING:
    from clients.config import ConnectionConfig

DOMAIN = "prospectsync.pardot"


class ProspectSyncError(Exception):
    """A failure with everything needed to report it as a canonical gRPC status."""

    code: StatusCode = StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        code: StatusCode | None = None,
        reason: str | None = None,
        violations: Sequence[tuple[str, str]] = (),
        retry_after: float | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason
        self.violations = tuple(violations)
        self.retry_after = retry_after
        self.metadata = dict(metadata or {})


class InvalidArgument(ProspectSyncError):
    """The caller sent something unusable. ``field`` is its path in the request and
    ``description`` a verb phrase ("is required for API v3 (EmailV3)"), so the message
    reads as one sentence: "traits.email is required for API v3 (EmailV3)"."""

    code = StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, description: str, *, reason: str | None = None) -> None:
        super().__init__(f"{field} {description}", reason=reason, violations=[(field, description)])
        self.field = field


class FailedPrecondition(ProspectSyncError):
    """The settings or the server's configuration cannot serve this call as asked."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


@dataclass(frozen=True)
class ErrorRule:
    """What one Pardot err_code means to the service.

    ``fix`` tells an operator what to change, naming settings by ``{key}`` placeholders
    that :meth:`PardotError.explain` turns into ``connections.<name>.<key>`` (and
    ``{connection}`` into the connection's name). Only errors a setting can cure have one.
    """

    code: StatusCode
    reason: str
    retryable: bool = False
    refresh_credentials: bool = False
    fix: str = ""


_AUTH = ErrorRule(StatusCode.FAILED_PRECONDITION, "PARDOT_AUTH_FAILED", refresh_credentials=True)
_UNAVAILABLE = ErrorRule(StatusCode.UNAVAILABLE, "PARDOT_UNAVAILABLE", retryable=True)
_NOT_FOUND = ErrorRule(StatusCode.NOT_FOUND, "PROSPECT_NOT_FOUND")
_PERMISSION_FIX = (
    "give the Pardot user that connection {connection} signs in as (the Salesforce user "
    "behind {client_id}, or {email} for a legacy login) a Pardot role that allows this "
    "operation; the connected app also needs the pardot_api OAuth scope"
)
_FIELD_VALUE = ErrorRule(StatusCode.INVALID_ARGUMENT, "INVALID_FIELD_VALUE")
#: Pardot refused a request this service built: a bug here, not the caller's doing.
_OUR_BUG = ErrorRule(StatusCode.INTERNAL, "PARDOT_REQUEST_REJECTED")

#: err_code → meaning. Codes and texts: ../shared/PARDOT_API.md, "Error codes that matter
#: here"; the texts of 22, 38, 50, 56, 61, 90, 94, 126, 130 and 132 follow Pardot's
#: published error-code page (fakepardot/constants.py holds them word for word).
PARDOT_ERRORS: dict[int, ErrorRule] = {
    1: _AUTH,
    2: _OUR_BUG,  # Invalid action: a path this service built is wrong
    3: _NOT_FOUND,
    4: ErrorRule(StatusCode.INVALID_ARGUMENT, "INVALID_EMAIL"),
    9: ErrorRule(StatusCode.ALREADY_EXISTS, "PROSPECT_EMAIL_EXISTS"),
    13: ErrorRule(StatusCode.INVALID_ARGUMENT, "PARDOT_PARAMETER_MISSING"),
    14: ErrorRule(StatusCode.INVALID_ARGUMENT, "EMAIL_REQUIRED"),
    15: ErrorRule(StatusCode.FAILED_PRECONDITION, "PARDOT_AUTH_FAILED"),
    # Unsupported feature in this version of the API: the version is a setting.
    22: ErrorRule(
        StatusCode.FAILED_PRECONDITION,
        "PARDOT_UNSUPPORTED_IN_VERSION",
        fix="check {api_version} and the request's settings.api_version",
    ),
    36: ErrorRule(StatusCode.INVALID_ARGUMENT, "PARDOT_PARAMETER_MISSING"),
    # Invalid campaign ID: settings.campaign_id (or a campaign_id trait) names none.
    38: ErrorRule(StatusCode.INVALID_ARGUMENT, "INVALID_CAMPAIGN"),
    46: ErrorRule(StatusCode.FAILED_PRECONDITION, "PARDOT_PERMISSION_DENIED", fix=_PERMISSION_FIX),
    49: ErrorRule(StatusCode.FAILED_PRECONDITION, "PARDOT_PERMISSION_DENIED", fix=_PERMISSION_FIX),
    50: _FIELD_VALUE,  # Invalid boolean
    55: ErrorRule(StatusCode.INVALID_ARGUMENT, "INVALID_LIST"),
    56: _FIELD_VALUE,  # Invalid number entered for field
    58: ErrorRule(StatusCode.ALREADY_EXISTS, "ALREADY_LIST_MEMBER"),
    61: _FIELD_VALUE,  # Invalid prospect account id
    66: ErrorRule(StatusCode.UNAVAILABLE, "PARDOT_CONCURRENCY_LIMIT", retryable=True),
    70: ErrorRule(StatusCode.INTERNAL, "PARDOT_BATCH_REJECTED"),
    71: ErrorRule(StatusCode.INTERNAL, "PARDOT_BATCH_REJECTED"),
    77: _NOT_FOUND,
    81: ErrorRule(StatusCode.INVALID_ARGUMENT, "ID_FID_MISMATCH"),
    85: ErrorRule(StatusCode.UNAVAILABLE, "PARDOT_SAVE_FAILED", retryable=True),
    88: ErrorRule(
        StatusCode.FAILED_PRECONDITION,
        "ACCOUNT_REQUIRES_API_V4",
        fix="set {api_version} = 4 (and send settings.api_version 4, or leave it unset)",
    ),
    89: ErrorRule(
        StatusCode.FAILED_PRECONDITION,
        "ACCOUNT_REQUIRES_API_V3",
        fix="set {api_version} = 3 (and send settings.api_version 3, or leave it unset)",
    ),
    90: _OUR_BUG,  # Prospect array should be a flat array: values are validated first
    94: _OUR_BUG,  # The provided version is not a valid number: paths are built here
    116: _UNAVAILABLE,
    120: _UNAVAILABLE,
    121: _UNAVAILABLE,
    122: ErrorRule(StatusCode.RESOURCE_EXHAUSTED, "PARDOT_DAILY_LIMIT"),
    126: ErrorRule(
        StatusCode.FAILED_PRECONDITION,
        "PARDOT_AUTH_MECHANISM_INVALID",
        fix='this API accepts only Salesforce OAuth: set {auth} = "oauth"',
    ),
    # One or more of the specified fields are invalid: a trait names a custom field
    # the account does not have (when Pardot is set to refuse unknown fields).
    130: ErrorRule(StatusCode.INVALID_ARGUMENT, "INVALID_FIELD"),
    # Prospect is archived: update and read refuse it; upsert by id or fid unarchives.
    132: ErrorRule(StatusCode.FAILED_PRECONDITION, "PROSPECT_ARCHIVED"),
    181: ErrorRule(
        StatusCode.FAILED_PRECONDITION, "BUSINESS_UNIT_MISSING", fix="set {business_unit_id}"
    ),
    183: _UNAVAILABLE,
    184: _AUTH,
    199: ErrorRule(
        StatusCode.FAILED_PRECONDITION,
        "LEGACY_AUTH_RETIRED",
        fix='set {auth} = "oauth" with a business unit and Salesforce credentials',
    ),
    201: ErrorRule(
        StatusCode.FAILED_PRECONDITION,
        "BUSINESS_UNIT_INVALID",
        fix=(
            "set {business_unit_id} to the Pardot Business Unit Id these credentials may "
            "use (Salesforce Setup > Pardot Account Setup: 18 characters starting with 0Uv)"
        ),
    ),
    214: _UNAVAILABLE,
}

#: An err_code the table does not know: Pardot refused, and retrying will not help.
UNKNOWN_PARDOT_ERROR = ErrorRule(StatusCode.FAILED_PRECONDITION, "PARDOT_ERROR")


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
            code=self.rule.code,
            reason=self.rule.reason,
            metadata={"err_code": str(err_code)},
        )

    @property
    def retryable(self) -> bool:
        return self.rule.retryable

    def explain(self, config: ConnectionConfig) -> PardotError:
        """Add what the operator must change (the rule's ``fix``, with this
        connection's setting keys) to the message; returns self."""
        if self.rule.fix and not self._explained:
            fix = self.rule.fix.format_map(_SettingKeys(config))
            self.message = f"{self.message.rstrip('.')}; to fix: {fix}"
            self.args = (self.message,)
            self._explained = True
        return self


class _SettingKeys(dict[str, str]):
    """``{api_version}`` → ``connections.<name>.api_version``; ``{connection}`` → name."""

    def __init__(self, config: ConnectionConfig) -> None:
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

    code = StatusCode.UNAVAILABLE
    reason = "PARDOT_UNAVAILABLE"
    retryable = True


class PardotAuthFailed(ProspectSyncError):
    """Credentials were rejected even after one refresh: an operator must fix them."""

    code = StatusCode.FAILED_PRECONDITION
    reason = "PARDOT_AUTH_FAILED"


class DeadlineExceeded(ProspectSyncError):
    """The caller's deadline left no time for (another) Pardot call. Raised instead of
    sending a request that could not finish in time, or retrying past the deadline."""

    code = StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


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

    code = StatusCode.UNAVAILABLE
    reason = "PARDOT_WRITE_UNCONFIRMED"
    retryable = False  # by the transport: the caller's retry re-reads first

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
