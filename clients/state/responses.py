"""The message_id records in SQLite: ``clients.state.protocols.ResponseRecords`` for
the embedded backend, used by ``server.idempotency``.

Records live under ``server.state_dir`` (they survive a restart) and expire after the
window the store is opened with (``server.idempotency_window_s``). A record is
committed before its caller answers (a crash loses no record of an answered call); the
records saved within :data:`GROUP_COMMIT_S` of the last commit share the next one.
Several processes on one file see each other's committed records; replicas on other
hosts do not share them.

It stores bytes under keys and never decides what is stored: ``server.idempotency``
saves only successes a caller already received.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from clients.state.local_db import open_local_db
from clients.state.protocols import IdempotencyKey

#: Expired records are deleted at most this often (on a write), not on every call.
_PURGE_EVERY_S = 300.0

#: Commits are at least this far apart (:meth:`ResponseStore.save`): a record saved
#: sooner after the last commit waits, with the others saved meanwhile, for the next.
#: So a quiet service commits each record at once and a busy one waits up to this
#: long. Server CPU per Identify, 50 calls in flight, Pardot stubbed out: 0.35 ms with
#: a commit per call, 0.28 with 1 ms, 0.25-0.26 with 2 ms, 0.25 with 5 ms.
GROUP_COMMIT_S = 0.002

#: One record: method, connection, message_id, response, stored_at.
_Row = tuple[str, str, str, bytes, float]


class _Pending(NamedTuple):
    """A record saved and not yet committed (:meth:`ResponseStore.save`)."""

    row: _Row
    committed: asyncio.Future[None]
    then: Callable[[], None]


class ResponseStore:
    """The first successful response per key, serialized, in SQLite. Calls run on the
    event loop thread: each is an indexed statement or a short transaction on a local
    file."""

    def __init__(
        self,
        path: Path,
        *,
        window_s: float,
        clock: Callable[[], float] = time.time,
        group_commit_s: float = GROUP_COMMIT_S,
    ) -> None:
        self.window_s = window_s
        self._clock = clock  # wall time: records must outlive the process
        self._db = open_local_db(
            path,
            "CREATE TABLE IF NOT EXISTS responses ("
            " method TEXT NOT NULL, connection TEXT NOT NULL, message_id TEXT NOT NULL,"
            " response BLOB NOT NULL, stored_at REAL NOT NULL,"
            " PRIMARY KEY (method, connection, message_id))",
            "CREATE INDEX IF NOT EXISTS responses_by_age ON responses (stored_at)",
        )
        self._purged_at = 0.0
        self._group_commit_s = group_commit_s
        #: Records waiting for :meth:`commit`.
        self._pending: list[_Pending] = []
        self._commit_timer: asyncio.TimerHandle | None = None
        #: When the last grouped commit ran (``time.monotonic()``).
        self._committed_at = -math.inf
        self._purge()

    def get(self, key: IdempotencyKey) -> bytes | None:
        """The stored response, if stored within the window."""
        row = self._db.execute(
            "SELECT response FROM responses"
            " WHERE method=? AND connection=? AND message_id=? AND stored_at>?",
            (key.method, key.connection, key.message_id, self._clock() - self.window_s),
        ).fetchone()
        return bytes(row[0]) if row else None

    def save(
        self, key: IdempotencyKey, response: bytes, *, then: Callable[[], None]
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
        loop = asyncio.get_running_loop()
        if self._commit_timer is None:
            wait = self._committed_at + self._group_commit_s - time.monotonic()
            self._commit_timer = loop.call_later(max(wait, 0.0), self.commit)
        committed: asyncio.Future[None] = loop.create_future()
        self._pending.append(_Pending(self._row(key, response), committed, then))
        return committed

    def commit(self) -> None:
        """Commits the records saved and waiting, now (:meth:`save` plans it)."""
        if self._commit_timer is not None:
            self._commit_timer.cancel()
        self._commit_timer = None
        self._committed_at = time.monotonic()
        pending, self._pending = self._pending, []
        if not pending:
            return
        error: Exception | None = None
        try:
            self._write([record.row for record in pending])
        except Exception as failed:
            error = failed
        for record in pending:
            if not record.committed.done():  # done: cancelled by a caller that went away
                if error is None:
                    record.committed.set_result(None)
                else:
                    record.committed.set_exception(error)
            record.then()

    def _row(self, key: IdempotencyKey, response: bytes) -> _Row:
        return (*key, response, self._clock())

    def _write(self, rows: list[_Row]) -> None:
        """One transaction for ``rows``: all stored, or none."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO responses"
                " (method, connection, message_id, response, stored_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        now = rows[-1][-1]
        if now - self._purged_at >= _PURGE_EVERY_S:
            self._purge()

    def _purge(self) -> None:
        now = self._clock()
        self._db.execute("DELETE FROM responses WHERE stored_at<=?", (now - self.window_s,))
        self._purged_at = now

    def close(self) -> None:
        self.commit()  # records of calls still waiting for their commit
        self._db.close()
