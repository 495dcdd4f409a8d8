"""The suppressions in Redis: ``clients.state.protocols.Suppressions`` shared by every
replica, so a person forgotten through one replica is refused by all of them.

Keys, under the backend's prefix:

- ``suppressed:<connection>`` → a set of digests (``clients.state.suppressions``
  says what a digest is): ``any_of`` is one SMISMEMBER, ``add`` one SADD;
- ``suppression-key`` → the generated HMAC key, set once with SET NX by the first
  replica that needs it and read by the others, so every replica hashes alike. Never
  written when ``server.suppression_key`` is configured (then the key stays out of
  Redis);
- ``suppression-key-check`` → the key check (``clients.state.suppressions.key_check``),
  set once with SET NX by the first replica that uses a key: a replica with another key
  (a changed or forgotten setting, one replica configured differently) is refused
  instead of letting forgotten people through. Each store settles its key once and
  keeps it. ``prospect-sync state migrate`` brings the SQLite state's generated key
  (:meth:`RedisSuppressions.adopt`) before any replica sets one.

No TTL: a suppression lasts until an operator removes it (docs/erasure.md).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator

from clients.state.redis.context import RedisContext
from clients.state.suppressions import KEY_BYTES, WHAT, key_check, settled_key


class RedisSuppressions:
    """The suppressions of the Redis backend ``ctx``; ``key`` is the configured one
    (``server.suppression_key``), None to use the generated key kept in Redis."""

    def __init__(self, ctx: RedisContext, key: bytes | None = None) -> None:
        self._ctx = ctx
        self._configured = key
        self._key: bytes | None = None

    async def hash_key(self) -> bytes:
        """The settled key (raises SuppressionKeyChanged when it is not the one the
        suppressions were recorded under); read once, then kept."""
        if self._key is None:
            where = self._where
            kept = await self._kept_key(create=self._configured is None)
            check_name = self._check_name
            client = self._ctx.client
            recorded = _text(await self._ctx.run(WHAT, client.get(check_name)))
            key = settled_key(self._configured, kept, recorded, where)
            if recorded is None:
                await self._ctx.run(WHAT, client.set(check_name, key_check(key), nx=True))
                # Another replica may have set its own meanwhile: settle against it.
                won = _text(await self._ctx.run(WHAT, client.get(check_name)))
                if won != key_check(key):
                    settled_key(self._configured, kept, won, where)  # raises
            self._key = key
        return self._key

    async def adopt(self, key: bytes) -> bool:
        """Makes ``key`` (another backend's generated key: ``state migrate`` brings the
        SQLite one) Redis's generated key unless Redis has one already (SET NX, as a
        replica sets a fresh one): True when Redis took it now. :meth:`hash_key` then
        says which key Redis has. Writes nothing when Redis's key check is another
        key's (SuppressionKeyChanged): that Redis holds suppressions ``key`` cannot
        match."""
        client = self._ctx.client
        recorded = _text(await self._ctx.run(WHAT, client.get(self._check_name)))
        settled_key(None, key, recorded, self._where)
        name = self._ctx.key("suppression-key")
        return bool(await self._ctx.run(WHAT, client.set(name, key.hex(), nx=True)))

    @property
    def _check_name(self) -> str:
        return self._ctx.key("suppression-key-check")

    @property
    def _where(self) -> str:
        return f"Redis ({self._ctx.key('suppressed')}:*)"

    async def _kept_key(self, *, create: bool) -> bytes | None:
        """The generated key in Redis; set first (SET NX) when ``create``."""
        name = self._ctx.key("suppression-key")
        client = self._ctx.client
        if create:
            fresh = secrets.token_bytes(KEY_BYTES).hex()
            await self._ctx.run(WHAT, client.set(name, fresh, nx=True))
        text = _text(await self._ctx.run(WHAT, client.get(name)))
        if text is None:
            if create:  # deleted between the two commands: an operator's doing
                raise self._ctx.failed(WHAT, RuntimeError("the suppression key vanished"))
            return None
        return bytes.fromhex(text)

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

    async def recorded(self) -> AsyncIterator[tuple[str, tuple[str, ...]]]:
        """A SCAN of the prefix's ``suppressed:*`` sets, each read by SSCAN: for an
        operator's tool, never on a call's path."""
        client = self._ctx.client
        head = self._ctx.key("suppressed", "")
        pattern = _glob_escaped(head) + "*"
        names = await self._ctx.run(WHAT, _all(client.scan_iter(match=pattern, count=1000)))
        for name in sorted(names):
            members = await self._ctx.run(WHAT, _all(client.sscan_iter(name, count=1000)))
            if members:
                scope = _unescaped(name.decode()[len(head) :])
                yield scope, tuple(sorted(m.decode() for m in members))

    def close(self) -> None:
        """Nothing of its own to close: the client is the backend's (``RedisState``)."""


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


async def _all(items: AsyncIterator[bytes]) -> list[bytes]:
    return [item async for item in items]


def _glob_escaped(text: str) -> str:
    """``text`` matched literally by a SCAN pattern (a prefix may hold ``*`` or ``[``)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _unescaped(part: str) -> str:
    """A key part back as it was named (``RedisContext.key`` escapes ``%`` and ``:``)."""
    return re.sub("%(25|3A)", lambda m: "%" if m[1] == "25" else ":", part)
