"""``message_id`` makes a call idempotent: a repeat within the window gets the first
result back, marked OUTCOME_DUPLICATE_MESSAGE, and Pardot is not called again.

Cross-cutting on purpose: ``server.interceptors.IdempotencyInterceptor`` wraps every
RPC whose request has a ``message_id`` and whose response has an ``outcome`` (Identify,
Track), so no servicer method carries this logic. The key is (method, connection,
message_id): the same message_id sent to two connections is two deliveries.

- Only successes are remembered. A failure is not a result: the caller (or its stub's
  retry) must be able to send the message again and have it applied.
- Concurrent duplicates wait for the first one (single flight, in this process). When
  the first one fails or is cancelled, one waiter runs the call itself, and so on.
- A dry run is outside idempotency: it is neither stored nor answered from the store.
  A stored plan would turn the real send of the same message_id into a "duplicate"
  that never writes — the event would be lost — and a dry run answered from the store
  would hide the plan the caller asked to see.
- A replay lists no ``pardot_calls``: it cost none.
- BatchSync is not one idempotent unit (its request has no message_id): each item is,
  exactly as the unary call of its kind, under that method's key — so a replayed
  BatchSync, or a unary replay of one of its items, is a duplicate. The interceptor
  makes this process's records reachable from the call (:func:`as_item`).

Records live in SQLite under ``server.state_dir`` (they survive a restart) and expire
after ``server.idempotency_window_s``. A call answers only once its record is committed
(a crash loses no record of an answered call); the records of calls that finish within
:data:`GROUP_COMMIT_S` of each other share one commit. Several replicas do not share
the records: each process remembers what it answered.

This module never stores a failure, a dry run, or anything but the response a caller
already received.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NamedTuple

import structlog
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from clients.local_db import open_local_db
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.convert import connection_name
from strategies.core.model import Outcome
from strategies.validation import check_message_id

#: The idempotency records' file inside ``server.state_dir``.
IDEMPOTENCY_FILE = "idempotency.sqlite3"

#: Expired records are deleted at most this often (on a write), not on every call.
_PURGE_EVERY_S = 300.0

#: Commits are at least this far apart (:meth:`ResponseStore.save`): a record saved
#: sooner after the last commit waits, with the others saved meanwhile, for the next.
#: So a quiet service commits each record at once and a busy one waits up to this
#: long. Server CPU per Identify, 50 calls in flight, Pardot stubbed out: 0.35 ms with
#: a commit per call, 0.28 with 1 ms, 0.25-0.26 with 2 ms, 0.25 with 5 ms.
GROUP_COMMIT_S = 0.002

SERVICE = pb.DESCRIPTOR.services_by_name["ProspectSync"]
#: What a replay rewrites in the stored response.
_REPLAYED_FIELDS = {"outcome", "pardot_calls", "strategy"}


class IdempotencyKey(NamedTuple):
    """A NamedTuple: hashed three times per call (the single flight's table), which a
    tuple does in C."""

    method: str
    connection: str
    message_id: str


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


class Idempotency:
    """Single flight over a :class:`ResponseStore`, for the RPCs of ``service``."""

    def __init__(self, store: ResponseStore, service: ServiceDescriptor = SERVICE) -> None:
        self.store = store
        self._in_flight: dict[IdempotencyKey, asyncio.Event] = {}
        #: Every method of the service starts with it (health and reflection do not).
        self.method_prefix = f"/{service.full_name}/"
        #: Method path → response class, for the methods a message_id makes idempotent.
        self.response_types: dict[str, type[Message]] = {
            f"/{service.full_name}/{method.name}": message_factory.GetMessageClass(
                method.output_type
            )
            for method in service.methods
            if "message_id" in method.input_type.fields_by_name
            and _REPLAYED_FIELDS.issubset(method.output_type.fields_by_name)
        }

    def key_for(self, method: str, request: Any) -> IdempotencyKey | None:
        """The call's key; None when the call is not idempotent by message: no
        message_id, or a dry run (see the module docstring)."""
        message_id = check_message_id(request.message_id)
        if not message_id or request.settings.dry_run:
            return None
        return IdempotencyKey(method, connection_name(request.settings), message_id)

    async def guard(
        self, method: str, request: Any, respond: Callable[[], Awaitable[Message]]
    ) -> Message:
        """``respond()`` as a call of ``method`` with ``request``: once per key when the
        method and the request make it idempotent, else simply run."""
        response_type = self.response_types.get(method)
        key = None if response_type is None else self.key_for(method, request)
        if response_type is None or key is None:
            return await respond()
        return await self.once(key, response_type, respond)

    async def once(
        self,
        key: IdempotencyKey,
        response_type: type[Message],
        respond: Callable[[], Awaitable[Message]],
    ) -> Message:
        """``respond()``'s response, run at most once per key while it succeeds; a
        repeat gets the stored response marked as a duplicate."""
        while True:
            stored = self.store.get(key)
            if stored is not None:
                return _replay(key, stored, response_type)
            running = self._in_flight.get(key)
            if running is None:
                break
            await running.wait()  # then look again: stored, or the first one failed
        done = self._in_flight[key] = asyncio.Event()
        try:
            response = await respond()
        except BaseException:
            self._finished(key, done)
            raise
        # The waiters look again once the record is committed, even if this caller goes
        # away meanwhile: sooner, they would find nothing stored and run the call again.
        await self.store.save(
            key, response.SerializeToString(), then=lambda: self._finished(key, done)
        )
        return response

    def _finished(self, key: IdempotencyKey, done: asyncio.Event) -> None:
        """The first call of ``key`` is over: its waiters look at the records again."""
        del self._in_flight[key]
        done.set()

    def close(self) -> None:
        self.store.close()


#: The records the running call's items go through; set around each call by
#: ``server.interceptors.IdempotencyInterceptor`` (see :func:`as_item`).
_FOR_ITEMS: ContextVar[Idempotency | None] = ContextVar("idempotency_for_items", default=None)


class serving_items:  # lower case: used like the function it replaced
    """Within this block (and the tasks started in it), :func:`as_item` uses
    ``idempotency``. A class rather than ``@contextmanager``: it runs on every call,
    and a generator-based one costs several times more."""

    def __init__(self, idempotency: Idempotency) -> None:
        self._idempotency = idempotency

    def __enter__(self) -> None:
        self._token = _FOR_ITEMS.set(self._idempotency)

    def __exit__(self, *_: object) -> None:
        _FOR_ITEMS.reset(self._token)


async def as_item(method: str, request: Any, respond: Callable[[], Awaitable[Message]]) -> Message:
    """``respond()`` for one item of a batch, idempotent exactly as a unary call of
    ``method`` with ``request`` would be. Without records (no interceptor installed)
    the item simply runs, as the unary call would."""
    idempotency = _FOR_ITEMS.get()
    if idempotency is None:
        return await respond()
    return await idempotency.guard(method, request, respond)


def _replay(key: IdempotencyKey, stored: bytes, response_type: type[Message]) -> Message:
    response: Any = response_type.FromString(stored)
    response.outcome = pb.OUTCOME_DUPLICATE_MESSAGE
    del response.pardot_calls[:]
    structlog.contextvars.bind_contextvars(
        message_id=key.message_id,
        connection=key.connection,
        strategy=response.strategy,
        outcome=Outcome.DUPLICATE_MESSAGE.name,
        pardot_calls=0,
    )
    return response
