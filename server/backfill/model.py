"""Plain values of the backfill tool: what happened to one row, and the tally of a run.

One row has exactly one outcome, so the summary's counts add up to the rows of the
file. Values only: nothing here reads files, talks to Pardot or prints.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from server.backfill.source import BadRow


class RowOutcome(enum.Enum):
    """What one row came to. The values are the summary's labels."""

    #: The field was empty on a prospect with the email; it now holds the value.
    SET = "set"
    #: A prospect with the email already holds the value.
    ALREADY_SET = "already set"
    #: Every prospect with the email holds another value; none was changed.
    CONFLICT = "conflicts"
    #: No prospect has the email.
    NOT_FOUND = "not found"
    #: Pardot failed for this row; it is tried again on the next run.
    FAILED = "failed"

    @property
    def journaled(self) -> bool:
        """Journaled rows are skipped when the tool runs again. A conflict is not: only
        a person settles it (in Pardot), so the next run checks it again (one read)."""
        return self in (RowOutcome.SET, RowOutcome.ALREADY_SET, RowOutcome.NOT_FOUND)

    @property
    def matched(self) -> bool:
        return self in (RowOutcome.SET, RowOutcome.ALREADY_SET, RowOutcome.CONFLICT)


@dataclass(frozen=True)
class Conflict:
    """A prospect with the row's email whose field holds another value (left as is)."""

    prospect_id: int
    existing: str


@dataclass(frozen=True)
class RowResult:
    line: int
    email: str
    value: str
    outcome: RowOutcome
    #: SET / ALREADY_SET: the prospect that holds the value (the one the map names).
    prospect_id: int | None = None
    conflicts: tuple[Conflict, ...] = ()
    #: FAILED: why, as the error said it (never a secret: errors carry none).
    reason: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["outcome"] = self.outcome.name
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RowResult:
        data = json.loads(text)
        return cls(
            line=int(data["line"]),
            email=str(data["email"]),
            value=str(data["value"]),
            outcome=RowOutcome[data["outcome"]],
            prospect_id=data.get("prospect_id"),
            conflicts=tuple(Conflict(**c) for c in data.get("conflicts", ())),
            reason=str(data.get("reason", "")),
        )


class StopReason(enum.Enum):
    """Why a run ended before the last row; every one is resumed by running again."""

    DAILY_LIMIT = "daily limit"
    CONNECTION = "connection"
    INTERRUPTED = "interrupted"


@dataclass
class Tally:
    """A run's results: this run's rows plus, when resuming, the rows finished before."""

    total_rows: int
    results: list[RowResult] = field(default_factory=list)
    bad_rows: tuple[BadRow, ...] = ()
    #: Rows an earlier run journaled (their results are in ``results``; not sent again).
    earlier: int = 0
    #: Pardot calls this run made: reads, and writes (planned ones in a dry run).
    reads: int = 0
    writes: int = 0
    stopped: StopReason | None = None
    stop_message: str = ""

    def add(self, results: Iterable[RowResult]) -> None:
        self.results.extend(results)

    @property
    def counts(self) -> Counter[RowOutcome]:
        return Counter(result.outcome for result in self.results)

    @property
    def matched(self) -> int:
        return sum(1 for result in self.results if result.outcome.matched)

    @property
    def reached(self) -> int:
        """Rows with an answer, failed and invalid ones included."""
        return len(self.results) + len(self.bad_rows)

    @property
    def not_reached(self) -> int:
        """Rows a stopped run never got to."""
        return self.total_rows - self.reached

    @property
    def needs_attention(self) -> bool:
        counts = self.counts
        return bool(counts[RowOutcome.CONFLICT] or counts[RowOutcome.FAILED] or self.bad_rows)
