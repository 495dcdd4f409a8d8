"""What every Redis store shares: one ``redis.asyncio.Redis`` client (a connection pool,
hiredis parsing), the deployment's key prefix, and the one way a Redis failure becomes
``StateUnwritable`` (reported to the backend's ``StateHealth``, so health turns
NOT_SERVING and the servicer refuses calls before they write).

Keys are ``<prefix><kind>:<part>:…``; each part is escaped so that a ``:`` inside a
connection name or a lookup value cannot make two keys one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from clients.state.health import StateHealth
from strategies.core.errors import StateUnwritable

T = TypeVar("T")

#: What a Redis that cannot serve raises: unreachable, timed out, refusing writes
#: (MISCONF after a failed save, OOM, READONLY replica), or a script that failed.
REDIS_FAILURES: tuple[type[BaseException], ...] = (redis_errors.RedisError, OSError, TimeoutError)


def open_client(url: str, *, timeout_s: float) -> Redis:
    """The client every store of one backend shares. ``timeout_s`` bounds connecting
    here; each operation is bounded by :meth:`RedisContext.run` (one deadline for the
    command, its reply and its retry) rather than by redis-py's ``socket_timeout``,
    which wraps every send in ``asyncio.wait_for``: on Python 3.11 a task per command,
    and four event-loop turns per round trip instead of two — on an idle call that was
    a fifth of what Redis added (docs/benchmarks.md, "Issue 13"). A Redis that stalls
    still fails the call instead of holding it (tests/clients/test_redis_records.py,
    the paused-Redis test); a timeout is never retried. A connection error is retried
    once, at once, on a new connection: after a Redis restart every pooled connection
    is dead, and without that retry each would fail one call (UNAVAILABLE, health
    NOT_SERVING again) before the pool healed (tests/e2e/test_cluster.py, the outage
    test). A command written to a dead connection never reached the new server, so
    the retry does not run it twice."""
    return Redis.from_url(
        url,
        socket_timeout=None,  # bounded per operation: RedisContext.run
        socket_connect_timeout=timeout_s,
        health_check_interval=0,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis_errors.ConnectionError,)),
        decode_responses=False,
    )


def _escaped(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")


@dataclass(frozen=True, eq=False)
class RedisContext:
    """The client, the prefix and the health of one Redis backend, and how long one
    operation may take (``redis.timeout_s``)."""

    client: Redis
    prefix: str
    health: StateHealth
    timeout_s: float

    def key(self, kind: str, *parts: str) -> str:
        """``<prefix><kind>:<part>…``, parts escaped (see the module docstring)."""
        return ":".join([f"{self.prefix}{kind}", *(_escaped(p) for p in parts)])

    async def run(self, what: str, command: Awaitable[T]) -> T:
        """``await command`` within ``timeout_s``; a Redis failure (the timeout too) is
        reported as ``what`` ("the identity map") and raised as StateUnwritable. Every
        command of the backend goes through here: the client has no timeout of its own
        (:func:`open_client`). A command cut off mid-reply leaves no half-read
        connection behind: redis-py drops a connection whose read was cancelled."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await command
        except REDIS_FAILURES as error:
            raise self.failed(what, error) from error

    def failed(self, what: str, error: BaseException) -> StateUnwritable:
        """Report ``error`` of ``what`` to the health; the StateUnwritable to raise."""
        return self.health.failed(what, error)
