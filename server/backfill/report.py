"""What the backfill tool shows a person: a progress bar while it runs, the summary
when it ends, and the exit code that sums it up for scripts.

The bar is tqdm on stderr, drawn only on a terminal (tqdm's ``disable=None``), so a
log file or a pipe gets the summary alone. The summary goes to stdout. Nothing here
decides anything about prospects; it reads a ``Tally``.
"""

from __future__ import annotations

import sys
from typing import Never, TextIO

from tqdm import tqdm

from server.backfill.model import RowOutcome, RowResult, StopReason, Tally

#: Every row has a final answer, and none needs a person.
EXIT_DONE = 0
#: Every row was tried, but some need a person: conflicts, invalid rows, failed rows.
EXIT_ATTENTION = 1
#: The command could not start: bad options, configuration or CSV header.
EXIT_USAGE = 2
#: The run stopped early (daily limit, credentials, Ctrl-C): run it again to resume.
EXIT_STOPPED = 3


def exit_code(tally: Tally) -> int:
    if tally.stopped is not None:
        return EXIT_STOPPED
    return EXIT_ATTENTION if tally.needs_attention else EXIT_DONE


class ProgressBar:
    """tqdm, counting rows, with the running counts that matter beside it."""

    def __init__(self, description: str, stream: TextIO | None = None) -> None:
        self._description = description
        self._stream = stream if stream is not None else sys.stderr
        self._bar: tqdm[Never] | None = None  # tqdm[Never]: a bar over no iterable
        self._counts = {RowOutcome.SET: 0, RowOutcome.CONFLICT: 0, RowOutcome.FAILED: 0}

    def start(self, total: int, done: int) -> None:
        self._bar = tqdm(
            total=total,
            initial=done,
            desc=self._description,
            unit="row",
            file=self._stream,
            disable=None,  # a terminal only
            dynamic_ncols=True,
        )

    def advance(self, result: RowResult) -> None:
        if self._bar is None:
            return
        if result.outcome in self._counts:
            self._counts[result.outcome] += 1
        self._bar.set_postfix_str(
            ", ".join(f"{outcome.value} {n}" for outcome, n in self._counts.items()),
            refresh=False,
        )
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


_LEGEND = {
    RowOutcome.SET: "the field was empty: it now holds the row's value",
    RowOutcome.ALREADY_SET: "a prospect already held the row's value",
    RowOutcome.CONFLICT: "every prospect with the email holds another value (left unchanged)",
    RowOutcome.NOT_FOUND: "no prospect has the email",
    RowOutcome.FAILED: "Pardot failed for the row; run again to retry it",
}
_DRY_RUN_LEGEND = {
    RowOutcome.SET: "the field is empty: a real run would write the row's value",
}


def render_summary(
    tally: Tally, *, lookup_field: str, connection: str, source: str, dry_run: bool
) -> str:
    counts = tally.counts
    legend = {**_LEGEND, **(_DRY_RUN_LEGEND if dry_run else {})}
    set_label = "would set" if dry_run else "set"
    lines = [
        f"{'Dry run of the backfill' if dry_run else 'Backfill'} of {lookup_field} on "
        f"connection {connection!r} from {source}: {tally.total_rows} rows",
        f"  {'matched':<13}{tally.matched:>7}  rows whose email a prospect has:",
        f"    {set_label:<11}{counts[RowOutcome.SET]:>7}  {legend[RowOutcome.SET]}",
    ]
    for outcome in (RowOutcome.ALREADY_SET, RowOutcome.CONFLICT):
        lines.append(f"    {outcome.value:<11}{counts[outcome]:>7}  {legend[outcome]}")
    lines.append(
        f"  {'not found':<13}{counts[RowOutcome.NOT_FOUND]:>7}  {legend[RowOutcome.NOT_FOUND]}"
    )
    lines.append(f"  {'invalid':<13}{len(tally.bad_rows):>7}  rows to fix in the file (not sent)")
    lines.append(f"  {'failed':<13}{counts[RowOutcome.FAILED]:>7}  {legend[RowOutcome.FAILED]}")
    if tally.not_reached:
        lines.append(f"  {'not reached':<13}{tally.not_reached:>7}  the run stopped first")
    write = "planned write" if dry_run else "write"
    calls = f"Pardot calls this run: {tally.reads + tally.writes} "
    calls += f"({_counted(tally.reads, 'read')}, {_counted(tally.writes, write)})"
    if tally.earlier:
        rows = "1 row was" if tally.earlier == 1 else f"{tally.earlier} rows were"
        calls += f"; {rows} finished by an earlier run and skipped"
    lines.append(calls + ".")
    if dry_run:
        lines.append("Nothing was written: no Pardot write, no identity map entry, no journal.")

    conflicts = [r for r in tally.results if r.outcome is RowOutcome.CONFLICT]
    if conflicts:
        lines += [
            "",
            "Conflicts (never overwritten; settle them in Pardot, and the next run checks "
            "them again):",
        ]
        for result in sorted(conflicts, key=_line):
            held = ", ".join(
                f"prospect {c.prospect_id} holds {c.existing!r}" for c in result.conflicts
            )
            lines.append(f"  line {result.line}: {result.email} {result.value!r}: {held}")
    if tally.bad_rows:
        lines += ["", "Invalid rows (fix them in the file, then run again):"]
        lines += [f"  line {bad.line}: {bad.reason}" for bad in tally.bad_rows]
    failed = [r for r in tally.results if r.outcome is RowOutcome.FAILED]
    if failed:
        lines += ["", "Failed rows (run again to retry them):"]
        lines += [f"  line {r.line}: {r.email}: {r.reason}" for r in sorted(failed, key=_line)]
    if tally.stopped is not None:
        lines += ["", _stopped(tally, connection)]
    return "\n".join(lines)


def _stopped(tally: Tally, connection: str) -> str:
    again = "Run the same command again to resume: finished rows are not done twice."
    if tally.stopped is StopReason.DAILY_LIMIT:
        return (
            f"Stopped: Pardot's daily API limit for connection {connection!r} is used up "
            f"({tally.stop_message}). Resume tomorrow, after midnight in the account's time "
            f"zone: {again.lower()}"
        )
    if tally.stopped is StopReason.CONNECTION:
        return f"Stopped: {tally.stop_message}. Once that is fixed: {again.lower()}"
    return f"Stopped: interrupted. {again}"


def _line(result: RowResult) -> int:
    return result.line


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
