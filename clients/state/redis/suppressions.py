"""The suppressions in Redis: ``clients.state.protocols.Suppressions`` shared by every
replica, so a person forgotten through one replica is refused by all of them.

Keys, under the backend's prefix:

- ``suppressed:<connection>`` → a set of digests (``clients.state.suppressions``
  says what a digest is): ``any_of`` is one SMISMEMBER, ``add`` one SADD;
- ``suppression-key`` → the HMAC key, set once with SET NX by the first replica that
  needs it and read by the others, so every replica hashes alike. Each store reads it
  once and keeps it.

No TTL: a suppression lasts until an operator removes it (docs/erasure.md).
"""

from __future__ import annotations

import secrets

from clients.state.redis.context import RedisContext
from clients.state.suppressions import KEY_BYTES, WHAT


class RedisSuppressions:
    """The suppressions of the Redis backend ``ctx``."""

    def __init__(self, ctx: RedisContext) -> None:
        self._ctx = ctx
        self._key: bytes | None = None

    async def hash_key(self) -> bytes:
        if self._key is None:
            name = self._ctx.key("suppression-key")
            client = self._ctx.client
            fresh = secrets.token_bytes(KEY_BYTES).hex()
            await self._ctx.run(WHAT, client.set(name, fresh, nx=True))
            stored = await self._ctx.run(WHAT, client.get(name))
            if stored is None:  # deleted between the two commands: an operator's doing
                raise self._ctx.failed(WHAT, RuntimeError("the suppression key vanished"))
            text = stored.decode() if isinstance(stored, bytes) else str(stored)
            self._key = bytes.fromhex(text)
        return self._key

    def _set(self, connection: str) -> str:
        return self._ctx.key("suppressed", connection)

    async def add(self, connection: str, digests: tuple[str, ...]) -> None:
        if digests:
            await self._ctx.run(WHAT, self._ctx.client.sadd(self._set(connection), *digests))

    async def any_of(self, connection: str, digests: tuple[str, ...]) -> bool:
        if not digests:
            return False
        found = await self._ctx.run(
            WHAT, self._ctx.client.smismember(self._set(connection), list(digests))
        )
        return any(found)

    def close(self) -> None:
        """Nothing of its own to close: the client is the backend's (``RedisState``)."""
