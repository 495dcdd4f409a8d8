"""The message_id records in Redis: ``clients.state.protocols.ResponseRecords`` shared by
every replica, so a message replayed on any replica answers from the first result
(issue 13), with the semantics of the embedded records (``clients.state.responses``).

Per key (method, connection, message_id), two Redis keys, each expiring with the
window (``server.idempotency_window_s``) as its TTL:

- ``msg:<method>:<connection>:<message_id>`` → the response, as the caller got it;
- ``msg-attempt:…`` → a hash for the message in progress: ``began`` (the wall time of
  its first unanswered attempt, seconds since the epoch, as this host's clock said:
  it is compared with Pardot's timestamps), ``owner`` (the store running it) and
  ``lease`` (until when, in Redis's milliseconds, the owner is known to be running it;
  renewed every third of :data:`LEASE_S` while it runs).

- ``msg-of:<connection>:<prospect id>`` → the set of response keys whose response
  names that prospect, written in the MULTI that saves the response and expiring
  with it: ``forget_prospects`` (``Forget``) finds them without a scan.

Saving the response deletes the attempt in the same MULTI. The window is a TTL, so it
runs on the Redis host's clock, not ours: a step of a service host's clock changes
nothing (issue 12, item 11 holds for every replica at once), while a step of the Redis
host's clock shortens or stretches every window and lease (Redis's expiry follows its
own wall clock). A Redis restarted without persistence loses every record (AOF is the
recommended setting).

A duplicate in flight on another replica waits for it: ``server.idempotency``'s single
flight is per process, so across replicas :meth:`RedisResponseRecords.claim` marks the
message in progress only when no other owner's lease is live, and tells the caller to
:meth:`RedisResponseRecords.wait_for` otherwise; :meth:`RedisResponseRecords.release`
ends a lease early when a call fails, so the waiters elsewhere go on at once. Waiting
polls (a few milliseconds, backing off): a duplicate racing its first attempt on
another replica is rare, and a subscriber connection per waiting call (pub/sub) would
cost more than the polls.

Every failure is ``StateUnwritable`` reported to the backend's health
(``RedisContext.run``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import NamedTuple

from clients.state.clock import SYSTEM_CLOCKS, HostClocks
from clients.state.protocols import Claim, IdempotencyKey
from clients.state.redis.context import RedisContext
from strategies.core.errors import StateUnwritable

WHAT = "the idempotency records"

#: How long a replica that died mid-call keeps a duplicate elsewhere waiting.
LEASE_S = 10.0
#: A waiter's first pause, doubled up to the last.
FIRST_POLL_S = 0.005
LAST_POLL_S = 0.1

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

#: KEYS[1] the attempt, KEYS[2] the response; ARGV: wall now, owner, lease ms, window
#: ms, '1' to take over a live lease of another owner (``begin``: else report it),
#: '1' to look for the response first (``claim``). {began or '', 1 if running
#: elsewhere, the response or ''}: a stored response is answered, nothing marked.
_CLAIM = (
    _NOW_MS
    + """
local response = ARGV[6] == '1' and redis.call('GET', KEYS[2])
if response then
  return {'', 0, response}
end
local began = redis.call('HGET', KEYS[1], 'began')
if began then
  local owner = redis.call('HGET', KEYS[1], 'owner')
  local lease = tonumber(redis.call('HGET', KEYS[1], 'lease') or '0')
  if owner ~= ARGV[2] and lease > now and ARGV[5] ~= '1' then
    return {began, 1, ''}
  end
  redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'lease', now + tonumber(ARGV[3]))
  return {began, 0, ''}
end
redis.call('HSET', KEYS[1], 'began', ARGV[1], 'owner', ARGV[2], 'lease', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'', 0, ''}
"""
)

#: KEYS[1] the attempt; ARGV[1] the owner, ARGV[2] the lease from now (ms; 0 ends it).
_LEASE = (
    _NOW_MS
    + """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[2]))
  return 1
end
return 0
"""
)

#: KEYS[1] the response, KEYS[2] the attempt; ARGV[1] the owner asking. {response or
#: '', 1 while another owner's lease is live}.
_LOOK = (
    _NOW_MS
    + """
local response = redis.call('GET', KEYS[1])
if response then
  return {response, 0}
end
local owner = redis.call('HGET', KEYS[2], 'owner')
local lease = tonumber(redis.call('HGET', KEYS[2], 'lease') or '0')
if owner and owner ~= ARGV[1] and lease > now then
  return {'', 1}
end
return {'', 0}
"""
)


#: KEYS: the prospects' index sets. Deletes every response they name, then the sets;
#: returns how many responses were deleted.
_FORGET = """
local dropped = 0
for _, index in ipairs(KEYS) do
  for _, response in ipairs(redis.call('SMEMBERS', index)) do
    dropped = dropped + redis.call('DEL', response)
  end
  redis.call('DEL', index)
end
return dropped
"""


class _Saved(NamedTuple):
    key: IdempotencyKey
    response: bytes
    committed: asyncio.Future[None]
    then: Callable[[], None]
    prospect_id: int | None = None


class RedisResponseRecords:
    """The message_id records of the Redis backend ``ctx``, kept ``window_s``."""

    def __init__(
        self,
        ctx: RedisContext,
        *,
        window_s: float,
        lease_s: float = LEASE_S,
        clocks: HostClocks = SYSTEM_CLOCKS,
    ) -> None:
        self._ctx = ctx
        #: Only for ``began``'s wall time; windows and leases are Redis's clock.
        self._clocks = clocks
        self.window_s = window_s
        self.lease_s = lease_s
        self._window_ms = max(int(window_s * 1000), 1)
        self._lease_ms = max(int(lease_s * 1000), 1)
        #: Names this store's leases to the other replicas.
        self.owner = uuid.uuid4().hex
        client = ctx.client
        self._claim = client.register_script(_CLAIM)
        self._lease = client.register_script(_LEASE)
        self._look = client.register_script(_LOOK)
        self._forget = client.register_script(_FORGET)
        #: The attempts this store runs now (their leases are renewed).
        self._running: set[IdempotencyKey] = set()
        self._renewal: asyncio.Task[None] | None = None
        self._pending: list[_Saved] = []
        self._commit_planned = False
        #: Commits under way (awaited by :meth:`drain`).
        self._writes: set[asyncio.Task[None]] = set()

    def _response_key(self, key: IdempotencyKey) -> str:
        return self._ctx.key("msg", *key)

    def _attempt_key(self, key: IdempotencyKey) -> str:
        return self._ctx.key("msg-attempt", *key)

    def _index_key(self, connection: str, prospect_id: int) -> str:
        return self._ctx.key("msg-of", connection, str(prospect_id))

    async def forget_prospects(self, connection: str, prospect_ids: tuple[int, ...]) -> int:
        """Drops the responses naming ``prospect_ids`` through their index sets: one
        script, a few commands per record (records still being sent land first)."""
        if not prospect_ids:
            return 0
        await self.drain()
        keys = [self._index_key(connection, p) for p in prospect_ids]
        dropped = await self._ctx.run(WHAT, self._forget(keys=keys, args=[]))
        return int(dropped)

    async def get(self, key: IdempotencyKey) -> bytes | None:
        found = await self._ctx.run(WHAT, self._ctx.client.get(self._response_key(key)))
        return None if found is None else _as_bytes(found)

    def begin(self, key: IdempotencyKey) -> asyncio.Future[float | None]:
        """Marks the message in progress, this store running it (it takes over another
        replica's lease: the protocol's callers have decided to run). Resolves once the
        mark is in Redis with the earliest unanswered attempt's wall time, or None."""
        return asyncio.ensure_future(self._began(key))

    async def _began(self, key: IdempotencyKey) -> float | None:
        return (await self._claimed(key, take_over=True)).began

    async def claim(self, key: IdempotencyKey) -> Claim:
        """:meth:`begin`, unless the response is stored (``stored``) or another replica
        runs the message now (``elsewhere``: :meth:`wait_for` it, see the module
        docstring); then nothing is written. One script: the look and the mark are one
        round trip."""
        return await self._claimed(key, take_over=False)

    async def _claimed(self, key: IdempotencyKey, *, take_over: bool) -> Claim:
        wall = repr(self._clocks.wall())  # this host's: compared with Pardot's timestamps
        args: list[str | int] = [wall, self.owner, self._lease_ms, self._window_ms]
        keys = [self._attempt_key(key), self._response_key(key)]
        modes = ["1", "0"] if take_over else ["0", "1"]  # begin takes over; claim looks
        began, elsewhere, response = await self._ctx.run(
            WHAT, self._claim(keys=keys, args=[*args, *modes])
        )
        if response:
            return Claim(None, elsewhere=False, stored=_as_bytes(response))
        claim = Claim(float(began) if began else None, bool(elsewhere))
        if not claim.elsewhere:
            self._running.add(key)
            self._renew_soon()
        return claim

    async def wait_for(self, key: IdempotencyKey, *, timeout_s: float) -> bytes | None:
        """Waits while another replica's lease on ``key`` is live: the response it saved,
        or None once its lease ended (it failed, or died) or ``timeout_s`` passed."""
        pause = FIRST_POLL_S
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        keys = [self._response_key(key), self._attempt_key(key)]
        while True:
            response, running = await self._ctx.run(WHAT, self._look(keys=keys, args=[self.owner]))
            if response:
                return bytes(response)
            if not running or loop.time() >= deadline:
                return None
            await asyncio.sleep(min(pause, max(deadline - loop.time(), 0.0)))
            pause = min(pause * 2, LAST_POLL_S)

    async def release(self, key: IdempotencyKey) -> None:
        """This store's attempt of ``key`` ended without a response (it failed, or was
        cancelled): its lease ends now, so a duplicate waiting elsewhere runs at once.
        The in-progress mark stays (the attempt may have written)."""
        self._running.discard(key)
        await self._ctx.run(WHAT, self._lease(keys=[self._attempt_key(key)], args=[self.owner, 0]))

    def save(
        self,
        key: IdempotencyKey,
        response: bytes,
        *,
        then: Callable[[], None],
        prospect_id: int | None = None,
    ) -> asyncio.Future[None]:
        """Stores ``response`` (and ends the attempt) in one MULTI with the records saved
        on the same turn of the event loop. The future resolves once Redis acknowledged
        the EXEC (or fails with StateUnwritable); ``then()`` runs after it, whatever the
        outcome, even when the future was cancelled."""
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Saved(key, response, committed, then, prospect_id))
        if not self._commit_planned:
            self._commit_planned = True
            asyncio.get_running_loop().call_soon(self.commit)
        return committed

    def commit(self) -> None:
        """Sends the records saved and waiting, now; each future resolves when Redis
        has acknowledged them (a network round trip: not before this returns)."""
        self._commit_planned = False
        pending, self._pending = self._pending, []
        if pending:
            write = asyncio.ensure_future(self._write(pending))
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)

    async def _write(self, pending: list[_Saved]) -> None:
        """One MULTI for ``pending``; then every future is settled and every ``then()``
        runs — also when this task is cancelled (the loop is stopping): the caller
        learns the record may not be stored, and its waiters look again."""
        outcome: BaseException | None = StateUnwritable(
            "the idempotency records: the write was interrupted before Redis answered"
        )
        try:
            async with self._ctx.client.pipeline(transaction=True) as multi:
                for saved in pending:
                    multi.set(self._response_key(saved.key), saved.response, px=self._window_ms)
                    multi.delete(self._attempt_key(saved.key))
                    if saved.prospect_id is not None:
                        index = self._index_key(saved.key.connection, saved.prospect_id)
                        multi.sadd(index, self._response_key(saved.key))
                        multi.pexpire(index, self._window_ms)
                await self._ctx.run(WHAT, multi.execute())
            outcome = None
        except StateUnwritable as failed:
            outcome = failed
        finally:
            for saved in pending:
                self._running.discard(saved.key)
                if not saved.committed.done():  # done: cancelled by a caller that went away
                    if outcome is None:
                        saved.committed.set_result(None)
                    else:
                        saved.committed.set_exception(outcome)
                saved.then()

    async def drain(self) -> None:
        """Waits for the commits under way (before the backend's client closes)."""
        self.commit()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def close(self) -> None:
        """Sends what is waiting and stops renewing leases (a duplicate elsewhere then
        waits at most a lease). ``await drain()`` first to know the sends arrived."""
        self.commit()
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None
        self._running.clear()

    def _renew_soon(self) -> None:
        if self._renewal is None:
            self._renewal = asyncio.ensure_future(self._renew_while_running())

    async def _renew_while_running(self) -> None:
        """Every third of the lease, renews the leases of the attempts running here, in
        one pipeline; stops when none runs (the next claim starts it again)."""
        try:
            while self._running:
                await asyncio.sleep(self.lease_s / 3)
                running = list(self._running)
                if not running:
                    break
                try:
                    async with self._ctx.client.pipeline(transaction=False) as pipe:
                        for key in running:
                            await self._lease(
                                keys=[self._attempt_key(key)],
                                args=[self.owner, self._lease_ms],
                                client=pipe,
                            )
                        await self._ctx.run(WHAT, pipe.execute())
                except StateUnwritable:
                    continue  # reported; the leases may run out meanwhile
        finally:
            self._renewal = None


def _as_bytes(value: bytes | str) -> bytes:
    """The client decodes nothing (``decode_responses=False``): bytes, typed as either."""
    return value if isinstance(value, bytes) else value.encode()
