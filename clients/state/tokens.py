"""A connection's API token, in this process: ``clients.state.protocols.TokenStore`` for
the embedded backend (one process).

The token is cached here and refreshed SINGLE-FLIGHT: when many calls need a new token,
one fetch runs and every call that needs a token meanwhile shares its outcome. The
fetch is a task of its own, shielded from any one caller: a caller whose deadline
passes stops waiting, but the fetch goes on for the others. (When it belonged to the
caller that started it, that caller's deadline cancelled it, and the callers queued
behind fetched again: two token requests where one was due.) After the credentials
were rejected, the error is kept for the cooldown its caller asked for.

What a fetch is (an OAuth grant, a legacy login), what a refusal means and who is told
of a new token are ``clients.auth``'s: the fetch comes in as a function. Replicas each
hold their own token here (the Redis backend shares one). It never talks to the
network itself and holds nothing but the token and the last rejection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from strategies.core.errors import PardotAuthFailed


class MemoryTokenStore:
    """One connection's token, its fetch in flight and its rejection, in memory."""

    def __init__(self) -> None:
        self._token: str | None = None
        self._rejection: tuple[float, PardotAuthFailed] | None = None  # (until, error)
        #: The fetch in progress, shared by every caller that needs a token meanwhile.
        self._flight: asyncio.Task[str] | None = None

    def current(self) -> str | None:
        return self._token

    async def refresh(self, stale: str | None, fetch: Callable[[], Awaitable[str]]) -> str:
        if self._token is not None and self._token != stale:
            return self._token
        flight = self._flight
        if flight is None:
            self._token = None  # nobody may use the refused token while a new one comes
            flight = asyncio.ensure_future(self._fly(fetch))
            flight.add_done_callback(_retrieve)
            self._flight = flight
        return await asyncio.shield(flight)

    async def _fly(self, fetch: Callable[[], Awaitable[str]]) -> str:
        try:
            token = await fetch()
        finally:
            self._flight = None
        self._token = token
        return token

    async def forget(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def reject(self, error: PardotAuthFailed, *, for_s: float) -> None:
        self._rejection = (time.monotonic() + for_s, error)

    async def rejection(self) -> PardotAuthFailed | None:
        if self._rejection is None:
            return None
        until, error = self._rejection
        if time.monotonic() < until:
            return error
        self._rejection = None
        return None

    def close(self) -> None:
        if self._flight is not None:
            self._flight.cancel()


def _retrieve(flight: asyncio.Task[str]) -> None:
    """Mark a flight's failure as seen even when every caller stopped waiting for it."""
    if not flight.cancelled():
        flight.exception()
