"""An account's concurrency slots, in this process: ``clients.state.protocols.ConcurrencySlots``
for the embedded backend (one process).

Two queues, one limit. A request of a call already under way (``slots.follow_up``) is
let in before any first request (``async with slots``) that waits: a call that has
spent a Pardot call finishes before new calls start, so a burst of two-request calls
(read, then write) does not stall with every write queued behind every pending read
(issue 12). Within a queue, arrival order. A freed slot is handed straight to the next
waiter (nobody arriving meanwhile can take it), and a waiter cancelled while it waits
(its deadline) leaves without taking a slot — or, cancelled just as one was handed to
it, passes that slot on.

The idle path costs about what ``asyncio.Semaphore``'s did: with a slot free, entering is
one comparison and one decrement (and the gauge the metrics read), leaving one check of
two empty queues. A cancelled
waiter is not searched for in its queue: it is skipped when its turn comes (so a mass
of deadlines passing is not quadratic), and the live counts say who really waits.

Several processes on one Pardot account need the Redis backend's shared slots
instead: these count this process's requests only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

from clients import metrics


class PrioritySlots:
    """At most ``limit`` requests in flight; follow-ups first, then first requests."""

    __slots__ = ("_firsts", "_follow_ups", "_free", "_live", "account", "follow_up", "limit")

    def __init__(self, limit: int, account: str = "") -> None:
        if limit < 1:
            raise ValueError(f"slots need a limit of at least 1, not {limit}")
        self.limit = limit
        #: How metrics name the account (``clients.account.account_label``).
        self.account = account
        self._free = limit
        self._follow_ups: deque[asyncio.Future[None]] = deque()
        self._firsts: deque[asyncio.Future[None]] = deque()
        #: Waiters neither granted nor cancelled: [follow-ups, first requests].
        self._live = [0, 0]
        #: ``async with slots.follow_up:`` — the entrance for a call already under way.
        self.follow_up = _FollowUpEntrance(self)

    def locked(self) -> bool:
        """No slot is free now: a newcomer of either kind would wait."""
        return self._free == 0

    def waiting(self, *, follow_up: bool = False) -> int:
        """How many waiters a newcomer would queue behind now: the follow-ups for a
        follow-up, everyone for a first request."""
        follow_ups, firsts = self._live
        return follow_ups if follow_up else follow_ups + firsts

    async def __aenter__(self) -> None:
        await self._enter(self._firsts, 1)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    async def _enter(self, queue: deque[asyncio.Future[None]], kind: int) -> None:
        """A free slot at once, else a turn in ``queue`` (``kind``: 0 follow-ups, 1 firsts)."""
        if self._free:
            self._free -= 1
            self._report()
            return
        await self._wait(queue, kind)

    async def _wait(self, queue: deque[asyncio.Future[None]], kind: int) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        self._live[kind] += 1
        self._report()
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot as it was cancelled: the next one's
            else:
                self._live[kind] -= 1  # left in the queue, skipped when its turn comes
                self._report()
            raise

    def _release(self) -> None:
        """Hand the slot to the next live waiter, follow-ups first; else free it."""
        for kind, queue in enumerate((self._follow_ups, self._firsts)):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    self._live[kind] -= 1
                    waiter.set_result(None)
                    self._report()
                    return
        self._free += 1
        self._report()

    def _report(self) -> None:
        """The account's slots in use and callers waiting, for the metrics (one gauge
        set each: values, not callbacks, so a multiprocess registry can sum them)."""
        metrics.account_slots(
            self.account, in_use=self.limit - self._free, waiting=sum(self._live), limit=self.limit
        )


class _FollowUpEntrance:
    """``slots.follow_up``: the same slots, entered ahead of every first request."""

    __slots__ = ("_slots",)

    def __init__(self, slots: PrioritySlots) -> None:
        self._slots = slots

    async def __aenter__(self) -> None:
        await self._slots._enter(self._slots._follow_ups, 0)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._slots._release()


def process_slots(limit: int, account: str = "") -> PrioritySlots:
    """At most ``limit`` requests in flight in this process, for ``account``."""
    return PrioritySlots(limit, account)
