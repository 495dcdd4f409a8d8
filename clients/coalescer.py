"""Concurrent prospect writes of one Pardot account, coalesced into batch calls.

Pardot lets an account have 5 requests in flight and takes up to 50 prospects in one
batch call (PARDOT_API.md, "Limits", "Batch"): one call per event tops out at 25
events/s at a 200 ms round trip, full batches at 1,250. So, per account (shared like
the limiter and the daily budget by every connection to it):

- **Idle, no batching.** A write that finds a slot free and nobody waiting (and, when
  crowded, no other call on its way) is never queued: the gateway sends it at once
  through the single-call endpoint, whose answer carries the prospect
  (``joins_queue()`` is False). Writes already on their way
  alone count as taking a slot, so a burst that arrives before any holds one (all
  awaiting the first token) does not all go alone.
- **Crowded: the CPU is what is scarce.** When Pardot answers fast and writes come
  faster than one per ``CROWDED_GAP_S`` (≥ 200 a second, sustained: a running mean of
  the gaps between writes), slots stay free but the service's one event loop is the
  bottleneck, and a call alone costs it about as much CPU as a batch call of 50. Then
  a write that finds another call of the account on its way joins a batch (one that
  finds none still goes at once, so a lone caller, however fast, never waits); a
  batch's sender that finds a slot free lingers up to ``LINGER_S`` for company
  first, less if the batch fills. Against a real Pardot (tens to hundreds of ms a
  call) that rate keeps every slot busy long before, so this only changes anything
  when Pardot is fast.
- **Busy, batches fill.** Otherwise the write joins the newest pending batch of its
  kind (connection, API version, batch operation) and lane if that has room and no
  entry with the same key (``BatchEntry.key``), else opens a new one; opening a batch
  starts one sender. There are two lanes: writes of calls already under way (the
  caller's ``calls`` hold a request: a LookupFieldV4 create after its read) and first
  writes (an EmailV3 upsert). A sender waits for a slot of the account's limiter like
  any request of its lane — a follow-up's ahead of every first request
  (``clients.state.slots``, issue 12), else in arrival order; holding one, it takes
  the fullest pending batch of its connection, of calls under way if there is one
  (the oldest of each kind first, so one kind's writes leave in arrival order) and
  sends it — or, if that batch holds a single write, sends that write alone through
  the single-call endpoint.
- **One batch of calls under way on its way at a time** (per connection). Their
  sender gets the next slot that frees, so without this every write of a call under
  way would leave nearly alone, each taking a slot from the reads of other calls (a
  cold burst of LookupFieldV4: half the slots for creates of one or two). So while
  one such batch call is on its way, the next batch of calls under way fills and its
  sender waits for that call's answer — unless the batch is full, or its earliest
  deadline leaves no time to wait (about two requests' time at the account's pace,
  ``clients.pace``): then it goes at once. Writes of calls under way then take about
  one slot of the account's, and ride in batches of all that came meanwhile.
- **Each caller its own result.** Pardot names failed entries by index and applies the
  others (``clients.wire.batching``): a caller gets its entry's error or success, never a
  neighbour's. Its answer is then ``stat="fail"`` without an err_code — a partial
  success, settled entry by entry and never resent as a whole. A failure of the whole
  call (5xx, err 66, a refused token, a dropped connection) is retried as a whole by
  ``clients.retry``'s rules — but a batch of creates is not resent once Pardot may
  have processed it: each create gets
  PARDOT_WRITE_UNCONFIRMED and the gateway holds its email (its create holds).
  A batch Pardot refuses unread (err 70/71) is our bug: it is logged at error level
  and every write in it is sent alone; so is an idempotent entry that failed with a
  retryable err (85, …), which the single call then retries.
- **Deadlines.** A batch call is bounded by the latest deadline of its writes; each
  caller stops waiting at its own. A write still queued then leaves the queue unsent
  (DEADLINE_EXCEEDED); one already claimed for sending may be applied still: a create
  is PARDOT_WRITE_UNCONFIRMED (held), any other write DEADLINE_EXCEEDED.
- **Backpressure.** At most ``max_queued_writes`` writes wait per account; beyond,
  RESOURCE_EXHAUSTED (PARDOT_QUEUE_FULL) with a RetryInfo of about the time the
  queue takes to drain. A write over ``MAX_QUEUED_WRITE_BYTES`` is never queued: it
  waits for a slot and goes alone, so the queue holds at most the product of the two.

It never sends in a dry run (the gateway plans those), never invents an id (a batch
answer holds none: the gateway says what is known), never lets one caller's deadline
or cancellation stop the call others wait for, and never holds a slot it does not use.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from clients import metrics
from clients.retry import DEADLINE_MARGIN_S, deadline_scope
from clients.state.protocols import ConcurrencySlots
from clients.transport import PardotTransport
from clients.wire import batching
from clients.wire.batching import BatchEntry, BatchKind
from clients.wire.request import PardotRequest
from strategies.core import pardot_facts as facts
from strategies.core.errors import (
    DeadlineExceeded,
    PardotError,
    PardotUnavailable,
    PardotWriteUnconfirmed,
    ProspectSyncError,
    Reason,
)
from strategies.core.model import CallRecord

log = structlog.get_logger("clients")

#: A write whose batch entry is larger than this (characters of field names and
#: values) is sent alone, never queued: it bounds what one queued write holds, and
#: keeps a batch call's body near 50 times this at most.
MAX_QUEUED_WRITE_BYTES = 8 * 1024

#: Writes closer than this on average (≥ 200 a second) are "crowded" (module
#: docstring). It only has to keep batching-for-CPU away from a real Pardot's
#: latencies, where 200 writes a second fill every slot anyway; a lone caller never
#: waits, however fast (its call has returned before its next write).
CROWDED_GAP_S = 0.005
#: How long, while crowded, a batch with a slot free waits for company before it goes:
#: small against a CPU-bound service's queueing, and within the 5 ms issue 6 allows.
LINGER_S = 0.005
#: Weight of the newest gap in the running mean of gaps between writes.
_GAP_WEIGHT = 0.1
#: The running mean's start: as if the last write were long ago.
_IDLE_GAP_S = 1.0

#: What a call is taken to last before one was measured (for the queue's RetryInfo).
_FIRST_CALL_S = 0.5
#: Weight of the newest call in the running mean of call durations.
_CALL_S_WEIGHT = 0.2
#: RetryInfo bounds when the queue is full.
_MIN_RETRY_S = 0.1
_MAX_RETRY_S = 30.0


class PardotQueueFull(ProspectSyncError):
    """Too many writes already wait for this Pardot account: come back later rather
    than hold memory without bound."""

    default_reason = Reason.PARDOT_QUEUE_FULL


class Route(enum.Enum):
    """How a queued write went."""

    #: Sent alone through the single-call endpoint: ``answer`` is Pardot's answer.
    ALONE = "alone"
    #: Rode in a batch call that reported no error for it; the answer holds no prospect.
    BATCH = "batch"
    #: The batch could not settle it (refused unread, or a retryable err for an
    #: idempotent entry): the caller sends it alone.
    SEND_ALONE = "send_alone"


@dataclass(frozen=True)
class Queued:
    """How a queued write went, with Pardot's answer when it was sent alone."""

    route: Route
    answer: dict[str, Any] | None = None


class _Write:
    __slots__ = ("batch", "calls", "deadline", "entry", "future", "idempotent")

    def __init__(
        self,
        entry: BatchEntry,
        idempotent: bool,
        deadline: float | None,
        calls: list[CallRecord],
        batch: _Batch,
    ) -> None:
        self.entry = entry
        self.idempotent = idempotent
        self.deadline = deadline
        self.calls = calls
        self.future: asyncio.Future[Queued] = asyncio.get_running_loop().create_future()
        self.batch = batch


#: Where pending batches wait: their kind, and whether they hold writes of calls under
#: way (the lane a sender waits for a slot in).
_Lane = tuple[BatchKind, bool]


class _Batch:
    __slots__ = ("claimed", "kind", "lane", "transport", "writes")

    def __init__(self, transport: PardotTransport, lane: _Lane) -> None:
        self.transport = transport
        self.kind = lane[0]
        self.lane = lane
        #: By entry key, in arrival order.
        self.writes: dict[str, _Write] = {}
        self.claimed = False

    def __len__(self) -> int:
        return len(self.writes)

    def has_room_for(self, entry: BatchEntry) -> bool:
        return len(self.writes) < facts.MAX_BATCH_PROSPECTS and entry.key not in self.writes

    @property
    def alone(self) -> bool:
        return len(self.writes) == 1

    def call(self) -> tuple[PardotRequest, float | None]:
        """What to send: the batch call, or its one write alone; and the latest deadline
        of its writes, which bounds the call from now on."""
        writes = list(self.writes.values())
        deadlines = [w.deadline for w in writes]
        deadline = None if None in deadlines else max(d for d in deadlines if d is not None)
        if len(writes) == 1:
            alone = writes[0]
            request = batching.single_request(self.kind, alone.entry, idempotent=alone.idempotent)
        else:
            request = batching.batch_request(
                self.kind, [w.entry for w in writes], idempotent=all(w.idempotent for w in writes)
            )
        return request, deadline


class WriteCoalescer:
    """One Pardot account's queue of prospect writes (see the module docstring), held by
    its ``clients.account.PardotAccount``. ``limiter`` is the account's slots;
    ``crowded_gap_s`` and ``linger_s`` are ``CROWDED_GAP_S`` and ``LINGER_S`` but in
    tests. Each write names the connection's transport that sends it."""

    def __init__(
        self,
        limiter: ConcurrencySlots,
        *,
        max_concurrency: int,
        max_queued: int,
        account: str = "",
        crowded_gap_s: float = CROWDED_GAP_S,
        linger_s: float = LINGER_S,
    ) -> None:
        #: How metrics name the account (``clients.account.account_label``).
        self.account = account
        self._limiter = limiter
        self._crowded_gap_s = crowded_gap_s
        self._linger_s = linger_s
        self._slots = max(1, max_concurrency)
        self.max_queued = max_queued
        self._queued = 0
        #: Writes sent alone, from the decision to their answer: a burst of writes
        #: that all find the limiter free (none has taken a slot yet: they await the
        #: first token) must not all go alone.
        self._alone = 0
        #: Batch calls claimed and not yet answered.
        self._batches_on_their_way = 0
        #: Of those, batches of calls under way, per connection; and the senders of
        #: such batches that wait for that call's answer (``_await_turn``).
        self._follow_ups_on_their_way: dict[PardotTransport, int] = {}
        self._awaiting_turn: list[asyncio.Future[None]] = []
        #: Senders lingering for company while crowded (``_linger``), woken early when
        #: a batch stops taking writes.
        self._lingering: list[asyncio.Future[None]] = []
        #: Connection → lane → its pending batches, oldest first.
        self._pending: dict[PardotTransport, dict[_Lane, deque[_Batch]]] = {}
        self._senders: set[asyncio.Task[None]] = set()
        self._call_s = _FIRST_CALL_S
        #: Running mean of the gaps between writes, and when the last one came.
        self._gap_s = _IDLE_GAP_S
        self._last_write_at: float | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        """Writes waiting for a batch call to take them."""
        return self._queued

    def joins_queue(self, entry: BatchEntry) -> bool:
        """Whether a write about to be sent waits for a batch: writes are queued, no
        slot is free for it (all taken, someone already waits for one, or as many
        writes as there are slots are on their way alone) or writes are crowded — and
        it is small enough to be held. Every batchable write asks once: its arrival
        feeds the rate that tells "crowded"."""
        self._note_arrival()
        busy = (
            self._queued > 0
            or self._alone >= self._slots
            or self._limiter.locked()
            or (self.crowded and self.calls_on_their_way > 0)
        )
        return busy and entry.size() <= MAX_QUEUED_WRITE_BYTES

    @property
    def crowded(self) -> bool:
        """Writes come faster than one per ``CROWDED_GAP_S``, sustained."""
        return self._gap_s <= self._crowded_gap_s

    @property
    def lingering(self) -> int:
        """Batch senders waiting for company (crowded, a slot free)."""
        return len(self._lingering)

    @property
    def calls_on_their_way(self) -> int:
        """Prospect writes of this account sent (alone or in a batch), not yet answered."""
        return self._alone + self._batches_on_their_way

    def _note_arrival(self) -> None:
        now = time.monotonic()
        if self._last_write_at is not None:
            gap = now - self._last_write_at
            self._gap_s += _GAP_WEIGHT * (gap - self._gap_s)
        self._last_write_at = now

    @contextlib.contextmanager
    def sending_alone(self) -> Iterator[None]:
        """Around a prospect write sent alone (not queued), until its answer."""
        self._alone += 1
        try:
            yield
        finally:
            self._alone -= 1

    async def write(
        self,
        transport: PardotTransport,
        kind: BatchKind,
        entry: BatchEntry,
        *,
        idempotent: bool,
        deadline: float | None,
        calls: list[CallRecord],
    ) -> Queued:
        """Queue one write and wait, until ``deadline`` at most, for how it went. The
        calls it rode in are appended to ``calls``. Raises the entry's PardotError, the
        whole call's failure, PardotQueueFull, DeadlineExceeded or
        PardotWriteUnconfirmed (a create that may have been applied)."""
        follow_up = bool(calls)  # its call has made a request: it is under way
        if follow_up:
            transport.pace.followed_up()
        write = self._enqueue(transport, (kind, follow_up), entry, idempotent, deadline, calls)
        try:
            async with deadline_scope(deadline):
                return await write.future
        except TimeoutError:
            if write.future.done() and not write.future.cancelled():
                return write.future.result()  # it came as the deadline fell: it counts
            raise self._left_at_deadline(write) from None
        except asyncio.CancelledError:
            self._withdraw(write)
            raise

    async def aclose(self) -> None:
        """Stop every sender; writes still waiting fail as Pardot unavailable."""
        self._closed = True
        senders = list(self._senders)
        for sender in senders:
            sender.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        for kinds in list(self._pending.values()):
            for batches in list(kinds.values()):
                for batch in list(batches):
                    self._take(batch)
                    self._fail(batch, _closing(batch.transport), [])

    # --- queueing ------------------------------------------------------------------

    def _enqueue(
        self,
        transport: PardotTransport,
        lane: _Lane,
        entry: BatchEntry,
        idempotent: bool,
        deadline: float | None,
        calls: list[CallRecord],
    ) -> _Write:
        if self._closed:
            raise _closing(transport)
        if self._queued >= self.max_queued:
            raise self._full(transport)
        batches = self._pending.setdefault(transport, {}).setdefault(lane, deque())
        batch = batches[-1] if batches else None
        if batch is None or not batch.has_room_for(entry):
            batch = _Batch(transport, lane)
            batches.append(batch)
            self._start_sender(transport, follow_up=lane[1])
        write = _Write(entry, idempotent, deadline, calls, batch)
        batch.writes[entry.key] = write
        self._count_queued(1)
        if len(batch) >= facts.MAX_BATCH_PROSPECTS or len(batches) > 1:
            self._stop_lingering()
            self._wake_turns()
        return write

    def _withdraw(self, write: _Write) -> bool:
        """Take a write out of its batch if it is still queued; False once claimed."""
        batch = write.batch
        if batch.claimed or batch.writes.get(write.entry.key) is not write:
            return False
        del batch.writes[write.entry.key]
        self._count_queued(-1)
        if not batch.writes:
            lanes = self._pending[batch.transport]
            lanes[batch.lane].remove(batch)
            self._prune(batch.transport, batch.lane)
        return True

    def _left_at_deadline(self, write: _Write) -> ProspectSyncError:
        transport = write.batch.transport
        if self._withdraw(write):
            return DeadlineExceeded(
                "the deadline passed while the write waited for a batch call to Pardot "
                f"(connection {transport.name!r}); nothing was sent"
            )
        message = (
            f"the deadline passed during a batch call to Pardot (connection {transport.name!r})"
        )
        if not write.idempotent:
            return transport.retry.unconfirmed(
                f"{message}; the write may still be applied",
                settled=False,
                code=Reason.DEADLINE_EXCEEDED.code,
            )
        return DeadlineExceeded(message)

    def _full(self, transport: PardotTransport) -> PardotQueueFull:
        metrics.queue_refused(self.account)
        rounds = math.ceil(self._queued / facts.MAX_BATCH_PROSPECTS / self._slots)
        retry_after = min(max(rounds * self._call_s, _MIN_RETRY_S), _MAX_RETRY_S)
        return PardotQueueFull(
            f"{self._queued} writes to this Pardot account already wait for a batch call "
            f"({transport.config.key('max_queued_writes')} = {self.max_queued}); retry in "
            f"about {retry_after:.1f} s",
            retry_after=retry_after,
        )

    # --- sending -------------------------------------------------------------------

    def _start_sender(self, transport: PardotTransport, *, follow_up: bool) -> None:
        # A fresh context: the sender serves many callers, so it must not log under
        # the request context (message_id, …) of the one that happened to start it.
        sender = asyncio.create_task(
            self._send(transport, follow_up=follow_up), context=contextvars.Context()
        )
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)

    async def _send(self, transport: PardotTransport, *, follow_up: bool) -> None:
        claimed: _Batch | None = None

        def claim() -> tuple[PardotRequest, float | None] | None:
            nonlocal claimed
            claimed = self._take_fullest(transport)
            if claimed is None:
                return None
            self._batches_on_their_way += 1
            if claimed.lane[1]:
                on_way = self._follow_ups_on_their_way
                on_way[transport] = on_way.get(transport, 0) + 1
            return claimed.call()

        calls: list[CallRecord] = []
        try:
            if follow_up:
                await self._await_turn(transport)
            if self.crowded and not self._limiter.locked():
                await self._linger(transport)  # a slot is free: wait for company first
            try:
                answer = await transport.send_claimed(claim, calls=calls, follow_up=follow_up)
            finally:
                if claimed is not None:
                    self._batches_on_their_way -= 1
                    if claimed.lane[1]:
                        self._follow_ups_on_their_way[transport] -= 1
                        self._wake_turns()
        except asyncio.CancelledError:
            if claimed is not None:  # it may be on its way: creates are in doubt
                for write in claimed.writes.values():
                    closing: ProspectSyncError = _closing(transport)
                    if not write.idempotent:
                        closing = _unconfirmed(closing, transport, settled=False)
                    _reject(write, closing, calls)
            elif (batch := self._take_fullest(transport)) is not None:
                self._fail(batch, _closing(transport), calls)
            raise
        except ProspectSyncError as error:
            # Before a slot (no budget left, no token): the error is a batch's anyway.
            batch = claimed if claimed is not None else self._take_fullest(transport)
            if batch is not None:
                self._fail(batch, error, calls)
            return
        except Exception as error:  # a bug: logged, and every caller in it hears of it
            log.exception("pardot.batch_failed", connection=transport.name)
            batch = claimed if claimed is not None else self._take_fullest(transport)
            if batch is not None:
                failure = ProspectSyncError(f"sending a batch failed: {type(error).__name__}")
                self._fail(batch, failure, calls)
            return
        if claimed is not None and answer is not None:
            self._observe(calls)
            self._settle(claimed, answer, calls)

    async def _linger(self, transport: PardotTransport) -> None:
        """While crowded, wait ``linger_s`` for company, or less if a batch of
        ``transport``'s stops taking writes meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._linger_s):
                while not self._has_closed_batch(transport):  # woken for another's, maybe
                    waiter = asyncio.get_running_loop().create_future()
                    self._lingering.append(waiter)
                    try:
                        await waiter
                    finally:
                        with contextlib.suppress(ValueError):
                            self._lingering.remove(waiter)

    async def _await_turn(self, transport: PardotTransport) -> None:
        """Until no batch call of ``transport``'s calls under way is on its way, or a
        batch of theirs is full, or the earliest deadline among them cannot wait
        (module docstring: one such batch on its way at a time)."""
        while self._follow_ups_on_their_way.get(transport, 0) > 0:
            if self._has_closed_batch(transport, under_way=True):
                return
            slack = self._slack(transport)
            if slack is not None and slack <= 0:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._awaiting_turn.append(waiter)
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(slack):
                        await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._awaiting_turn.remove(waiter)

    def _slack(self, transport: PardotTransport) -> float | None:
        """How long the pending writes of ``transport``'s calls under way can still wait
        for a batch call's answer and then go in one of their own (two requests' time
        at the account's pace); None: no deadline or no pace known bounds it."""
        latency = transport.pace.latency_s
        deadlines = [
            write.deadline
            for (_, under_way), batches in self._pending.get(transport, {}).items()
            if under_way
            for batch in batches
            for write in batch.writes.values()
            if write.deadline is not None
        ]
        if latency is None or not deadlines:
            return None
        return min(deadlines) - time.monotonic() - DEADLINE_MARGIN_S - 2 * latency

    def _wake_turns(self) -> None:
        waiters, self._awaiting_turn = self._awaiting_turn, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _stop_lingering(self) -> None:
        waiters, self._lingering = self._lingering, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _has_closed_batch(self, transport: PardotTransport, *, under_way: bool = False) -> bool:
        """A batch of ``transport``'s (of calls under way only: ``under_way``) takes no
        more writes: full, or another opened after it (full, or holding a write with a
        key it already had)."""
        lanes = self._pending.get(transport, {})
        return any(
            len(batches) > 1 or len(batches[0]) >= facts.MAX_BATCH_PROSPECTS
            for lane, batches in lanes.items()
            if lane[1] or not under_way
        )

    def _take_fullest(self, transport: PardotTransport) -> _Batch | None:
        lanes = self._pending.get(transport)
        if not lanes:
            return None
        under_way = [lane for lane in lanes if lane[1]]
        lane = max(under_way or lanes, key=lambda k: len(lanes[k][0]))
        batch = lanes[lane][0]
        self._take(batch)
        return batch

    def _take(self, batch: _Batch) -> None:
        self._pending[batch.transport][batch.lane].remove(batch)
        self._prune(batch.transport, batch.lane)
        batch.claimed = True
        self._count_queued(-len(batch))

    def _count_queued(self, change: int) -> None:
        self._queued += change
        metrics.account_queue(self.account, queued=self._queued, limit=self.max_queued)

    def _prune(self, transport: PardotTransport, lane: _Lane) -> None:
        lanes = self._pending[transport]
        if not lanes[lane]:
            del lanes[lane]
        if not lanes:
            del self._pending[transport]

    def _observe(self, calls: list[CallRecord]) -> None:
        spent = sum(c.duration_s for c in calls)
        self._call_s += _CALL_S_WEIGHT * (spent - self._call_s)

    # --- results -------------------------------------------------------------------

    def _settle(self, batch: _Batch, answer: dict[str, Any], calls: list[CallRecord]) -> None:
        writes = list(batch.writes.values())
        if batch.alone:
            _resolve(writes[0], Queued(Route.ALONE, answer), calls)
            return
        # v3 may name a failed entry by the key it was sent under (UNCONFIRMED).
        keys = [w.entry.id_value for w in writes] if batch.kind.api_version == 3 else ()
        try:
            failed = batching.entry_errors(answer, len(writes), keys=keys)
        except batching.UnreadableBatchAnswer as problem:
            log.error(
                "pardot.batch_unreadable",
                connection=batch.transport.name,
                operation=batch.kind.operation,
                batch_size=len(writes),
                problem=str(problem),
            )
            unreadable = ProspectSyncError(
                f"Pardot's answer to a batch call cannot be read ({problem})",
                reason=Reason.PARDOT_UNEXPECTED_RESPONSE,
            )
            for write in writes:
                if write.idempotent:
                    _resolve(write, Queued(Route.SEND_ALONE), calls)
                else:
                    _reject(write, _unconfirmed(unreadable, batch.transport, settled=True), calls)
            return
        for index, write in enumerate(writes):
            error = failed.get(index)
            if error is None:
                _resolve(write, Queued(Route.BATCH), calls)
            elif not error.retryable:
                _reject(write, error.explain(batch.transport.config), calls)
            elif write.idempotent:
                _resolve(write, Queued(Route.SEND_ALONE), calls)
            else:
                # Pardot answered for this entry, so its work on it is over.
                _reject(write, _unconfirmed(error, batch.transport, settled=True), calls)

    def _fail(self, batch: _Batch, error: ProspectSyncError, calls: list[CallRecord]) -> None:
        writes = list(batch.writes.values())
        if (
            isinstance(error, PardotError)
            and error.err_code in facts.BATCH_REJECTED
            and not batch.alone
        ):
            log.error(
                "pardot.batch_rejected",
                connection=batch.transport.name,
                operation=batch.kind.operation,
                batch_size=len(writes),
                err_code=error.err_code,
                text=error.text,
            )
            for write in writes:
                _resolve(write, Queued(Route.SEND_ALONE), calls)
            return
        for write in writes:
            _reject(write, _own_copy(error), calls)


def _resolve(write: _Write, outcome: Queued, calls: Iterable[CallRecord]) -> None:
    if not write.future.done():  # done: its caller left (deadline, cancellation)
        write.calls.extend(calls)
        write.future.set_result(outcome)


def _reject(write: _Write, error: ProspectSyncError, calls: Iterable[CallRecord]) -> None:
    if not write.future.done():
        write.calls.extend(calls)
        write.future.set_exception(error)


def _own_copy(error: ProspectSyncError) -> ProspectSyncError:
    """The same error as its own object for each caller: one exception raised in many
    tasks would gather all their tracebacks."""
    clone = type(error).__new__(type(error), *error.args)
    clone.__dict__.update(error.__dict__)
    clone.metadata = dict(error.metadata)
    return clone


def _unconfirmed(
    error: ProspectSyncError, transport: PardotTransport, *, settled: bool
) -> PardotWriteUnconfirmed:
    """A create of the batch left in doubt, worded and timed by the connection's retry
    policy (``clients.retry``), as for a create sent alone."""
    return transport.retry.unconfirmed(
        f"{error.message}; the create in a batch call may have been applied, so it was "
        "not resent (a retried call reads before it writes)",
        settled=settled,
        metadata=error.metadata,
    )


def _closing(transport: PardotTransport) -> PardotUnavailable:
    return PardotUnavailable(
        f"the connection {transport.name!r} closed before the write was sent to Pardot"
    )
