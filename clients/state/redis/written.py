"""The memory of writes in Redis: ``clients.state.protocols.WrittenFields`` shared by
every replica, so an identical identify is not sent again whichever replica takes it.

One hash per prospect, ``written:<connection>:<prospect id>`` under the backend's
prefix, field → digest (``clients.state.written`` makes them: never a value). HSET
merges a write's fields in one command and DEL forgets the prospect, so neither needs
a script. No TTL, like the identity map: an entry goes when Pardot says the prospect is
gone or a write to it fails. It costs about 60 bytes per field remembered plus ~100 per
prospect, so a million prospects with ten fields each take some 700 MB — the reason a
deployment that cannot afford it sets ``skip_unchanged: false`` (nothing is stored
then).

Every command goes through ``RedisContext.run``: a Redis that cannot answer reports to
the backend's health and raises StateUnwritable.
"""

from __future__ import annotations

from redis.typing import EncodableT, FieldT

from clients.state.redis.context import RedisContext
from clients.state.written import WHAT


def _values(digests: dict[str, str]) -> dict[FieldT, EncodableT]:
    return dict(digests.items())


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class RedisWrittenFields:
    """The memory of writes of the Redis backend ``ctx``."""

    def __init__(self, ctx: RedisContext) -> None:
        self._ctx = ctx

    def _key(self, connection: str, prospect_id: int) -> str:
        return self._ctx.key("written", connection, str(prospect_id))

    async def digests(self, connection: str, prospect_id: int) -> dict[str, str]:
        found = await self._ctx.run(
            WHAT,
            self._ctx.client.hgetall(self._key(connection, prospect_id)),
        )
        return {_text(f): _text(d) for f, d in found.items()}

    async def wrote(self, connection: str, prospect_id: int, digests: dict[str, str]) -> None:
        if digests:
            await self._ctx.run(
                WHAT,
                self._ctx.client.hset(self._key(connection, prospect_id), mapping=_values(digests)),
            )

    async def forget(self, connection: str, prospect_id: int) -> None:
        await self._ctx.run(WHAT, self._ctx.client.delete(self._key(connection, prospect_id)))

    def close(self) -> None:
        """Nothing of its own to close: the client is the backend's (``RedisState``)."""
