"""One Pardot account's daily budget in Redis: ``clients.state.protocols.BudgetMark``
shared by every replica and worker process, so that the calls counted are the account's,
not one process's, and an err 122 seen by one replica makes every replica fail fast.

One hash per account day (``budget:<account>:<day>``: ``used``, ``until``). Counting is
HINCRBY, which Redis applies atomically whoever counts; the key's TTL (:data:`DAY_TTL_S`,
two days: the account's day may run up to a day behind or ahead of UTC) lets old days
go by themselves. The day is the caller's (``clients.budget`` owns the account's
calendar); an earlier day still reads what it spent until its key expires.
"""

from __future__ import annotations

from datetime import date, datetime

from clients.state.redis.context import RedisContext

#: How long an account day's count and mark are kept after they were last written.
DAY_TTL_S = 2 * 24 * 3600
WHAT = "the daily budget"


class RedisBudgetMark:
    """One account's days, shared through Redis."""

    def __init__(self, ctx: RedisContext, account: str) -> None:
        self._ctx = ctx
        self._account = account

    def _key(self, day: date) -> str:
        return self._ctx.key("budget", self._account, day.isoformat())

    async def count(self, day: date) -> int:
        key = self._key(day)
        pipe = self._ctx.client.pipeline(transaction=True)
        pipe.hincrby(key, "used", 1)
        pipe.expire(key, DAY_TTL_S)
        used, _ = await self._ctx.run(WHAT, pipe.execute())
        return int(used)

    async def used(self, day: date) -> int:
        used = await self._ctx.run(WHAT, self._ctx.client.hget(self._key(day), "used"))
        return int(used) if used is not None else 0

    async def exhaust(self, day: date, until: datetime) -> None:
        key = self._key(day)
        pipe = self._ctx.client.pipeline(transaction=True)
        pipe.hset(key, "until", until.isoformat())
        pipe.expire(key, DAY_TTL_S)
        await self._ctx.run(WHAT, pipe.execute())

    async def exhausted_until(self, day: date) -> datetime | None:
        until = await self._ctx.run(WHAT, self._ctx.client.hget(self._key(day), "until"))
        if until is None:
            return None
        return datetime.fromisoformat(until.decode() if isinstance(until, bytes) else until)
