"""One Pardot account's daily budget in Redis: ``clients.state.protocols.BudgetMark``
shared by every replica and worker process, so that the calls counted are the account's,
not one process's, and an err 122 seen by one replica makes every replica fail fast.

One hash per account day (``budget:<account>:<day>``: ``used``, ``until``). Counting is
HINCRBY, which Redis applies atomically whoever counts; the key's TTL (:data:`DAY_TTL_S`,
two days: the account's day may run up to a day behind or ahead of UTC) lets old days
go by themselves. The day is the caller's (``clients.budget`` owns the account's
calendar); an earlier day still reads what it spent until its key expires.

Every Pardot request reads the mark before it is sent and counts after, beside a
script of the account's slots (``clients.state.redis.slots``) that enters and leaves.
So that an idle call does not pay a round trip for each (docs/benchmarks.md, "Issue
13"), both ride along with the slots' scripts (:meth:`RedisBudgetMark.ride`):

- A read of the mark waits for a slots script to carry it: the transport asks for it
  just before it enters the slot (``DailyBudget.check_soon``), so the enter's script
  reads the mark at Redis after the read was asked for: as fresh as a read of its own.
  If no script has taken it two turns of the event loop later, it goes alone.
- The count is written behind: :meth:`RedisBudgetMark.count` answers at once, and
  what is counted goes with the next slots script (the leave that follows the
  request), or alone two turns later, the counts waiting then as one HINCRBY. Waiting
  for Redis after the request was sent would only delay the call and let a Redis
  failure fail a call that Pardot has served. What ``count`` answers is this process's
  best knowledge: the total at Redis's last answer plus the counts not yet in it (the
  other replicas' calls since that answer show at the next one). A count Redis could
  not take is reported to the health and sent again with the next (or after
  :data:`RETRY_S`): none is lost while the process lives. The count is an upper bound
  of Pardot's either way (``clients.budget``); a count sent but unanswered may be
  counted twice.

:meth:`RedisBudgetMark.used` and ``exhaust`` go to Redis at once: the exhausted-until
mark is what every replica must see before its next request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime

from clients.state.redis.context import RedisContext
from strategies.core.errors import StateUnwritable

#: How long an account day's count and mark are kept after they were last written.
DAY_TTL_S = 2 * 24 * 3600
#: After a count Redis refused, when it is sent again if no other count comes first.
RETRY_S = 1.0
WHAT = "the daily budget"


def _seen(read: asyncio.Future[datetime | None]) -> None:
    if not read.cancelled():
        read.exception()


@dataclass
class Ride:
    """What goes to Redis with one script: the days whose mark is read (each with its
    readers) and the calls counted per day."""

    reads: dict[date, list[asyncio.Future[datetime | None]]] = field(default_factory=dict)
    counts: dict[date, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.reads or self.counts)


class RedisBudgetMark:
    """One account's days, shared through Redis."""

    remote = True

    def __init__(self, ctx: RedisContext, account: str) -> None:
        self._ctx = ctx
        self._account = account
        #: What waits for the next script (or this mark's own send, two turns later).
        self._waiting = Ride()
        self._alone_planned = False
        #: Counts sent and not answered yet, by day.
        self._sending: dict[date, int] = {}
        #: The day's total at Redis's last answer (the latest days told of).
        self._known: dict[date, int] = {}
        #: Rides under way (on a slots script or alone), and news of one landing.
        self._riding = 0
        self._landed = asyncio.Event()
        #: This mark's own sends (a reference keeps a task alive).
        self._sends: set[asyncio.Task[None]] = set()
        self._retry: asyncio.TimerHandle | None = None

    def key(self, day: date) -> str:
        return self._ctx.key("budget", self._account, day.isoformat())

    # --- the protocol -----------------------------------------------------------------

    async def count(self, day: date) -> int:
        counts = self._waiting.counts
        counts[day] = counts.get(day, 0) + 1
        self._plan_alone()
        return self._known.get(day, 0) + self._sending.get(day, 0) + counts[day]

    async def used(self, day: date) -> int:
        await self.drain()
        found = await self._ctx.run(WHAT, self._ctx.client.hget(self.key(day), "used"))
        used = int(found) if found is not None else 0
        if not self._sending.get(day) and not self._waiting.counts.get(day):
            self._learn({day: used})
        return used

    async def exhaust(self, day: date, until: datetime) -> None:
        key = self.key(day)
        pipe = self._ctx.client.pipeline(transaction=True)
        pipe.hset(key, "until", until.isoformat())
        pipe.expire(key, DAY_TTL_S)
        await self._ctx.run(WHAT, pipe.execute())

    def exhausted_until(self, day: date) -> asyncio.Future[datetime | None]:
        """Asked for now: the read waits for a slots script to carry it (or goes alone
        two turns later); the future is its answer."""
        read: asyncio.Future[datetime | None] = asyncio.get_running_loop().create_future()
        read.add_done_callback(_seen)  # a reader that gave up leaves no unseen error
        self._waiting.reads.setdefault(day, []).append(read)
        self._plan_alone()
        return read

    # --- riding along with the slots' scripts -------------------------------------------

    def ride(self) -> Ride:
        """Takes what waits, for a script about to go; a ride taken (not empty) is
        answered with :meth:`rode` or :meth:`fell`."""
        ride, self._waiting = self._waiting, Ride()
        if ride:
            self._riding += 1
            if ride.counts and self._retry is not None:  # what the retry was for goes now
                self._retry.cancel()
                self._retry = None
            for day, calls in ride.counts.items():
                self._sending[day] = self._sending.get(day, 0) + calls
        return ride

    def rode(self, ride: Ride, untils: list[bytes | None], totals: list[int]) -> None:
        """The script went: each day's mark read (``ride.reads``' order; empty or None
        where none is set) and each day's total (``ride.counts``' order)."""
        for readers, until in zip(ride.reads.values(), untils, strict=True):
            mark = datetime.fromisoformat(until.decode()) if until else None
            for reader in readers:
                if not reader.done():
                    reader.set_result(mark)
        self._learn(dict(zip(ride.counts, totals, strict=True)))
        self._landed_ride(ride)

    def fell(self, ride: Ride, error: StateUnwritable) -> None:
        """The script failed (reported): its readers fail alike, its counts wait again
        (sent with the next, or after :data:`RETRY_S`)."""
        for readers in ride.reads.values():
            for reader in readers:
                if not reader.done():
                    reader.set_exception(error)
        self._landed_ride(ride)
        if ride.counts:
            for day, calls in ride.counts.items():
                self._waiting.counts[day] = self._waiting.counts.get(day, 0) + calls
            if self._retry is None:
                self._retry = asyncio.get_running_loop().call_later(RETRY_S, self._retried)

    def returned(self, ride: Ride) -> None:
        """The script was cancelled before Redis answered: what it carried waits again
        (its readers may belong to other calls; a count it may have applied is counted
        again, as a count sent and unanswered may be)."""
        self._landed_ride(ride)
        for day, readers in ride.reads.items():
            self._waiting.reads.setdefault(day, []).extend(r for r in readers if not r.done())
        for day, calls in ride.counts.items():
            self._waiting.counts[day] = self._waiting.counts.get(day, 0) + calls
        self._plan_alone()

    def _landed_ride(self, ride: Ride) -> None:
        for day, calls in ride.counts.items():
            left = self._sending.get(day, 0) - calls
            if left > 0:
                self._sending[day] = left
            else:
                self._sending.pop(day, None)
        self._riding -= 1
        self._landed.set()

    def _retried(self) -> None:
        self._retry = None
        self._plan_alone()

    def _learn(self, totals: dict[date, int]) -> None:
        # The latest days only: a day's count ends at its midnight.
        self._known = dict(sorted({**self._known, **totals}.items())[-2:])

    # --- going alone ----------------------------------------------------------------------

    def _plan_alone(self) -> None:
        """What waits goes by itself two turns from now, unless a script took it: a task
        started in this turn (the slot's enter or leave) takes its first step in the
        next one, before this."""
        if not self._alone_planned:
            self._alone_planned = True
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._go_alone)

    def _go_alone(self) -> None:
        self._alone_planned = False
        ride = self.ride()
        if ride:
            send = asyncio.ensure_future(self._send(ride))
            self._sends.add(send)
            send.add_done_callback(self._sends.discard)

    async def _send(self, ride: Ride) -> None:
        """One MULTI: the counts' HINCRBYs (each with its EXPIRE), then the marks' HGETs."""
        pipe = self._ctx.client.pipeline(transaction=True)
        for day, calls in ride.counts.items():
            pipe.hincrby(self.key(day), "used", calls)
            pipe.expire(self.key(day), DAY_TTL_S)
        for day in ride.reads:
            pipe.hget(self.key(day), "until")
        try:
            answers = await self._ctx.run(WHAT, pipe.execute())
        except StateUnwritable as error:
            self.fell(ride, error)
            return
        counted = 2 * len(ride.counts)
        self.rode(ride, list(answers[counted:]), [int(a) for a in answers[:counted:2]])

    async def drain(self) -> None:
        """Sends what waits, and waits until every ride under way has landed (before a
        read of the total, and before the backend's client closes). What Redis refuses
        meanwhile waits for the retry (reported)."""
        if self._waiting:
            self._go_alone()
        while self._riding:
            self._landed.clear()
            await self._landed.wait()

    def close(self) -> None:
        """Stops retrying (``await drain()`` first to send what is counted)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
