"""The memory of writes: what the service last wrote to each prospect, so that a write
that would change nothing is not sent (issue 15, ``settings.skip_unchanged``;
``strategies.unchanged`` decides).

Kept per (connection, prospect id) and per Pardot field — a digest of the value last
sent, never the value: one write of other fields (a track after an identify) then
neither makes a later identical identify look changed nor a stale one look unchanged.
A digest is BLAKE2b, 10 bytes, salted by the prospect id and keyed by the field name,
so equal values of two prospects or two fields do not share one; it is not a secret
(a value guessed can be checked against it), which is why the state folder stays the
service user's alone (``clients.state.local_db``), as it is for the identity map.

Forgetting is always safe (the next write is sent); what memory cannot know is a change
made in Pardot by someone else, which is why the memory can be turned off.

Three pieces, as for the identity map (``clients.state.identity``): the SQLite store
under ``server.state_dir``, a dict (connections built without a backend), and
:class:`WrittenView`, one connection's part of any store (``pardot.written``,
implementing ``strategies.base.WrittenView``). The Redis store is
``clients.state.redis.written``.

A store that cannot read or write reports it to the backend's
``clients.state.health.StateHealth`` and raises StateUnwritable. The view's
:meth:`WrittenView.wrote` comes after Pardot took the write, so it does not fail the
call (as ``IdentityView.remember``); and since a memory that could not be updated may
hold an older digest, it then tries to forget the prospect.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping
from hashlib import blake2b
from pathlib import Path

import structlog

from clients.state.health import StateHealth
from clients.state.local_db import open_local_db, probe_folder
from clients.state.protocols import WrittenFields
from strategies.core.errors import StateUnwritable

log = structlog.get_logger("clients")

#: How the memory names itself to the state's health (and so in the status).
WHAT = "the memory of writes"
#: Bytes of a digest: 2**-80 is the chance that a changed value reads as unchanged.
DIGEST_BYTES = 10


def digest(prospect_id: int, field: str, value: object) -> str:
    """The digest of ``value`` as written to ``field`` of the prospect. A multi-select
    value (a tuple of options) is told from any single text, and its order counts (it
    is sent in that order)."""
    if isinstance(value, str):
        text = "s\x00" + value
    elif isinstance(value, tuple | list):
        text = "m\x00" + "\x00".join(str(option) for option in value)
    else:
        text = "r\x00" + repr(value)
    hashed = blake2b(
        text.encode("utf-8", "surrogatepass"),
        digest_size=DIGEST_BYTES,
        key=field.encode("utf-8", "surrogatepass")[:64],
        salt=str(prospect_id).encode()[:16],
    )
    return hashed.hexdigest()


class SqliteWrittenFields:
    """SQLite store, one row per (connection, prospect, field). Calls run on the event
    loop thread, as the identity map's do: each is a statement or two on a local file."""

    def __init__(self, path: Path, *, health: StateHealth | None = None) -> None:
        folder = path.parent
        self._health = health or StateHealth(lambda: probe_folder(folder))
        self._db = open_local_db(
            path,
            "CREATE TABLE IF NOT EXISTS written ("
            " connection TEXT NOT NULL, prospect_id INTEGER NOT NULL, field TEXT NOT NULL,"
            " digest TEXT NOT NULL, PRIMARY KEY (connection, prospect_id, field))",
        )

    async def digests(self, connection: str, prospect_id: int) -> dict[str, str]:
        try:
            rows = self._db.execute(
                "SELECT field, digest FROM written WHERE connection=? AND prospect_id=?",
                (connection, prospect_id),
            ).fetchall()
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error
        return {str(field): str(value) for field, value in rows}

    async def wrote(self, connection: str, prospect_id: int, digests: dict[str, str]) -> None:
        try:
            with self._db:  # one transaction: the write's fields land together
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO written (connection, prospect_id, field, digest)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (connection, prospect_id, field)"
                    " DO UPDATE SET digest=excluded.digest",
                    [(connection, prospect_id, f, d) for f, d in digests.items()],
                )
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error

    async def forget(self, connection: str, prospect_id: int) -> None:
        try:
            self._db.execute(
                "DELETE FROM written WHERE connection=? AND prospect_id=?",
                (connection, prospect_id),
            )
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error

    def close(self) -> None:
        self._db.close()


class MemoryWrittenFields:
    """A dict, for connections built without a backend (and the unit tests)."""

    def __init__(self) -> None:
        self._map: dict[tuple[str, int], dict[str, str]] = {}

    async def digests(self, connection: str, prospect_id: int) -> dict[str, str]:
        return dict(self._map.get((connection, prospect_id), {}))

    async def wrote(self, connection: str, prospect_id: int, digests: dict[str, str]) -> None:
        self._map.setdefault((connection, prospect_id), {}).update(digests)

    async def forget(self, connection: str, prospect_id: int) -> None:
        self._map.pop((connection, prospect_id), None)

    def close(self) -> None:
        self._map.clear()


class WrittenView:
    """The memory as one connection's gateways see it (``pardot.written``): implements
    ``strategies.base.WrittenView`` over any :class:`WrittenFields`."""

    def __init__(self, store: WrittenFields, connection: str) -> None:
        self._store = store
        self._connection = connection

    async def unchanged(self, prospect_id: int, fields: Mapping[str, object]) -> bool:
        """Whether the prospect is remembered and every field of ``fields`` was last
        written with this value. A prospect never written is never unchanged, even for
        no fields: only a write the service made vouches for it."""
        remembered = await self._store.digests(self._connection, prospect_id)
        if not remembered:
            return False
        return all(
            remembered.get(name) == digest(prospect_id, name, value)
            for name, value in fields.items()
        )

    async def wrote(self, prospect_id: int, fields: Mapping[str, object]) -> None:
        """Remember that Pardot took ``fields``. After the Pardot write: a store that
        cannot write does not fail the call (the module docstring)."""
        if not fields:
            return
        made = {name: digest(prospect_id, name, value) for name, value in fields.items()}
        try:
            await self._store.wrote(self._connection, prospect_id, made)
        except StateUnwritable:
            log.warning("written.remember_failed", prospect_id=prospect_id)
            # An older digest left behind could vouch for a value Pardot no longer has;
            # if even this fails, the health already refuses the next calls.
            with contextlib.suppress(StateUnwritable):
                await self._store.forget(self._connection, prospect_id)

    async def forget(self, prospect_id: int) -> None:
        await self._store.forget(self._connection, prospect_id)
