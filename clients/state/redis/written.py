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

After a write the memory and the identity map learn at once (``strategies.unchanged``):
so that they cost the call one round trip, not two, a ``wrote`` waits one turn of the
event loop for the identity map's script to carry its HSET (:class:`WrittenRides`,
shared by the backend's stores; ``clients.state.redis.identity``), and goes alone if no
script came.

Every command goes through ``RedisContext.run``: a Redis that cannot answer reports to
the backend's health and raises StateUnwritable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.typing import EncodableT, FieldT

from clients.state.redis.context import RedisContext
from clients.state.written import WHAT
from strategies.core.errors import StateUnwritable


def _values(digests: dict[str, str]) -> dict[FieldT, EncodableT]:
    return dict(digests.items())


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


@dataclass(frozen=True)
class WrittenHash:
    """One prospect's HSET waiting for a ride: its key, its field → digest pairs, and
    the future its writer awaits."""

    key: str
    digests: dict[str, str]
    done: asyncio.Future[None]


class WrittenRides:
    """The HSETs of the memory of writes that wait one turn for a script to carry them
    (the identity map's remember takes them: :meth:`take`), else go alone, one pipeline
    for the turn's."""

    def __init__(self, ctx: RedisContext) -> None:
        self._ctx = ctx
        self._waiting: list[WrittenHash] = []
        self._planned = False
        #: Sends of its own under way (a reference keeps a task alive).
        self._sends: set[asyncio.Task[None]] = set()

    def add(self, key: str, digests: dict[str, str]) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(WrittenHash(key, digests, done))
        self._plan()
        return done

    def take(self) -> list[WrittenHash]:
        """What waits, for a script about to go; it settles them (:func:`settle`)."""
        taken, self._waiting = self._waiting, []
        return taken

    def put_back(self, taken: list[WrittenHash]) -> None:
        """The script that took them was cancelled before Redis answered: they go
        alone (their writers may belong to other calls)."""
        self._waiting.extend(written for written in taken if not written.done.done())
        self._plan()

    def _plan(self) -> None:
        """What waits goes alone one turn from now, unless a script took it."""
        if not self._planned:
            self._planned = True
            asyncio.get_running_loop().call_soon(self._go_alone)

    def _go_alone(self) -> None:
        self._planned = False
        taken = self.take()
        if taken:
            send = asyncio.ensure_future(self._send(taken))
            self._sends.add(send)
            send.add_done_callback(self._sends.discard)

    async def _send(self, taken: list[WrittenHash]) -> None:
        pipe = self._ctx.client.pipeline(transaction=False)
        for written in taken:
            pipe.hset(written.key, mapping=_values(written.digests))
        try:
            await self._ctx.run(WHAT, pipe.execute())
        except StateUnwritable as error:
            settle(taken, error)
            return
        settle(taken, None)


def settle(taken: list[WrittenHash], error: StateUnwritable | None) -> None:
    """Each writer learns how its HSET went."""
    for written in taken:
        if written.done.done():
            continue
        if error is None:
            written.done.set_result(None)
        else:
            written.done.set_exception(error)


class RedisWrittenFields:
    """The memory of writes of the Redis backend ``ctx``; its HSETs ride along with the
    identity map's scripts through ``rides`` (one per backend)."""

    def __init__(self, ctx: RedisContext, rides: WrittenRides | None = None) -> None:
        self._ctx = ctx
        self._rides = rides or WrittenRides(ctx)

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
            await self._rides.add(self._key(connection, prospect_id), digests)

    async def forget(self, connection: str, prospect_id: int) -> None:
        await self._ctx.run(WHAT, self._ctx.client.delete(self._key(connection, prospect_id)))

    def close(self) -> None:
        """Nothing of its own to close: the client is the backend's (``RedisState``)."""
