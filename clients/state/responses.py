"""The message_id records in SQLite: ``clients.state.protocols.ResponseRecords`` for
the embedded backend, used by ``server.idempotency``.

Two kinds of record, in one file under ``server.state_dir`` (they survive a restart):
a message in progress (:meth:`ResponseStore.begin`: an attempt began at this time and
has not been answered) and a message answered (:meth:`ResponseStore.save`: the
response it got, which replaces the first). Both expire after the window the store is
opened with (``server.idempotency_window_s``), counted on the file's
``clients.state.clock.StateClock``: time that passed, never what a stepped wall clock
says. Each is committed before its caller goes on — the call's first Pardot write
after the first, its answer after the second — so a crash loses neither; the records
saved within :data:`GROUP_COMMIT_S` of the last commit share the next one. A commit
that fails fails its callers with ``StateUnwritable`` (UNAVAILABLE). Several processes
on one file see each other's committed records; replicas on other hosts do not share
them.

It stores bytes under keys and never decides what is stored: ``server.idempotency``
saves only successes a caller already received.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from clients.state.clock import MARK_SCHEMA, SYSTEM_CLOCKS, HostClocks, StateClock
from clients.state.health import StateHealth
from clients.state.local_db import open_local_db
from clients.state.protocols import IdempotencyKey
from strategies.core.errors import StateUnwritable

#: Expired records are deleted at most this often (on a write), not on every call.
_PURGE_EVERY_S = 300.0

#: Commits are at least this far apart (:meth:`ResponseStore.save`): a record saved
#: sooner after the last commit waits, with the others saved meanwhile, for the next.
#: So a quiet service commits each record at once and a busy one waits up to this
#: long. Server CPU per Identify, 50 calls in flight, Pardot stubbed out: 0.35 ms with
#: a commit per call, 0.28 with 1 ms, 0.25-0.26 with 2 ms, 0.25 with 5 ms.
GROUP_COMMIT_S = 0.002

_SAVE_RESPONSE = (
    "INSERT OR REPLACE INTO responses"
    " (method, connection, message_id, response, stored_at) VALUES (?, ?, ?, ?, ?)"
)
#: Which prospect a stored response names (``forget_prospects``), one row per record.
_INDEX_RESPONSE = (
    "INSERT OR REPLACE INTO response_prospects"
    " (method, connection, message_id, prospect_id) VALUES (?, ?, ?, ?)"
)
#: An answered message is no longer in progress.
_END_ATTEMPT = "DELETE FROM attempts WHERE method=? AND connection=? AND message_id=?"
_BEGIN_ATTEMPT = (
    "INSERT OR REPLACE INTO attempts"
    " (method, connection, message_id, began_at, began_wall) VALUES (?, ?, ?, ?, ?)"
)


class _Pending(NamedTuple):
    """A record saved and not yet committed (:meth:`ResponseStore.save`, ``begin``)."""

    key: IdempotencyKey
    #: The response, or None for a message in progress.
    response: bytes | None
    at: float  # the state clock's time
    wall: float  # the wall clock's time
    committed: asyncio.Future[Any]
    #: What ``committed`` resolves with.
    result: Any
    then: Callable[[], None]
    #: The prospect the response names (indexed for ``forget_prospects``), if any.
    prospect_id: int | None = None


def _nothing() -> None:
    pass


class ResponseStore:
    """The first successful response per key, serialized, in SQLite. Calls run on the
    event loop thread: each is an indexed statement or a short transaction on a local
    file."""

    def __init__(
        self,
        path: Path,
        *,
        window_s: float,
        clocks: HostClocks = SYSTEM_CLOCKS,
        group_commit_s: float = GROUP_COMMIT_S,
        health: StateHealth | None = None,
    ) -> None:
        self.window_s = window_s
        self.path = path
        #: Told of a commit that failed (the state cannot be written); None: nobody.
        self._health = health
        self._db = open_local_db(
            path,
            "CREATE TABLE IF NOT EXISTS responses ("
            " method TEXT NOT NULL, connection TEXT NOT NULL, message_id TEXT NOT NULL,"
            " response BLOB NOT NULL, stored_at REAL NOT NULL,"
            " PRIMARY KEY (method, connection, message_id))",
            "CREATE INDEX IF NOT EXISTS responses_by_age ON responses (stored_at)",
            "CREATE TABLE IF NOT EXISTS attempts ("
            " method TEXT NOT NULL, connection TEXT NOT NULL, message_id TEXT NOT NULL,"
            " began_at REAL NOT NULL, began_wall REAL NOT NULL,"
            " PRIMARY KEY (method, connection, message_id))",
            "CREATE INDEX IF NOT EXISTS attempts_by_age ON attempts (began_at)",
            "CREATE TABLE IF NOT EXISTS response_prospects ("
            " method TEXT NOT NULL, connection TEXT NOT NULL, message_id TEXT NOT NULL,"
            " prospect_id INTEGER NOT NULL,"
            " PRIMARY KEY (method, connection, message_id))",
            "CREATE INDEX IF NOT EXISTS response_prospects_by_id"
            " ON response_prospects (connection, prospect_id)",
            MARK_SCHEMA,
        )
        #: Records must outlive the process and ignore steps of the wall clock.
        self._clock = StateClock(self._db, clocks)
        self._purged_at = 0.0
        self._group_commit_s = group_commit_s
        #: Records waiting for :meth:`commit`.
        self._pending: list[_Pending] = []
        self._commit_timer: asyncio.TimerHandle | None = None
        #: When the last grouped commit ran (``time.monotonic()``).
        self._committed_at = -math.inf
        self._purge()

    async def get(self, key: IdempotencyKey) -> bytes | None:
        """The stored response, if stored within the window."""
        try:
            row = self._db.execute(
                "SELECT response FROM responses"
                " WHERE method=? AND connection=? AND message_id=? AND stored_at>?",
                (key.method, key.connection, key.message_id, self._clock.now() - self.window_s),
            ).fetchone()
        except sqlite3.Error as error:
            raise self._unwritable(error) from error
        return bytes(row[0]) if row else None

    def begin(self, key: IdempotencyKey) -> asyncio.Future[float | None]:
        """Marks the message in progress, committed (grouped as :meth:`save` is) when the
        future resolves: with the wall time its earlier attempt began, if one began
        within the window and got no answer, else None. A message already in progress
        keeps its first attempt's time (that attempt may have written): nothing new is
        written, and the future is resolved at once."""
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[float | None] = loop.create_future()
        now = self._clock.now()
        try:
            row = self._db.execute(
                "SELECT began_wall FROM attempts"
                " WHERE method=? AND connection=? AND message_id=? AND began_at>?",
                (key.method, key.connection, key.message_id, now - self.window_s),
            ).fetchone()
        except sqlite3.Error as error:
            raise self._unwritable(error) from error
        if row is not None:
            committed.set_result(float(row[0]))
            return committed
        self._queue(_Pending(key, None, now, self._clock.wall(), committed, None, _nothing))
        return committed

    def save(
        self,
        key: IdempotencyKey,
        response: bytes,
        *,
        then: Callable[[], None],
        prospect_id: int | None = None,
    ) -> asyncio.Future[None]:
        """Stores ``response`` under ``key``, in one transaction with the other records saved
        before it goes: on the next turn of the event loop if the last commit is
        :data:`GROUP_COMMIT_S` old, else that long after the last commit. The future
        resolves once the record is committed (or fails with the commit's error);
        ``then()`` runs after the commit, whether it succeeded or not, even when the
        future was cancelled.

        A commit costs 20-40 µs of CPU however few records it holds (WAL frames,
        locks): one per call was the largest part of the service's own cost per call.
        The caller answers only once its record is committed, so a crash loses no
        record of an answered call; the price, only when calls
        come closer than :data:`GROUP_COMMIT_S`, is up to that much latency.
        """
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        now = self._clock.now()
        self._queue(
            _Pending(key, response, now, self._clock.wall(), committed, None, then, prospect_id)
        )
        return committed

    async def forget_prospects(self, connection: str, prospect_ids: tuple[int, ...]) -> int:
        """Drops the responses of ``connection`` naming any of ``prospect_ids``, through
        the ``response_prospects`` index (records still waiting are committed first, so
        none slips past). One transaction."""
        if not prospect_ids:
            return 0
        self.commit()
        marks = ",".join("?" * len(prospect_ids))
        where = f"connection=? AND prospect_id IN ({marks})"
        try:
            self._db.execute("BEGIN")
            try:
                keys = self._db.execute(
                    f"SELECT method, connection, message_id FROM response_prospects WHERE {where}",
                    (connection, *prospect_ids),
                ).fetchall()
                dropped = 0
                for row in keys:
                    dropped += self._db.execute(
                        "DELETE FROM responses WHERE method=? AND connection=? AND message_id=?",
                        row,
                    ).rowcount
                self._db.execute(
                    f"DELETE FROM response_prospects WHERE {where}", (connection, *prospect_ids)
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise self._unwritable(error) from error
        return dropped

    def _queue(self, record: _Pending) -> None:
        if self._commit_timer is None:
            wait = self._committed_at + self._group_commit_s - time.monotonic()
            loop = asyncio.get_running_loop()
            self._commit_timer = loop.call_later(max(wait, 0.0), self.commit)
        self._pending.append(record)

    def commit(self) -> None:
        """Commits the records saved and waiting, now (:meth:`save` plans it)."""
        if self._commit_timer is not None:
            self._commit_timer.cancel()
        self._commit_timer = None
        self._committed_at = time.monotonic()
        pending, self._pending = self._pending, []
        if not pending:
            return
        error: StateUnwritable | None = None
        try:
            self._write(pending)
        except Exception as failed:
            error = self._unwritable(failed)
        for record in pending:
            if not record.committed.done():  # done: cancelled by a caller that went away
                if error is None:
                    record.committed.set_result(record.result)
                else:
                    record.committed.set_exception(error)
            record.then()

    def _unwritable(self, failed: Exception) -> StateUnwritable:
        if self._health is not None:
            error = self._health.failed("the idempotency records", failed)
        else:
            error = StateUnwritable(f"cannot write the idempotency records {self.path} ({failed})")
        error.__cause__ = failed
        return error

    def _write(self, pending: list[_Pending]) -> None:
        """One transaction for ``pending``: all stored, or none."""
        begun = [(*p.key, p.at, p.wall) for p in pending if p.response is None]
        answered = [(*p.key, p.response, p.at) for p in pending if p.response is not None]
        self._db.execute("BEGIN")
        try:
            self._db.executemany(_BEGIN_ATTEMPT, begun)
            self._db.executemany(_SAVE_RESPONSE, answered)
            self._db.executemany(_END_ATTEMPT, [row[:3] for row in answered])
            self._db.executemany(
                _INDEX_RESPONSE,
                [(*p.key, p.prospect_id) for p in pending if p.prospect_id is not None],
            )
            self._clock.mark()
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        if self._clock.now() - self._purged_at >= _PURGE_EVERY_S:
            self._purge()

    def answered(self) -> Iterator[tuple[IdempotencyKey, bytes, float]]:
        """``(key, response, age_s)`` of every response within the window, oldest first:
        for ``prospect-sync state migrate``, which copies them elsewhere."""
        now = self._clock.now()
        rows = self._db.execute(
            "SELECT method, connection, message_id, response, stored_at FROM responses"
            " WHERE stored_at>? ORDER BY stored_at",
            (now - self.window_s,),
        )
        for method, connection, message_id, response, stored_at in rows:
            yield IdempotencyKey(method, connection, message_id), bytes(response), now - stored_at

    def in_progress(self) -> Iterator[tuple[IdempotencyKey, float]]:
        """``(key, began_wall)`` of every message in progress within the window: for
        ``prospect-sync state migrate``."""
        rows = self._db.execute(
            "SELECT method, connection, message_id, began_wall FROM attempts"
            " WHERE began_at>? ORDER BY began_at",
            (self._clock.now() - self.window_s,),
        )
        for method, connection, message_id, began_wall in rows:
            yield IdempotencyKey(method, connection, message_id), float(began_wall)

    def _purge(self) -> None:
        now = self._clock.now()
        self._db.execute("DELETE FROM responses WHERE stored_at<=?", (now - self.window_s,))
        self._db.execute("DELETE FROM attempts WHERE began_at<=?", (now - self.window_s,))
        self._db.execute(
            "DELETE FROM response_prospects WHERE NOT EXISTS (SELECT 1 FROM responses r"
            " WHERE r.method=response_prospects.method"
            " AND r.connection=response_prospects.connection"
            " AND r.message_id=response_prospects.message_id)"
        )
        self._purged_at = now

    def close(self) -> None:
        self.commit()  # records of calls still waiting for their commit
        self._db.close()
