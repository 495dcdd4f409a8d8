"""Backfill: put the lookup value on existing prospects before a lookup field is used,
so that the v4 lookup strategies find them instead of creating duplicates (Segment's
Pardot documentation: "If you have users in Pardot that do not have values for the
custom field you will be using as a lookup field, you will likely see duplicate
prospects being created"; it recommends bulk-updating them first).

For each CSV row (email, value): read every prospect with the email (v4 may return
several), and

- one already holds the value → "already set";
- else one has the field empty → write the value on it → "set" (the oldest such
  prospect only: one prospect per value is what the strategies match, and the other
  empty duplicates stay free for another user who shares the email);
- else every one holds another value → "conflict", reported and never overwritten;
- no prospect has the email → "not found".

Set and already-set rows seed the identity map the server uses, so the first identify
for that value is one Pardot call (update by id). The run goes through the server's
own ``PardotConnections`` (same limiter, retries, credentials), rows run concurrently
up to the connection's ``max_concurrency``, rows with one email run one at a time
(two rows could otherwise both claim one empty prospect), and finished rows are
journaled so a stopped run resumes (``server.backfill.journal``); conflicts are checked
again on every run, since only a person can settle one.

It never overwrites a value a prospect holds, never creates or deletes a prospect,
and in a dry run never writes to Pardot, the identity map or the journal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import grpc

from clients.connections import PardotConnection
from clients.state.protocols import PersonLocks
from server.app import open_connections, open_state
from server.backfill.journal import JOURNAL_FILE, BackfillJournal, job_key
from server.backfill.model import Conflict, RowOutcome, RowResult, StopReason, Tally
from server.backfill.source import BackfillFile, CsvProblem, CsvRow, read_backfill_csv
from server.config import ServiceConfig
from strategies.base import Gateway
from strategies.core import pardot_facts as facts
from strategies.core.errors import FailedPrecondition, InvalidArgument, ProspectSyncError, Reason
from strategies.core.model import CallRecord, Prospect, Settings, field_namespace

# The strategies' own rules for "holds the value" and for a field's text, so the
# backfill and LookupFieldV4 can never disagree about which prospect a value names.
from strategies.lookup_field_v4 import field_text
from strategies.lookup_field_v4 import holding as holding_value
from strategies.validation import check_field_id

#: Lookup fields exist only in API v4 (the v4 strategies); v3 matches by email.
API_VERSION = 4

#: Standard fields are never a lookup field: writing a "value" into email or score
#: would damage prospects. A lookup field is a custom field (PARDOT_API.md).
_STANDARD_FIELDS = frozenset((*facts.WRITABLE_FIELDS, *facts.READ_ONLY_FIELDS))

#: A Pardot failure with one of these codes is about the connection, not the row:
#: every later row would fail the same way, so the run stops (to resume later).
_STOPS_THE_RUN = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: StopReason.DAILY_LIMIT,
    grpc.StatusCode.FAILED_PRECONDITION: StopReason.CONNECTION,
}
#: FAILED_PRECONDITION for an err_code the table does not know could be the row's own.
_ROW_REASONS = frozenset({"PARDOT_ERROR"})
#: This many rows failing one after another (each after the client's retries) means
#: Pardot is down rather than these rows being bad: stop instead of failing them all.
MAX_FAILURES_IN_A_ROW = 10


class BackfillUsageError(Exception):
    """The command cannot run as given (exit code 2); the message names the option."""


class LookupFieldNotStored(FailedPrecondition):
    """Pardot accepted the write but did not keep the field: the account has no such
    custom field (Pardot drops unknown fields silently). Every row would do the same."""

    default_reason = Reason.LOOKUP_FIELD_NOT_STORED


@dataclass(frozen=True)
class BackfillOptions:
    lookup_field: str
    source: Path
    connection: str = "default"
    dry_run: bool = False
    #: Rows in flight at once; None means the connection's max_concurrency.
    concurrency: int | None = None
    #: Forget this job's journal and start from the first row.
    restart: bool = False
    #: The emails' normalization, as the request settings of the same names (and their
    #: defaults): a row must name the prospect as the service's calls name it.
    normalize_email: bool = True
    normalize_email_local_part: bool = False

    @property
    def email_settings(self) -> Settings:
        """The settings ``strategies.emails.normalize_email`` reads."""
        return Settings(
            connection=self.connection,
            normalize_email=self.normalize_email,
            normalize_email_local_part=self.normalize_email_local_part,
        )


class Progress(Protocol):
    """Told about each row as it finishes (``server.backfill.report`` draws a bar)."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, result: RowResult) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    def start(self, total: int, done: int) -> None:
        pass

    def advance(self, result: RowResult) -> None:
        pass

    def close(self) -> None:
        pass


def check_lookup_field(name: str) -> str:
    try:
        check_field_id(name, "--lookup-field")
    except InvalidArgument as error:
        raise BackfillUsageError(error.message) from None
    if name in _STANDARD_FIELDS:
        raise BackfillUsageError(
            f"--lookup-field {name!r} is a standard Pardot field; a lookup field is a "
            "custom field (Admin > Configure Fields > Prospect Fields), such as org_id"
        )
    return name


async def backfill_row(
    pardot: Gateway, row: CsvRow, lookup_field: str, *, planned: dict[int, str] | None = None
) -> RowResult:
    """One row's decision (see the module docstring). Pardot failures are raised.

    ``planned`` is given in a dry run (and only then): prospect id → the value an
    earlier row of the run would have written. It is read as if written, so a dry run
    reports what a real run does when two rows share an email; this row's planned
    write is added to it; and the identity map learns nothing.
    """
    same_email = _as_planned(await pardot.read_by_email(row.email), lookup_field, planned)
    if not same_email:
        return RowResult(row.line, row.email, row.value, RowOutcome.NOT_FOUND)
    namespace = field_namespace(lookup_field)
    holder = holding_value(same_email, lookup_field, row.value)
    if holder is not None:
        if planned is None:
            await pardot.identity.remember(namespace, row.value, holder)
        return RowResult(
            row.line, row.email, row.value, RowOutcome.ALREADY_SET, prospect_id=holder.id
        )
    empty = [p for p in same_email if p.id is not None and field_text(p.get(lookup_field)) == ""]
    if empty:
        target = min(empty, key=_id)
        written = await pardot.update_by_id(_id(target), {lookup_field: row.value})
        if not written.planned:
            _check_kept(written, lookup_field, row.value)
        if planned is None:
            await pardot.identity.remember(namespace, row.value, written)
        else:
            planned[_id(target)] = row.value
        return RowResult(row.line, row.email, row.value, RowOutcome.SET, prospect_id=target.id)
    conflicts = tuple(
        Conflict(_id(p), field_text(p.get(lookup_field)))
        for p in sorted(same_email, key=lambda p: p.id or 0)
        if p.id is not None
    )
    return RowResult(row.line, row.email, row.value, RowOutcome.CONFLICT, conflicts=conflicts)


async def run_backfill(
    config: ServiceConfig,
    options: BackfillOptions,
    *,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    on_result: Callable[[RowResult], None] | None = None,
) -> Tally:
    """Runs (or resumes) the job ``options`` describe against ``config``'s connection.

    Raises BackfillUsageError (or ``server.config.ConfigError``) before any Pardot
    call when the options, the file or the connection cannot be used. ``stop`` ends
    the run after the rows in flight (Ctrl-C); ``on_result`` sees every row this run
    finishes or fails, in completion order.
    """
    lookup_field = check_lookup_field(options.lookup_field)
    try:
        source = read_backfill_csv(options.source, options.email_settings)
    except CsvProblem as error:
        raise BackfillUsageError(str(error)) from None
    state = open_state(config)
    try:
        connections = open_connections(config, state)
    except BaseException:
        await state.aclose()
        raise
    try:
        try:
            connection = connections.get(options.connection)
        except FailedPrecondition as error:
            raise BackfillUsageError(f"--connection: {error.message}") from None
        workers = _workers(options.concurrency, connection)
        journal = _open_journal(config, options, connection.name, source)
        try:
            run = _Run(
                connection,
                lookup_field,
                options.dry_run,
                journal,
                progress,
                stop,
                on_result,
                locks=state.person_locks(),
            )
            return await run.rows(source, workers)
        finally:
            if journal is not None:
                journal.close()
    finally:
        try:
            await connections.aclose()
        finally:
            await state.aclose()


def _workers(concurrency: int | None, connection: PardotConnection) -> int:
    limit = connection.config.max_concurrency
    if concurrency is None:
        return limit
    if not 1 <= concurrency <= limit:
        raise BackfillUsageError(
            f"--concurrency must be from 1 to {limit} ({connection.config.key('max_concurrency')})"
        )
    return concurrency


def _open_journal(
    config: ServiceConfig, options: BackfillOptions, connection: str, source: BackfillFile
) -> BackfillJournal | None:
    """The job's journal; a dry run reads one that exists (to skip what is finished,
    unless ``--restart``) but never creates or changes it."""
    path = config.server.state_dir / JOURNAL_FILE
    if options.dry_run and (options.restart or not path.exists()):
        return None
    key = job_key(source.sha256, connection, options.lookup_field)
    try:
        journal = BackfillJournal(path, key)
    except OSError as error:
        raise BackfillUsageError(
            f"server.state_dir: cannot open the backfill journal {path} ({error})"
        ) from None
    if options.restart:
        journal.forget()
    return journal


class _Run:
    """One run over one file: the worker pool, the stop rules and the tally."""

    def __init__(
        self,
        connection: PardotConnection,
        lookup_field: str,
        dry_run: bool,
        journal: BackfillJournal | None,
        progress: Progress | None,
        stop: asyncio.Event | None,
        on_result: Callable[[RowResult], None] | None,
        *,
        locks: PersonLocks,
    ) -> None:
        self.connection = connection
        self.lookup_field = lookup_field
        self.dry_run = dry_run
        self.journal = journal
        self.progress = progress or NoProgress()
        self.stop = stop or asyncio.Event()
        self.on_result = on_result
        #: Rows with one email one at a time (keyed by the email, not a strategy's key).
        self.locks = locks
        #: Dry run: prospect id → the value an earlier row would have written.
        self.planned: dict[int, str] | None = {} if dry_run else None
        self.failures_in_a_row = 0

    async def rows(self, source: BackfillFile, workers: int) -> Tally:
        tally = Tally(total_rows=source.total, bad_rows=source.bad_rows)
        finished = self.journal.finished() if self.journal is not None else {}
        earlier = [finished[row.line] for row in source.rows if row.line in finished]
        tally.add(earlier)
        tally.earlier = len(earlier)
        todo = iter([row for row in source.rows if row.line not in finished])
        self.progress.start(source.total, tally.reached)
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(self._worker(todo, tally))
        finally:
            self.progress.close()
        if tally.stopped is None and self.stop.is_set() and tally.not_reached:
            tally.stopped = StopReason.INTERRUPTED
            tally.stop_message = "interrupted"
        return tally

    async def _worker(self, todo: Iterator[CsvRow], tally: Tally) -> None:
        while not self.stop.is_set() and (row := next(todo, None)) is not None:
            # Rows with one email share prospects: one at a time, in file order.
            async with self.locks.hold(self.connection.name, row.email.lower()):
                if self.stop.is_set():
                    return
                result = await self._one(row, tally)
            if result is None:
                return  # the run stopped on this row: it is not done, a rerun does it
            tally.add([result])
            if self.journal is not None and not self.dry_run and result.outcome.journaled:
                self.journal.record(result)
            self.progress.advance(result)
            if self.on_result is not None:
                self.on_result(result)

    async def _one(self, row: CsvRow, tally: Tally) -> RowResult | None:
        """The row's result; None when a failure about the connection stopped the run."""
        gateway = self.connection.gateway(
            api_version=API_VERSION, dry_run=self.dry_run, deadline=None
        )
        try:
            result = await backfill_row(gateway, row, self.lookup_field, planned=self.planned)
        except ProspectSyncError as error:
            stop_reason = _STOPS_THE_RUN.get(error.code)
            if stop_reason is not None and error.reason not in _ROW_REASONS:
                self._stop(tally, stop_reason, error.message)
                return None
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
                self._stop(
                    tally,
                    StopReason.CONNECTION,
                    f"{self.failures_in_a_row} rows failed one after another, the last with "
                    f"{error.message!r}: Pardot looks unavailable",
                )
            return RowResult(
                row.line, row.email, row.value, RowOutcome.FAILED, reason=error.message
            )
        else:
            self.failures_in_a_row = 0
            return result
        finally:
            _count_calls(tally, gateway.calls)

    def _stop(self, tally: Tally, reason: StopReason, message: str) -> None:
        if tally.stopped is None:
            tally.stopped = reason
            tally.stop_message = message
        self.stop.set()


def _check_kept(written: Prospect, lookup_field: str, value: str) -> None:
    """Pardot drops a field the account lacks without an error, and a field of another
    type may store the value changed; either way no strategy would match it."""
    held = field_text(written.get(lookup_field))
    if held == value:
        return
    if held == "":
        fix = (
            f"did not keep it: create the custom field {lookup_field!r} in Pardot "
            "(Admin > Configure Fields > Prospect Fields), then run again"
        )
    else:
        fix = (
            f"stored it as {held!r}: make {lookup_field!r} a text field, so that "
            "values are kept as given, then run again"
        )
    raise LookupFieldNotStored(
        f"Pardot accepted {lookup_field}={value!r} for prospect {written.id} but {fix}"
    )


def _count_calls(tally: Tally, calls: list[CallRecord]) -> None:
    for call in calls:
        if call.method == "GET":
            tally.reads += 1
        else:
            tally.writes += 1


def _as_planned(
    prospects: list[Prospect], lookup_field: str, planned: dict[int, str] | None
) -> list[Prospect]:
    if not planned:
        return prospects
    return [
        replace(p, fields={**p.fields, lookup_field: planned[p.id]}) if p.id in planned else p
        for p in prospects
    ]


def _id(prospect: Prospect) -> int:
    assert prospect.id is not None  # only prospects Pardot returned, which have ids
    return prospect.id
