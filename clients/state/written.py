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

import asyncio
import contextlib
import json
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
#: How long remembered writes wait to be written together (a crash loses at most these).
GROUP_WRITE_S = 0.005
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
    """SQLite store, one row per (connection, prospect): its digests as a JSON object,
    merged by SQLite's ``json_patch``. Calls run on the event loop thread, as the
    identity map's do.

    Remembering is written behind: the changes of :data:`GROUP_WRITE_S` go to the file
    in one transaction (a commit a call was ~90 µs, the costliest state write of an
    identify). This store sees its own pending changes at once; another store on the
    file sees them once written. Safe because losing memory is: a crash loses at most
    that much of it, and the next write of those prospects is sent. A failed group write
    (a full disk) is logged and its digests dropped, never left to vouch for a value; it
    does not turn the state's health NOT_SERVING, since nothing is lost but calls saved
    (the stores whose loss matters report the disk on their own writes)."""

    def __init__(self, path: Path, *, health: StateHealth | None = None) -> None:
        folder = path.parent
        self._health = health or StateHealth(lambda: probe_folder(folder))
        self._db = open_local_db(
            path,
            "CREATE TABLE IF NOT EXISTS prospect_digests ("
            " connection TEXT NOT NULL, prospect_id INTEGER NOT NULL, digests TEXT NOT NULL,"
            " PRIMARY KEY (connection, prospect_id)) WITHOUT ROWID",
        )
        #: Changes not written yet, per prospect: digests to merge, or None to forget.
        self._pending: dict[tuple[str, int], dict[str, str] | None] = {}
        #: Prospects forgotten and written again since: their row is replaced, not merged.
        self._replace: set[tuple[str, int]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def digests(self, connection: str, prospect_id: int) -> dict[str, str]:
        key = (connection, prospect_id)
        if key in self._pending and self._pending[key] is None:
            return {}  # forgotten, not written yet
        if key in self._replace:  # forgotten, then written again: the row is gone
            return dict(self._pending[key] or {})
        stored = self._stored(connection, prospect_id)
        return {**stored, **(self._pending.get(key) or {})}

    def _stored(self, connection: str, prospect_id: int) -> dict[str, str]:
        try:
            row = self._db.execute(
                "SELECT digests FROM prospect_digests WHERE connection=? AND prospect_id=?",
                (connection, prospect_id),
            ).fetchone()
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error
        if row is None:
            return {}
        stored = json.loads(row[0])
        return {str(name): str(value) for name, value in stored.items()}

    async def wrote(self, connection: str, prospect_id: int, digests: dict[str, str]) -> None:
        key = (connection, prospect_id)
        pending = self._pending.get(key)
        if key in self._pending and pending is None:
            # Forgotten, then written again: the row goes and these digests replace it.
            self._pending[key] = dict(digests)
            self._replace.add(key)
        else:
            self._pending[key] = {**(pending or {}), **digests}
        self._plan()

    async def forget(self, connection: str, prospect_id: int) -> None:
        key = (connection, prospect_id)
        self._pending[key] = None
        self._replace.discard(key)
        self._plan()

    def _plan(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(GROUP_WRITE_S, self.flush)

    def flush(self) -> None:
        """Writes the pending changes now, in one transaction."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        pending, self._pending = self._pending, {}
        replace, self._replace = self._replace, set()
        if not pending:
            return
        gone = [key for key, digests in pending.items() if digests is None or key in replace]
        merged = [
            (*key, json.dumps(digests, separators=(",", ":")))
            for key, digests in pending.items()
            if digests is not None
        ]
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "DELETE FROM prospect_digests WHERE connection=? AND prospect_id=?", gone
                )
                self._db.executemany(
                    "INSERT INTO prospect_digests (connection, prospect_id, digests)"
                    " VALUES (?, ?, ?) ON CONFLICT (connection, prospect_id)"
                    " DO UPDATE SET digests = json_patch(digests, excluded.digests)",
                    merged,
                )
        except sqlite3.Error as error:  # dropped: safe (the class docstring)
            log.warning("written.group_write_failed", prospects=len(pending), error=str(error))

    def close(self) -> None:
        self.flush()
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
