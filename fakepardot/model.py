"""The fake's plain data: an account and what it holds, an injected fault, a recorded
call, and the two ways an operation fails (the v3/v4 dialect and the v5 dialect).

Plain values only: no locking (``state`` guards them), no I/O, no rendering.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from fakepardot import constants as c
from fakepardot.store import ProspectRecord, ProspectStore

__all__ = [
    "FAULT_KINDS",
    "Account",
    "Fault",
    "FaultKind",
    "PardotFail",
    "ProspectRecord",  # defined with the store it describes; imported from here
    "RecordedCall",
    "V5Fail",
]

FaultKind = Literal["html_502", "http_500", "empty_200", "err", "delay", "drop", "refuse"]
FAULT_KINDS: tuple[str, ...] = (
    "html_502",
    "http_500",
    "empty_200",
    "err",
    "delay",
    "drop",
    "refuse",
)


class PardotFail(Exception):
    """Pardot answers ``stat="fail"`` with this err_code. The text and HTTP status come
    from the constants table unless a caller overrides them."""

    def __init__(self, err_code: int, text: str | None = None, http_status: int | None = None):
        self.err_code = err_code
        self.text = text if text is not None else c.ERROR_TEXTS.get(err_code, c.UNKNOWN_ERROR_TEXT)
        self.http_status = (
            http_status if http_status is not None else c.ERROR_HTTP_STATUS.get(err_code, 200)
        )
        super().__init__(f"err {err_code}: {self.text}")


class V5Fail(Exception):
    """A version 5 error: JSON ``{"code": N, "message": "..."}`` with a 4xx status."""

    def __init__(self, code: int, message: str | None = None, http_status: int = 400):
        self.code = code
        self.message = (
            message
            if message is not None
            else c.V5_ERROR_TEXTS.get(code, c.ERROR_TEXTS.get(code, c.UNKNOWN_ERROR_TEXT))
        )
        self.http_status = http_status
        super().__init__(f"v5 code {code}: {self.message}")


@dataclass
class Account:
    """One Pardot account (a business unit). ``version`` is the API version it must use."""

    name: str
    version: int
    custom_fields: set[str]
    campaigns: list[int]  # oldest first
    lists: dict[int, dict[int, dict[str, Any]]]  # list id → prospect id → membership
    activity_types: set[tuple[str, str]]  # (extension, type)
    #: The ``list_field_resubscribes`` switch, as this account applies it (fields.py).
    list_field_resubscribes: bool = False
    prospects: ProspectStore = field(default_factory=ProspectStore)
    activities: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    daily_day: date | None = None
    daily_count: int = 0


@dataclass
class Fault:
    """One injected fault, consumed by the next ``times`` matching requests.

    A "refuse" fault is not a request's but a prospect write's: it is consumed by the
    next ``times`` batch entries or single writes that name ``match`` (an email, without
    regard to case, an id or an fid), which Pardot then refuses with ``err_code`` (and
    ``text``, else that code's usual text), as it refuses a prospect it cannot save."""

    kind: str
    times: int = 1
    err_code: int | None = None
    path_contains: str | None = None
    delay_s: float | None = None
    match: str | None = None
    text: str | None = None

    def matches(self, path: str) -> bool:
        return self.times > 0 and (self.path_contains is None or self.path_contains in path)

    def refuses(self, path: str, names: Iterable[str]) -> bool:
        """A "refuse" fault for a write at ``path`` naming any of ``names``."""
        if self.kind != "refuse" or self.match is None or not self.matches(path):
            return False
        wanted = self.match.strip().casefold()
        return any(name.strip().casefold() == wanted for name in names if name)

    def failure(self) -> PardotFail:
        """What a "refuse" (or "err") fault answers for the write it hits."""
        assert self.err_code is not None
        return PardotFail(self.err_code, self.text)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RecordedCall:
    """One request the fake answered (or dropped), secrets replaced by ``[REDACTED]``.

    ``path`` is the path as the fake decoded it; ``raw_path`` is what the client sent.
    ``http_status`` is 0 for a dropped connection; ``err_code`` is 0 unless Pardot's
    answer was ``stat="fail"`` (or a v5 error).
    """

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    form: dict[str, Any]
    http_status: int
    err_code: int
    account: str | None
    ts: float
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
