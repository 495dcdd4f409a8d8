"""Per-person locks in this process: ``clients.state.protocols.PersonLocks`` for the
embedded backend (one process). Replicas sharing a Redis identity map need the Redis
backend's shared locks instead. It never sleeps and never talks to the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLocks:
    """One asyncio lock per identity key, so concurrent first identifies of one person
    resolve one after another and create one prospect. Locks are dropped when no one
    holds or waits for them, so memory follows concurrency, not history."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, connection: str, key: str) -> AsyncIterator[None]:
        slot = (connection, key)
        lock, users = self._locks.get(slot, (asyncio.Lock(), 0))
        self._locks[slot] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[slot]
            if users == 1:
                del self._locks[slot]
            else:
                self._locks[slot] = (lock, users - 1)
