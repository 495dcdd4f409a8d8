"""Per-person locks shared by every replica: ``clients.state.protocols.PersonLocks`` in
Redis, so a first identify of one person racing on several replicas creates one
prospect (issue 13).

A lock is the key ``lock:<connection>:<key>`` holding ``<fence>:<owner>``, set only if
absent and with a lease (:data:`LEASE_S`) that its holder renews while it holds it
(every third of the lease): a holder whose process dies stops renewing, and the lock
is free once the lease has run out, on Redis's own clock (``PEXPIRE``). ``<fence>`` is
a number incremented on every acquisition (``lock-fence:<connection>:<key>``, kept a
day after its last use), ``<owner>`` names the store.

What the fencing buys: release and renewal compare the value and delete or extend only
their own (one Lua script each), so a holder that stalled past its lease (a long GC
pause, a frozen VM) and wakes up cannot free, or keep, the lock of the holder that came
after it; it finds the lock lost, and says so in the log (``person_lock.lost``). What it
cannot buy: Pardot's writes are not fenced — Pardot takes no token — so the stalled
holder's write in flight still lands, beside the new holder's. The lease is therefore
far longer than a call (:data:`LEASE_S`, renewed), so only a stall of that length can
make two holders.

Waiters: within one process they queue in arrival order on an in-process lock
(``clients.state.locks.KeyedLocks``), so one task per key and process asks Redis;
across processes the head of each queue polls with backoff (:data:`FIRST_POLL_S`
doubling to :data:`LAST_POLL_S`, jittered). Why not a FIFO queue in Redis: each waiter
there needs a lease of its own (a dead waiter would block the queue), which is another
key and script per wait and a renewal per waiter, while the contention it orders is
rare and short — concurrent first calls for one person, each one Pardot round trip.
Polling costs nothing when uncontended (one script to take, one to give back) and, on
contention, replicas go in roughly in turn rather than strictly.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from clients.state.locks import KeyedLocks
from clients.state.redis.context import RedisContext
from strategies.core.errors import StateUnwritable

log = structlog.get_logger("clients.state.redis.locks")

WHAT = "the per-person locks"

#: A lock's lease: how long a dead holder keeps a person locked. Renewed while held.
LEASE_S = 10.0
#: The first pause of a waiter that found the lock taken, doubled up to the last.
FIRST_POLL_S = 0.002
LAST_POLL_S = 0.1
#: How long a lock's fencing counter outlives its last acquisition.
_FENCE_KEPT_S = 86_400

#: KEYS[1] the lock, KEYS[2] its counter; ARGV[1] the owner, ARGV[2] the lease (ms),
#: ARGV[3] the counter's life (s). The fence taken, or nil when the lock is held.
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return nil
end
local fence = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], fence .. ':' .. ARGV[1], 'PX', ARGV[2])
return fence
"""

#: KEYS[1] the lock; ARGV[1] the holder's value. 1 when it was still the holder's.
_GIVE_BACK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: KEYS[1] the lock; ARGV[1] the holder's value, ARGV[2] the lease (ms).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisPersonLocks:
    """The per-person locks of the Redis backend ``ctx``. ``lease_s`` and
    ``renew_every_s`` (a third of the lease by default) are for tests of a dead or
    stalled holder."""

    def __init__(
        self, ctx: RedisContext, *, lease_s: float = LEASE_S, renew_every_s: float | None = None
    ) -> None:
        self._ctx = ctx
        self.lease_s = lease_s
        self.renew_every_s = lease_s / 3 if renew_every_s is None else renew_every_s
        self._owner = uuid.uuid4().hex
        self._queues = KeyedLocks()
        client = ctx.client
        self._take = client.register_script(_TAKE)
        self._give_back = client.register_script(_GIVE_BACK)
        self._renew = client.register_script(_RENEW)

    @asynccontextmanager
    async def hold(self, connection: str, key: str) -> AsyncIterator[None]:
        """Runs the block alone among every replica's holders of the key. Raises
        StateUnwritable (before the block runs) when Redis cannot answer."""
        async with self._queues.hold(connection, key):
            lock = self._ctx.key("lock", connection, key)
            value = await self._acquire(lock, self._ctx.key("lock-fence", connection, key))
            renewal = asyncio.ensure_future(self._keep(lock, value))
            try:
                yield
            finally:
                renewal.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewal
                await self._release(lock, value)

    async def fence(self, connection: str, key: str) -> int | None:
        """The fencing number of the key's current holder; None when nobody holds it."""
        value = await self._ctx.run(
            WHAT, self._ctx.client.get(self._ctx.key("lock", connection, key))
        )
        return (
            None
            if value is None
            else int(str(value.decode() if isinstance(value, bytes) else value).split(":", 1)[0])
        )

    async def _acquire(self, lock: str, counter: str) -> str:
        pause = FIRST_POLL_S
        lease_ms = int(self.lease_s * 1000)
        while True:
            fence = await self._ctx.run(
                WHAT,
                self._take(keys=[lock, counter], args=[self._owner, lease_ms, _FENCE_KEPT_S]),
            )
            if fence is not None:
                return f"{int(fence)}:{self._owner}"
            await asyncio.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(pause * 2, LAST_POLL_S)

    async def _keep(self, lock: str, value: str) -> None:
        """Renews the lease until cancelled; a lock found lost is logged, and the holder
        goes on (its Pardot writes cannot be stopped: see the module docstring)."""
        lease_ms = int(self.lease_s * 1000)
        while True:
            await asyncio.sleep(self.renew_every_s)
            try:
                kept = await self._ctx.run(WHAT, self._renew(keys=[lock], args=[value, lease_ms]))
            except StateUnwritable as error:  # Redis away: the lease may run out; try again
                log.warning("person_lock.renew_failed", lock=lock, error=str(error))
                continue
            if not kept:
                log.warning("person_lock.lost", lock=lock)
                return

    async def _release(self, lock: str, value: str) -> None:
        """Gives the lock back if it is still this holder's. A Redis that cannot answer
        leaves it to its lease (the block's outcome is not changed for it)."""
        try:
            released = await self._ctx.run(WHAT, self._give_back(keys=[lock], args=[value]))
        except StateUnwritable as error:
            log.warning("person_lock.release_failed", lock=lock, error=str(error))
            return
        if not released:
            log.warning("person_lock.lost", lock=lock)
