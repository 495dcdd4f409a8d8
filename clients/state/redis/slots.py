"""One Pardot account's concurrency slots in Redis: ``clients.state.protocols.ConcurrencySlots``
shared by every replica and worker process, so that the account has ``limit`` requests
in flight in all, not per process (issue 13: two replicas put 10 in flight, err 66).

Redis keeps, per account (``slots:<account>:…``):

- ``leases``: a sorted set of the slots held, each scored by when its lease ends;
- ``queue``: a sorted set of the callers waiting, scored by (entrance, arrival): a
  follow-up (a call already under way) scores its arrival number, a first request that
  number plus :data:`FIRST_OFFSET`, so every follow-up goes before every first request
  and each entrance keeps arrival order (the convoy rule of issue 12, across replicas);
- ``queue-leases``: when each waiter's entry ends unless renewed;
- ``mine``: how many waiters of each participant and entrance are queued, so each
  process can tell the others' waiters from its own for :meth:`RedisSlots.waiting`;
- ``seq``: the arrival counter.

Every change runs in one Lua script (:data:`SCRIPT`), which first drops the leases and
waiters whose time is up, then hands the free slots to the waiters at the head of the
queue. Time in the script is Redis's (``TIME``): one clock for every replica, so no
process's wall clock decides when another's lease ended. A process that dies (kill -9)
stops renewing: its leases end within :data:`LEASE_S` and its waiters leave the queue
within the same time, and the slots go to the next in line. While a process lives, one
renewal task per :class:`RedisSlots` renews its leases and queued entries every third of
the lease.

Entering with a slot free is one script call (with nobody queued it takes the slot
without the queue's bookkeeping); leaving is one more, which the caller does not wait
for (the request is over: the leave is a task). The account's budget mark rides these
scripts (``clients.state.redis.budget``). A waiter granted a slot by someone else's
leave is told at once: the script names the ids it granted in its reply (this
process's own waiters are woken by it) and publishes them on
``slots:<account>:granted`` (for the other processes), so a freed slot is taken at once
rather than at the next poll; each waiter also polls with backoff
(:data:`POLL_FIRST_S` doubling to :data:`POLL_MAX_S`) because nobody publishes when a
dead process's lease runs out, and a message missed while the subscription (re)starts
must not strand a waiter. The poll is the same script: it renews the waiter's entry and
hands out what has come free.

Within one process, entries go to Redis in arrival order (one enter at a time, under a
FIFO lock), so the order the process's callers came in is the order Redis queues them.
A waiter cancelled while it waits leaves the queue (a leave, after its enter finished,
in a task of its own since the cancelled caller cannot wait for it); a slot granted to
it meanwhile is given back by that same leave, to the next in line.

``locked()`` and ``waiting()`` answer from the counts the last script returned (the
others' share) plus this process's own callers (known at once): an estimate, as the
protocol allows. A leave that Redis cannot take is reported to the health and not
raised: the call's outcome stands, and the lease ends by itself within the lease time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from types import TracebackType
from typing import Any

from redis.commands.core import AsyncScript

from clients import metrics
from clients.state.redis.budget import DAY_TTL_S, RedisBudgetMark
from clients.state.redis.context import REDIS_FAILURES, RedisContext
from strategies.core.errors import StateUnwritable

#: How long a slot (or a place in the queue) lasts unless its process renews it: a
#: process killed with slots in hand gives them back within this time.
LEASE_S = 10.0
#: A waiter's first check of Redis when no news came, then doubling up to POLL_MAX_S.
POLL_FIRST_S = 0.05
POLL_MAX_S = 0.5
#: Added to a first request's arrival number: every follow-up scores below it (exact
#: in a double, and ahead of any arrival count the counter reaches before its TTL).
FIRST_OFFSET = 2**40
#: How long the others' counts of the last answer are believed (see RedisSlots._fresh).
ESTIMATE_S = 1.0
#: How long the arrival counter outlives the last arrival.
SEQ_TTL_S = 24 * 3600
WHAT = "the concurrency slots"

#: KEYS: leases, queue, queue-leases, mine, seq, channel, then the budget days whose
#: mark is read, then the budget days counted (what rides along: ``budget.Ride``).
#: ARGV: op ("enter" | "leave" | "renew"), limit, lease_ms, participant, how many days
#: read, how many counted, each counted day's calls, then
#: enter: id, entrance (0 follow-up, 1 first); leave: id; renew: ids…
#: Returns {granted (enter: 1 if the id holds a slot), leases held, follow-ups queued,
#: all queued, this participant's follow-ups queued, this participant's firsts queued,
#: the ids it granted to others, space-separated (also published), each day read's
#: exhausted-until mark ('' where none), each day counted's total}.
SCRIPT = """
local leases, queue, qleases = KEYS[1], KEYS[2], KEYS[3]
local mine, seq, channel = KEYS[4], KEYS[5], KEYS[6]
local op, limit, lease_ms, me = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local nreads, ncounts = tonumber(ARGV[5]), tonumber(ARGV[6])
local base = 6 + ncounts  -- the op's own arguments follow
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Scores as exact digits: Lua would write a large number as %.14g and lose the order.
local function num(x) return string.format('%.0f', x) end

local function unqueue(id)
  if redis.call('ZREM', queue, id) == 1 then
    local who, entrance = string.match(id, '^(.-)|(%d)|')
    if who and redis.call('HINCRBY', mine, who .. '|' .. entrance, -1) <= 0 then
      redis.call('HDEL', mine, who .. '|' .. entrance)
    end
  end
  redis.call('ZREM', qleases, id)
end

redis.call('ZREMRANGEBYSCORE', leases, '-inf', num(now))
-- A queue-lease lives only beside its entry in the queue: with nobody queued there is
-- none to end, and the queue's bookkeeping is skipped (the path of an account not at
-- its limit: an enter and a leave touch the leases alone).
local waiting = redis.call('ZCARD', queue) > 0
if waiting then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', qleases, '-inf', num(now))) do unqueue(id) end
end
local held = redis.call('ZCARD', leases)

local granted, told = 0, {}
if op == 'enter' then
  local id, entrance = ARGV[base + 1], tonumber(ARGV[base + 2])
  if redis.call('ZSCORE', leases, id) then
    granted = 1
  elseif not waiting and held < limit then
    redis.call('ZADD', leases, num(now + lease_ms), id)  -- nobody ahead: no queue
    redis.call('PEXPIRE', leases, lease_ms * 3)
    granted, held = 1, held + 1
  else
    if not redis.call('ZSCORE', queue, id) then
      local n = redis.call('INCR', seq)
      redis.call('PEXPIRE', seq, @SEQ_TTL_MS@)
      redis.call('ZADD', queue, num(n + entrance * @FIRST_OFFSET@), id)
      redis.call('HINCRBY', mine, me .. '|' .. entrance, 1)
    end
    redis.call('ZADD', qleases, num(now + lease_ms), id)
    waiting = true
  end
elseif op == 'leave' then
  held = held - redis.call('ZREM', leases, ARGV[base + 1])
  if waiting then unqueue(ARGV[base + 1]) end
elseif op == 'renew' then
  for i = base + 1, #ARGV do
    redis.call('ZADD', leases, 'XX', num(now + lease_ms), ARGV[i])
    redis.call('ZADD', qleases, 'XX', num(now + lease_ms), ARGV[i])
  end
end

if waiting then
  local free = limit - held
  if free > 0 then
    for _, id in ipairs(redis.call('ZRANGE', queue, 0, free - 1)) do
      unqueue(id)
      redis.call('ZADD', leases, num(now + lease_ms), id)
      held = held + 1
      if op == 'enter' and id == ARGV[base + 1] then granted = 1 else told[#told + 1] = id end
    end
  end
end
local granted_others = table.concat(told, ' ')
if #told > 0 then redis.call('PUBLISH', channel, granted_others) end

-- Every key outlives its last use by three leases (a dead process's leftovers go by
-- themselves); the fast enter above kept its one key, a leave keeps what remains.
if waiting or op == 'renew' then
  for _, key in ipairs({leases, queue, qleases, mine}) do
    redis.call('PEXPIRE', key, lease_ms * 3)
  end
end
local follow_ups, queued, my_follow_ups, my_firsts = 0, 0, 0, 0
if waiting then
  follow_ups = redis.call('ZCOUNT', queue, '-inf', '(@FIRST_OFFSET@')
  queued = redis.call('ZCARD', queue)
  my_follow_ups = tonumber(redis.call('HGET', mine, me .. '|0') or '0')
  my_firsts = tonumber(redis.call('HGET', mine, me .. '|1') or '0')
end

local untils, totals = {}, {}
for i = 1, nreads do untils[i] = redis.call('HGET', KEYS[6 + i], 'until') or '' end
for i = 1, ncounts do
  local day = KEYS[6 + nreads + i]
  totals[i] = redis.call('HINCRBY', day, 'used', tonumber(ARGV[6 + i]))
  redis.call('EXPIRE', day, @DAY_TTL_S@)
end
return {granted, held, follow_ups, queued, my_follow_ups, my_firsts,
        granted_others, untils, totals}
""".replace("@FIRST_OFFSET@", str(FIRST_OFFSET)).replace("@SEQ_TTL_MS@", str(SEQ_TTL_S * 1000))
SCRIPT = SCRIPT.replace("@DAY_TTL_S@", str(DAY_TTL_S))

FOLLOW_UP, FIRST = 0, 1


class RedisSlots:
    """At most ``limit`` requests in flight for ``account`` among everyone sharing the
    Redis; follow-ups first, then first requests, arrival order within each."""

    def __init__(
        self,
        ctx: RedisContext,
        account: str,
        limit: int,
        *,
        lease_s: float = LEASE_S,
        poll_first_s: float = POLL_FIRST_S,
        poll_max_s: float = POLL_MAX_S,
        budget: RedisBudgetMark | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"slots need a limit of at least 1, not {limit}")
        self.limit = limit
        self.account = account
        self._ctx = ctx
        self._lease_ms = max(1, round(lease_s * 1000))
        self._poll = (poll_first_s, poll_max_s)
        self._keys = [ctx.key("slots", account, part) for part in ("leases", "queue")]
        self._keys += [ctx.key("slots", account, p) for p in ("queue-leases", "mine", "seq")]
        self._channel = ctx.key("slots", account, "granted")
        self._keys.append(self._channel)
        self._script: AsyncScript = ctx.client.register_script(SCRIPT)
        #: The account's budget mark, whose reads and counts ride along with the scripts.
        self._budget = budget
        #: This view of the slots among all that share them (a process, a replica).
        self._me = uuid.uuid4().hex[:16]
        self._ids = itertools.count(1)
        #: Enters go to Redis one at a time, in arrival order (asyncio.Lock is FIFO).
        self._entering = asyncio.Lock()
        #: This process's waiters, by id: resolved when Redis says the slot is theirs.
        self._waiters: dict[str, asyncio.Future[None]] = {}
        #: The ids this process holds slots under. Which one a caller gives back on
        #: leaving does not matter (a slot is a slot), so no caller keeps its own.
        self._held: list[str] = []
        #: This process's callers waiting, by what it knows: [follow-ups, firsts]. A
        #: caller arriving while a slot looked free is not counted here but in
        #: ``_arriving`` (it will most likely hold one when Redis answers), so that the
        #: estimates read as the in-process slots' do until the answers come.
        self._live = [0, 0]
        self._arriving = 0
        #: Leaves sent and not answered yet (Redis still counts their slots).
        self._leaving = 0
        #: From the last script's answer: the others' leases and waiters.
        self._others_leases = 0
        self._others = [0, 0]
        self._answered_at = 0.0
        self._renewer: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        #: Leaves of waiters that stopped waiting, kept until they ran.
        self._abandoning: set[asyncio.Future[Any]] = set()
        #: Leaves of holders sent and not answered yet (kept until they ran).
        self._leaves: set[asyncio.Future[bool]] = set()
        self.follow_up = _FollowUpEntrance(self)

    # --- the estimates ------------------------------------------------------------------

    def locked(self) -> bool:
        """No slot is free for a newcomer: the others' leases at the last answer from
        Redis, plus this process's callers holding a slot or on their way to one."""
        others = self._others_leases if self._fresh() else 0
        return others + len(self._held) + self._arriving >= self.limit

    def waiting(self, *, follow_up: bool = False) -> int:
        """This process's waiters (known now) plus the others' (at the last answer)."""
        others = self._others if self._fresh() else [0, 0]
        if follow_up:
            return self._live[FOLLOW_UP] + others[FOLLOW_UP]
        return sum(self._live) + sum(others)

    def _fresh(self) -> bool:
        """Whether the others' counts are recent enough to go by: a process that has not
        asked Redis for a while would otherwise go on believing a crowd long gone (and
        the transport refuse calls for it); past :data:`ESTIMATE_S` it assumes none."""
        return time.monotonic() - self._answered_at < ESTIMATE_S

    # --- entering and leaving -----------------------------------------------------------

    async def __aenter__(self) -> None:
        await self._enter(FIRST)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._leave()

    async def _enter(self, entrance: int) -> None:
        slot = f"{self._me}|{entrance}|{next(self._ids)}"
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[slot] = granted
        expected = not self.locked()
        if expected:
            self._arriving += 1
        else:
            self._live[entrance] += 1
        first = asyncio.ensure_future(self._first_enter(slot, entrance, granted, expected))
        try:
            try:
                await asyncio.shield(first)
            finally:
                if expected:  # answered (or abandoned): what it is now is known
                    self._arriving -= 1
                    if not granted.done():
                        self._live[entrance] += 1
                        expected = False
            poll, poll_max = self._poll
            if not granted.done():
                self._report()  # one more waiting
            while not granted.done():
                self._listen()
                self._keep_renewing()
                # asyncio.wait, not wait_for: a cancellation that comes as the slot is
                # granted must reach this caller (wait_for may return the result instead),
                # so that the slot goes back and is not held by a caller that gave up.
                await asyncio.wait((granted,), timeout=poll)
                if not granted.done():
                    poll = min(poll * 2, poll_max)
                    if await self._call("enter", slot, str(entrance)):
                        _resolve(granted)
        except BaseException:
            self._waiters.pop(slot, None)
            cleanup = asyncio.ensure_future(self._abandon(slot, first))
            self._abandoning.add(cleanup)
            cleanup.add_done_callback(self._abandoning.discard)
            raise
        finally:
            if not expected:
                self._live[entrance] -= 1
                self._report()
        self._waiters.pop(slot, None)
        self._held.append(slot)
        self._keep_renewing()
        self._report()

    async def _first_enter(
        self, slot: str, entrance: int, granted: asyncio.Future[None], arriving: bool
    ) -> None:
        async with self._entering:
            if await self._call("enter", slot, str(entrance), arriving=arriving):
                _resolve(granted)

    async def _abandon(self, slot: str, first: asyncio.Future[None]) -> None:
        """A waiter that stopped waiting leaves the queue, once its enter is over (so
        the leave cannot overtake it), giving back a slot granted meanwhile."""
        with contextlib.suppress(BaseException):
            await first
        with contextlib.suppress(Exception):  # Redis failed: reported, and the lease ends
            await self._call("leave", slot)

    async def _leave(self) -> None:
        """Gives the slot back without waiting for Redis's answer: the request is over,
        and the round trip is not the caller's to pay (an idle call paid one for each
        request). An enter of this process that reaches Redis first waits in the queue
        for a moment, and the leave's answer hands it the slot (:meth:`_call`: no
        pub/sub in between); a caller cancelled as it leaves still gives the slot back
        (the leave is a task)."""
        if not self._held:
            raise RuntimeError("left slots that nobody holds")
        slot = self._held.pop()
        self._leaving += 1
        leave = asyncio.ensure_future(self._call("leave", slot, held=True))
        self._leaves.add(leave)
        leave.add_done_callback(self._left)
        self._report()

    def _left(self, leave: asyncio.Future[bool]) -> None:
        self._leaving -= 1
        self._leaves.discard(leave)
        if not leave.cancelled():
            leave.exception()  # seen: a failed leave was reported to the health

    async def drain(self) -> None:
        """Waits for the leaves and cleanups under way (before the backend's client
        closes: a leave cut off would keep its slot until the lease ends)."""
        pending = [*self._leaves, *self._abandoning]
        if pending:
            await asyncio.wait(pending)

    async def _call(self, op: str, *args: str, held: bool = False, arriving: bool = False) -> bool:
        """Runs the script; keeps its counts; whether the slot asked for is granted.
        ``held``: a leave of a slot held (counted in ``_leaving`` until it is answered;
        a waiter's leave is not). ``arriving``: an enter counted in ``_arriving``."""
        ride = self._budget.ride() if self._budget is not None else None
        keys, argv = self._keys, [op, str(self.limit), str(self._lease_ms), self._me]
        if ride and self._budget is not None:
            keys = [*keys, *map(self._budget.key, ride.reads), *map(self._budget.key, ride.counts)]
            argv += [str(len(ride.reads)), str(len(ride.counts))]
            argv += [str(calls) for calls in ride.counts.values()]
        else:
            argv += ["0", "0"]
        try:
            answer = await self._ctx.run(WHAT, self._script(keys=keys, args=[*argv, *args]))
        except StateUnwritable as error:
            if ride and self._budget is not None:
                self._budget.fell(ride, error)
            raise
        except BaseException:  # cancelled: what rode along goes with another script
            if ride and self._budget is not None:
                self._budget.returned(ride)
            raise
        if ride and self._budget is not None:
            self._budget.rode(ride, list(answer[7]), [int(total) for total in answer[8]])
        granted, leases, follow_ups, queued, my_follow_ups, my_firsts = (int(n) for n in answer[:6])
        woken = self._wake(answer[6])
        # This process's slots in Redis's count: held, leaving (but not this leave of a
        # held slot, done), this enter's if granted, its waiters this script granted, and
        # its enters on their way (Redis may have granted them before this script ran).
        # (A waiter granted by another process's script counts as the others' until it
        # holds: an estimate.)
        mine = len(self._held) + self._leaving - held + (granted if op == "enter" else 0)
        mine += woken + self._arriving - arriving
        self._others_leases = max(0, leases - mine)
        self._answered_at = time.monotonic()
        self._others = [
            max(0, follow_ups - my_follow_ups),
            max(0, queued - follow_ups - my_firsts),
        ]
        return granted == 1

    # --- the tasks of one process -------------------------------------------------------

    def _keep_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        """Renews this process's leases and queued entries every third of the lease,
        while it has any; a renewal Redis refuses is reported (by ``ctx.run``) and tried
        again at the next turn."""
        while self._held or self._waiters:
            await asyncio.sleep(self._lease_ms / 3000)
            slots = [*self._held, *self._waiters]
            if slots:
                with contextlib.suppress(Exception):
                    await self._call("renew", *slots)

    def _listen(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.ensure_future(self._hear_grants())

    async def _hear_grants(self) -> None:
        """Wakes this process's waiters named in a grant, while it has waiters. If the
        subscription fails, the waiters' polls carry on (and restart it)."""
        pubsub = self._ctx.client.pubsub()
        try:
            async with asyncio.timeout(self._ctx.timeout_s):  # the client has none
                await pubsub.subscribe(self._channel)
            while self._waiters:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is None:
                    continue
                self._wake(message["data"])
        except (*REDIS_FAILURES, RuntimeError):  # type: ignore[misc]  # a tuple of types
            pass
        finally:
            with contextlib.suppress(*REDIS_FAILURES, RuntimeError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py's own

    def _wake(self, granted: bytes) -> int:
        """Resolves this process's waiters among the ids a script granted (its answer,
        or the others' scripts' message on the channel); how many were this
        process's."""
        woken = 0
        for slot in bytes(granted).decode().split():
            waiter = self._waiters.get(slot)
            if waiter is not None:
                woken += 1
                _resolve(waiter)
        return woken

    def _report(self) -> None:
        """This process's slots in use and callers waiting, for the metrics: its own
        share, so that a multiprocess registry summing the processes' gauges gets the
        account's (as with the in-process slots)."""
        metrics.account_slots(
            self.account, in_use=len(self._held), waiting=sum(self._live), limit=self.limit
        )


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _FollowUpEntrance:
    """``slots.follow_up``: the same slots, entered ahead of every first request."""

    __slots__ = ("_slots",)

    def __init__(self, slots: RedisSlots) -> None:
        self._slots = slots

    async def __aenter__(self) -> None:
        await self._slots._enter(FOLLOW_UP)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._slots._leave()
