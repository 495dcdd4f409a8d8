"""One connection's API token in Redis: ``clients.state.protocols.TokenStore`` shared by
every replica and worker process, so that a token is fetched once for all of them
(issue 13: each replica refreshing the same refresh token at once makes Salesforce
answer ``token request is already being processed``). It serves the OAuth access token
and the legacy api_key alike (``clients.auth`` uses one store for both).

Redis keeps, per connection (``token:<connection>…``): the token (with a TTL of
:data:`TOKEN_TTL_S`, so nothing stays forever; a token gone early only costs a
refresh), the refresh lock (its value names the refresher; a lease of
:data:`LEASE_S`, renewed while its fetch runs) and the rejection (the error of the
credentials refused, kept for the cooldown by Redis's own expiry, so every replica
fails fast for the same time whatever its own clock says).

A refresh: one Lua script answers the stored token if it is not the stale one, or else
takes the lock (and drops the stale token: nobody uses it meanwhile), or else says that
someone else is fetching. The refresher fetches, stores the token and releases the
lock in one more script (which checks the lock is still its own before releasing it).
The others poll the same script with backoff (:data:`POLL_FIRST_S` doubling to
:data:`POLL_MAX_S`) and take the new token from Redis: a refresh is rare (once per
token lifetime, or after a refusal), so polling costs Redis little and needs no
subscription to keep alive; and a refresher that dies (kill -9) simply stops renewing,
its lease ends and the next poll of another replica takes the lock and fetches. Within
one process, one flight serves every caller, as in ``clients.state.tokens``.

``current()`` is synchronous and answers this process's copy, kept by refresh() and
forget(): a replica learns another's new token when its own token is refused (the
caller then refreshes with it as the stale one) or when it refreshes for any reason,
never by being told. A fetch that fails is this process's callers' outcome; a replica
waiting on another's failed fetch takes the lock and fetches itself (the rejection, if
the credentials were refused, is shared: ``clients.auth`` checks it before refreshing).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import Awaitable, Callable

from redis.commands.core import AsyncScript

from clients.state.redis.context import RedisContext
from strategies.core.errors import PardotAuthFailed, Reason

#: How long a refresher's lock lasts unless it renews it (while its fetch runs): a
#: refresher that dies holds up the others this long at most.
LEASE_S = 10.0
#: A waiting replica's first look at Redis, then doubling up to POLL_MAX_S.
POLL_FIRST_S = 0.02
POLL_MAX_S = 0.25
#: How long a stored token is kept (a token Pardot refuses earlier is forgotten then).
TOKEN_TTL_S = 24 * 3600
WHAT = "the API token"

#: KEYS: token, lock. ARGV: has_stale ("1"/"0"), stale, refresher, lease_ms.
#: Returns {"token", token} | {"fetch", ""} (the lock is the refresher's) | {"wait", ""}.
TAKE_OR_LOCK = """
local token = redis.call('GET', KEYS[1])
if token and (ARGV[1] == '0' or token ~= ARGV[2]) then return {'token', token} end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then
  redis.call('DEL', KEYS[1])
  return {'fetch', ''}
end
return {'wait', ''}
"""
#: KEYS: token, lock. ARGV: refresher, token ("" to store none), token_ttl_ms.
#: Stores the token (even after the lease ran out: it is a good token, and the later
#: of two fetches overwrites it) and releases the lock if it is still the refresher's.
STORE_AND_RELEASE = """
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""
#: KEYS: lock. ARGV: refresher, lease_ms. Renews the lease while it is the refresher's.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
#: KEYS: token. ARGV: token. Drops the token if it is still the stored one.
FORGET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    """One connection's token, its one refresh among every replica, and its rejection."""

    def __init__(
        self,
        ctx: RedisContext,
        connection: str,
        *,
        lease_s: float = LEASE_S,
        poll_first_s: float = POLL_FIRST_S,
        poll_max_s: float = POLL_MAX_S,
    ) -> None:
        self._ctx = ctx
        self._token_key = ctx.key("token", connection)
        self._lock_key = ctx.key("token", connection, "refresh")
        self._rejection_key = ctx.key("token", connection, "rejection")
        self._lease_ms = max(1, round(lease_s * 1000))
        self._poll = (poll_first_s, poll_max_s)
        client = ctx.client
        self._take_or_lock: AsyncScript = client.register_script(TAKE_OR_LOCK)
        self._store: AsyncScript = client.register_script(STORE_AND_RELEASE)
        self._renew: AsyncScript = client.register_script(RENEW)
        self._forget: AsyncScript = client.register_script(FORGET)
        self._me = uuid.uuid4().hex[:16]
        self._refreshes = itertools.count(1)
        #: This process's copy of the stored token (see the module docstring).
        self._token: str | None = None
        #: The refresh in progress in this process, shared by every caller meanwhile.
        self._flight: asyncio.Task[str] | None = None

    def current(self) -> str | None:
        return self._token

    async def refresh(self, stale: str | None, fetch: Callable[[], Awaitable[str]]) -> str:
        if self._token is not None and self._token != stale:
            return self._token
        flight = self._flight
        if flight is None:
            self._token = None  # nobody may use the refused token while a new one comes
            flight = asyncio.ensure_future(self._fly(stale, fetch))
            flight.add_done_callback(_retrieve)
            self._flight = flight
        return await asyncio.shield(flight)

    async def _fly(self, stale: str | None, fetch: Callable[[], Awaitable[str]]) -> str:
        try:
            token = await self._token_from_redis_or_fetch(stale, fetch)
        finally:
            self._flight = None
        self._token = token
        return token

    async def _token_from_redis_or_fetch(
        self, stale: str | None, fetch: Callable[[], Awaitable[str]]
    ) -> str:
        refresher = f"{self._me}:{next(self._refreshes)}"
        args = ["0" if stale is None else "1", stale or "", refresher, str(self._lease_ms)]
        poll, poll_max = self._poll
        while True:
            kind, token = await self._ctx.run(
                WHAT, self._take_or_lock(keys=[self._token_key, self._lock_key], args=args)
            )
            if kind == b"token":
                return bytes(token).decode()
            if kind == b"fetch":
                return await self._fetch_holding_the_lock(refresher, fetch)
            await asyncio.sleep(poll)  # another replica is fetching
            poll = min(poll * 2, poll_max)

    async def _fetch_holding_the_lock(
        self, refresher: str, fetch: Callable[[], Awaitable[str]]
    ) -> str:
        renewing = asyncio.ensure_future(self._keep_the_lease(refresher))
        try:
            token = await fetch()
        except BaseException:
            renewing.cancel()
            with contextlib.suppress(Exception):  # reported; the lease ends by itself
                await self._store_and_release(refresher, "")  # the next one fetches
            raise
        renewing.cancel()
        await self._store_and_release(refresher, token)
        return token

    async def _store_and_release(self, refresher: str, token: str) -> None:
        args = [refresher, token, str(TOKEN_TTL_S * 1000)]
        keys = [self._token_key, self._lock_key]
        await self._ctx.run(WHAT, self._store(keys=keys, args=args))

    async def _keep_the_lease(self, refresher: str) -> None:
        """Renews the refresh lock every third of its lease while the fetch runs; a
        renewal Redis refuses is reported (``ctx.run``) and tried again next time."""
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            with contextlib.suppress(Exception):
                args = [refresher, str(self._lease_ms)]
                await self._ctx.run(WHAT, self._renew(keys=[self._lock_key], args=args))

    async def forget(self, token: str) -> None:
        if self._token == token:
            self._token = None
        await self._ctx.run(WHAT, self._forget(keys=[self._token_key], args=[token]))

    async def reject(self, error: PardotAuthFailed, *, for_s: float) -> None:
        """Shares ``error`` for ``for_s`` (Redis's expiry: one clock for every replica).
        Only what the error says is kept: its message (which names the keys to fix,
        never their values), its reason and its metadata."""
        kept = {"message": error.message, "reason": error.reason, "metadata": error.metadata}
        ttl_ms = max(1, round(for_s * 1000))
        await self._ctx.run(
            WHAT, self._ctx.client.set(self._rejection_key, json.dumps(kept), px=ttl_ms)
        )

    async def rejection(self) -> PardotAuthFailed | None:
        kept = await self._ctx.run(WHAT, self._ctx.client.get(self._rejection_key))
        if kept is None:
            return None
        fields = json.loads(kept)
        return PardotAuthFailed(
            fields["message"], reason=Reason[fields["reason"]], metadata=fields["metadata"]
        )

    def close(self) -> None:
        """Stops this process's fetch (it releases the lock for the next refresher)."""
        if self._flight is not None:
            self._flight.cancel()


def _retrieve(flight: asyncio.Task[str]) -> None:
    """Mark a flight's failure as seen even when every caller stopped waiting for it."""
    if not flight.cancelled():
        flight.exception()
