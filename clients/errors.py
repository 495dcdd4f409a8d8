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

from grpc import StatusCode

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
    """What one Pardot err_code means to the service."""

    code: StatusCode
    reason: str
    retryable: bool = False
    refresh_credentials: bool = False


_AUTH = ErrorRule(StatusCode.FAILED_PRECONDITION, "PARDOT_AUTH_FAILED", refresh_credentials=True)
_UNAVAILABLE = ErrorRule(StatusCode.UNAVAILABLE, "PARDOT_UNAVAILABLE", retryable=True)
_NOT_FOUND = ErrorRule(StatusCode.NOT_FOUND, "PROSPECT_NOT_FOUND")
_PERMISSION = ErrorRule(StatusCode.FAILED_PRECONDITION, "PARDOT_PERMISSION_DENIED")

#: err_code → meaning. Codes and texts: ../shared/PARDOT_API.md, "Error codes that matter here".
PARDOT_ERRORS: dict[int, ErrorRule] = {
    1: _AUTH,
    3: _NOT_FOUND,
    4: ErrorRule(StatusCode.INVALID_ARGUMENT, "INVALID_EMAIL"),
    9: ErrorRule(StatusCode.ALREADY_EXISTS, "PROSPECT_EMAIL_EXISTS"),
    13: ErrorRule(StatusCode.INVALID_ARGUMENT, "PARDOT_PARAMETER_MISSING"),
    14: ErrorRule(StatusCode.INVALID_ARGUMENT, "EMAIL_REQUIRED"),
    15: ErrorRule(StatusCode.FAILED_PRECONDITION, "PARDOT_AUTH_FAILED"),
    36: ErrorRule(StatusCode.INVALID_ARGUMENT, "PARDOT_PARAMETER_MISSING"),
    46: _PERMISSION,
    49: _PERMISSION,
    55: ErrorRule(StatusCode.INVALID_ARGUMENT, "INVALID_LIST"),
    58: ErrorRule(StatusCode.ALREADY_EXISTS, "ALREADY_LIST_MEMBER"),
    66: ErrorRule(StatusCode.UNAVAILABLE, "PARDOT_CONCURRENCY_LIMIT", retryable=True),
    70: ErrorRule(StatusCode.INTERNAL, "PARDOT_BATCH_REJECTED"),
    71: ErrorRule(StatusCode.INTERNAL, "PARDOT_BATCH_REJECTED"),
    77: _NOT_FOUND,
    81: ErrorRule(StatusCode.INVALID_ARGUMENT, "ID_FID_MISMATCH"),
    85: ErrorRule(StatusCode.UNAVAILABLE, "PARDOT_SAVE_FAILED", retryable=True),
    88: ErrorRule(StatusCode.FAILED_PRECONDITION, "ACCOUNT_REQUIRES_API_V4"),
    89: ErrorRule(StatusCode.FAILED_PRECONDITION, "ACCOUNT_REQUIRES_API_V3"),
    116: _UNAVAILABLE,
    120: _UNAVAILABLE,
    121: _UNAVAILABLE,
    122: ErrorRule(StatusCode.RESOURCE_EXHAUSTED, "PARDOT_DAILY_LIMIT"),
    181: ErrorRule(StatusCode.FAILED_PRECONDITION, "BUSINESS_UNIT_MISSING"),
    183: _UNAVAILABLE,
    184: _AUTH,
    199: ErrorRule(StatusCode.FAILED_PRECONDITION, "LEGACY_AUTH_RETIRED"),
    201: ErrorRule(StatusCode.FAILED_PRECONDITION, "BUSINESS_UNIT_INVALID"),
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
        super().__init__(
            f"Pardot err {err_code}: {text}",
            code=self.rule.code,
            reason=self.rule.reason,
            metadata={"err_code": str(err_code)},
        )

    @property
    def retryable(self) -> bool:
        return self.rule.retryable


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
