"""Creates in doubt in Redis: ``clients.state.protocols.CreateHolds`` shared by every
replica (the durable holds of issue 12, item 2; ``clients.state.holds`` says what a hold
is and which ones :meth:`RedisCreateHolds.remaining` counts).

Per (connection, email) one sorted set ``holds:<connection>:<email>``: a member per
create (its ticket, from the connection's counter ``holds-ticket:<connection>``), scored
by the time its hold ends. Times are Redis's clock (``redis.call('TIME')`` inside the
scripts): one clock for every replica, whatever each host's wall clock says, so a step
of a service host's clock never ends a hold early; a step of the Redis host's clock
does move them (as it moves every TTL). Ended holds are dropped whenever the set is
read or written, and the set's key expires when its last hold ends, so nothing grows
beyond the creates in doubt.

A hold is in Redis before :meth:`RedisCreateHolds.sending` returns: a replica killed
with the create in flight leaves it for the others. This store's own creates in flight
are remembered in this process (their tickets), so its own calls are not held by them.
"""

from __future__ import annotations

import structlog

from clients.state.holds import _key
from clients.state.redis.context import RedisContext
from strategies.core.errors import StateUnwritable

log = structlog.get_logger("clients.state.redis.holds")

WHAT = "the create holds"

#: Redis's clock, in seconds, inside a script.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

#: Drops ended holds, then makes the key live as long as its longest hold.
_TIDY = """
local function tidy(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIRE', key, math.ceil((tonumber(last[2]) - now) * 1000) + 1)
  end
end
"""

#: KEYS[1] the email's holds, KEYS[2] the ticket counter; ARGV[1] seconds held. The
#: ticket.
_SENDING = (
    _NOW
    + _TIDY
    + """
local ticket = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ticket)
tidy(KEYS[1], now)
return ticket
"""
)

#: KEYS[1] the email's holds; ARGV[1] the ticket, ARGV[2] seconds held from now
#: (0: the hold ends). Only a hold still there is moved (XX): an ended one stays ended.
_SETTLE = (
    _NOW
    + _TIDY
    + """
if tonumber(ARGV[2]) > 0 then
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
tidy(KEYS[1], now)
return 1
"""
)

#: KEYS[1] the email's holds. {now, ticket, until, ticket, until, …} as strings.
_HELD = (
    _NOW
    + _TIDY
    + """
tidy(KEYS[1], now)
local held = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
table.insert(held, 1, string.format('%.6f', now))
return held
"""
)


class RedisCreateHolds:
    """One connection's creates in doubt, each held ``hold_s`` seconds, in the Redis
    backend ``ctx``."""

    def __init__(self, ctx: RedisContext, connection: str, *, hold_s: float) -> None:
        self._ctx = ctx
        self.connection = connection
        self.hold_s = hold_s
        self._counter = ctx.key("holds-ticket", connection)
        #: This store's creates in flight: ticket → the email's holds key.
        self._in_flight: dict[int, str] = {}
        client = ctx.client
        self._sending = client.register_script(_SENDING)
        self._settle = client.register_script(_SETTLE)
        self._held = client.register_script(_HELD)

    def _holds(self, email: str) -> str:
        return self._ctx.key("holds", self.connection, _key(email))

    async def sending(self, email: str, *, in_flight_s: float) -> int:
        """Raises StateUnwritable when the hold cannot be written: then the create must
        not be sent (a crash would leave nothing to stop a second one)."""
        holds = self._holds(email)
        ticket = int(
            await self._ctx.run(
                WHAT,
                self._sending(keys=[holds, self._counter], args=[in_flight_s + self.hold_s]),
            )
        )
        self._in_flight[ticket] = holds
        return ticket

    async def answered(self, ticket: int) -> None:
        await self._change(ticket, 0.0)

    async def unanswered(self, ticket: int) -> None:
        await self._change(ticket, self.hold_s)

    async def remaining(self, email: str) -> float:
        """Raises StateUnwritable when the holds cannot be read: no create is sent."""
        reply = await self._ctx.run(WHAT, self._held(keys=[self._holds(email)]))
        now, rest = float(reply[0]), reply[1:]
        held = [
            float(until)
            for ticket, until in zip(rest[::2], rest[1::2], strict=True)
            if int(ticket) not in self._in_flight
        ]
        return max(max(held) - now, 0.0) if held else 0.0

    def close(self) -> None:
        """Creates still in flight keep their holds: they may land after this."""
        self._in_flight.clear()

    async def _change(self, ticket: int, hold_s: float) -> None:
        """After Pardot's answer (or its absence) a failed write only leaves a hold that
        lasts longer than it should (until its in-flight bound) — never a twin — so it
        is logged, not raised: the prospect may already be written. (The failure has
        been reported to the health: the next calls are refused before writing.)"""
        holds = self._in_flight.pop(ticket, None)
        if holds is None:
            return
        try:
            await self._ctx.run(WHAT, self._settle(keys=[holds], args=[ticket, hold_s]))
        except StateUnwritable as error:
            log.warning("state.holds.unwritable", ticket=ticket, error=str(error))
