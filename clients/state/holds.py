"""Creates in doubt: ``clients.state.protocols.CreateHolds`` for the embedded backends —
:class:`SqliteCreateHolds` (a file under ``server.state_dir``: the holds outlive the
process) and :class:`MemoryCreateHolds` (this process only).

A v4 or v5 ``create`` is the one prospect write that is not safe to repeat: every send
makes a new prospect. While one is on its way, and after one that got no answer (a
timeout, a dropped connection), Pardot may be creating it still. The caller's retry
then reads by email first (the strategies do) and updates what it finds; but if it
reads before Pardot has finished, it finds nothing and would create a second
prospect. So ``clients.gateway`` tells the holds of every create:

- :meth:`sending` before it is sent — written durably first, so a process killed with
  the create in flight leaves the hold behind for the next one (issue 12, item 2); it
  lasts the create's time in flight (``in_flight_s``) plus ``hold_s``;
- :meth:`answered` when Pardot answered (it created, or refused): the hold ends;
- :meth:`unanswered` when no answer came: held ``hold_s`` from then.

:meth:`remaining` answers for every hold of the email except those of this store's
own creates still in flight: in its own process a message runs once at a time (the
single flight) and a person's calls one after another (the per-person locks), so a
create there needs no hold against itself; while two different messages may each
create a prospect with one email (CreateV4, two lookup values). A create sent by
another process, or by one that died, is held.

Times are the store's ``clients.state.clock`` (a step of the wall clock never ends a
hold early). Keys are emails as Pardot matches them (case insensitive). It never
talks to the network and never sleeps.
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from pathlib import Path

import structlog

from clients.state.clock import MARK_SCHEMA, SYSTEM_CLOCKS, HostClocks, StateClock
from clients.state.health import StateHealth
from clients.state.local_db import open_local_db
from strategies.core.errors import StateUnwritable

log = structlog.get_logger("clients.state.holds")

#: Expired holds are deleted at most this often (on a write).
_PURGE_EVERY_S = 300.0


class MemoryCreateHolds:
    """One connection's holds in this process's memory: a create in flight here holds
    nothing (see the module docstring), so only the unanswered ones are kept. Times
    are the clock since boot (no wall clock at all)."""

    def __init__(self, hold_s: float, *, clocks: HostClocks = SYSTEM_CLOCKS) -> None:
        self.hold_s = hold_s
        self._clocks = clocks
        self._tickets = itertools.count(1)
        self._in_flight: dict[int, str] = {}
        self._until: dict[str, float] = {}

    async def sending(self, email: str, *, in_flight_s: float) -> int:
        del in_flight_s  # in flight in this process: it holds nothing (module docstring)
        ticket = next(self._tickets)
        self._in_flight[ticket] = _key(email)
        return ticket

    async def answered(self, ticket: int) -> None:
        self._in_flight.pop(ticket, None)

    async def unanswered(self, ticket: int) -> None:
        key = self._in_flight.pop(ticket, None)
        if key is None:
            return
        now = self._clocks.elapsed()
        for held in [k for k, until in self._until.items() if until <= now]:
            del self._until[held]  # bounded by the failures of the last hold_s
        if self.hold_s > 0:
            self._until[key] = max(self._until.get(key, 0.0), now + self.hold_s)

    async def remaining(self, email: str) -> float:
        key = _key(email)
        until = self._until.get(key)
        if until is None:
            return 0.0
        left = until - self._clocks.elapsed()
        if left <= 0:
            del self._until[key]
            return 0.0
        return left

    def close(self) -> None:
        self._in_flight.clear()

    def __len__(self) -> int:
        return len(self._until)


class SqliteCreateHolds:
    """One connection's holds in the SQLite file at ``path``, shared by every process
    (and every connection: rows carry the connection's name) that opens it."""

    def __init__(
        self,
        path: Path,
        connection: str,
        hold_s: float,
        *,
        clocks: HostClocks = SYSTEM_CLOCKS,
        health: StateHealth | None = None,
    ) -> None:
        self.path = path
        #: Told of a hold that could not be written; None: nobody.
        self._health = health
        self.connection = connection
        self.hold_s = hold_s
        self._db = open_local_db(
            path,
            "CREATE TABLE IF NOT EXISTS holds ("
            " ticket INTEGER PRIMARY KEY AUTOINCREMENT,"
            " connection TEXT NOT NULL, email TEXT NOT NULL, owner TEXT NOT NULL,"
            " until REAL NOT NULL)",
            "CREATE INDEX IF NOT EXISTS holds_by_email ON holds (connection, email)",
            MARK_SCHEMA,
        )
        self._clock = StateClock(self._db, clocks)
        #: Names this store's rows: a row of another owner is another process's.
        self._owner = uuid.uuid4().hex
        #: This store's creates in flight: the tickets its own calls still run.
        self._in_flight: set[int] = set()
        self._purged_at = -_PURGE_EVERY_S
        self._closed = False

    async def sending(self, email: str, *, in_flight_s: float) -> int:
        """Raises StateUnwritable when the hold cannot be written: then the create
        must not be sent (a crash would leave nothing to stop a second one)."""
        now = self._clock.now()
        try:
            with self._transaction():
                cursor = self._db.execute(
                    "INSERT INTO holds (connection, email, owner, until) VALUES (?, ?, ?, ?)",
                    (self.connection, _key(email), self._owner, now + in_flight_s + self.hold_s),
                )
        except sqlite3.Error as error:
            raise self._unusable(error) from error
        ticket = int(cursor.lastrowid or 0)
        self._in_flight.add(ticket)
        return ticket

    async def answered(self, ticket: int) -> None:
        self._in_flight.discard(ticket)
        self._change("DELETE FROM holds WHERE ticket=?", (ticket,))

    async def unanswered(self, ticket: int) -> None:
        self._in_flight.discard(ticket)
        if self.hold_s > 0:
            until = self._clock.now() + self.hold_s
            self._change("UPDATE holds SET until=? WHERE ticket=?", (until, ticket))
        else:
            self._change("DELETE FROM holds WHERE ticket=?", (ticket,))

    async def remaining(self, email: str) -> float:
        """Raises StateUnwritable when the holds cannot be read: no create is sent."""
        now = self._clock.now()
        try:
            rows = self._db.execute(
                "SELECT ticket, until FROM holds WHERE connection=? AND email=? AND until>?",
                (self.connection, _key(email), now),
            ).fetchall()
        except sqlite3.Error as error:
            raise self._unusable(error) from error
        held = [until for ticket, until in rows if ticket not in self._in_flight]
        return max(held) - now if held else 0.0

    def close(self) -> None:
        """Creates still in flight keep their rows: they may land after this."""
        if not self._closed:
            self._closed = True
            self._db.close()

    def _change(self, statement: str, values: tuple[object, ...]) -> None:
        """After Pardot's answer (or its absence) a failed write only leaves a hold that
        lasts longer than it should (until its in-flight bound) — never a twin — so it
        is logged, not raised: the prospect may already be written."""
        try:
            with self._transaction():
                self._db.execute(statement, values)
                now = self._clock.now()
                if now - self._purged_at >= _PURGE_EVERY_S:
                    self._db.execute("DELETE FROM holds WHERE until<=?", (now,))
                    self._purged_at = now
        except sqlite3.Error as error:
            log.warning("state.holds.unwritable", path=str(self.path), error=str(error))

    def _unusable(self, error: sqlite3.Error) -> StateUnwritable:
        if self._health is not None:
            return self._health.failed("the create holds", error)
        return StateUnwritable(
            f"cannot use the create holds {self.path} ({error}); no create is sent that a "
            "crash could leave in doubt unseen"
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._clock)


class _Transaction:
    """One transaction that also moves the clock's mark; rolled back on failure."""

    def __init__(self, db: sqlite3.Connection, clock: StateClock) -> None:
        self._db = db
        self._clock = clock

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            try:
                self._clock.mark()
                self._db.execute("COMMIT")
                return
            except BaseException:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


def _key(email: str) -> str:
    return email.strip().lower()
