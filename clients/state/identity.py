"""The identity map: what earlier calls learned about which Pardot prospect is whom.

Pardot v4 can be read only by email, id or fid, so a prospect matched by a custom lookup
field costs a read by email every time, and a changed email finds nothing. Remembering
(connection, namespace, key) → prospect id fixes both: a warm identify is one update
by id, and an email change updates the prospect the lookup value already names.

Namespaces: ``email``, ``fid`` and ``field:<lookup field id>``. Only facts are stored:
an id Pardot returned for that key. A planned write (dry run) or a batch answer without
ids teaches nothing. Entries go when Pardot says the id is gone (err 3).

Two implementations of ``clients.state.protocols.IdentityStore``: SQLite in WAL mode
under ``server.state_dir`` (the embedded default: it survives a restart and needs no
server) and a dict (unit tests, and connections built without a store). The strategies
see one connection's part of it through :class:`IdentityView`.

A store that cannot read or write its file (a full disk) reports it to the backend's
``clients.state.health.StateHealth`` and raises StateUnwritable: the call fails before
its Pardot write, and the next ones are refused until the state can be written again.
The one write that comes after a Pardot write, :meth:`IdentityView.remember`, does
not fail its call: Pardot has applied the write, so the caller gets its result, and
the failure has already been reported (the next calls are refused before writing).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import structlog

from clients import metrics
from clients.state.health import StateHealth
from clients.state.local_db import open_local_db, probe_folder
from clients.state.protocols import IdentityStore
from strategies.core.errors import StateUnwritable
from strategies.core.model import EMAIL, Prospect

log = structlog.get_logger("clients")

#: How the identity map names itself to the state's health (and so in the status).
WHAT = "the identity map"


def _normal(namespace: str, key: str) -> str:
    # Pardot matches emails case-insensitively; lookup values and fids are exact.
    return key.strip().lower() if namespace == EMAIL else key


class SqliteIdentityStore:
    """SQLite store. Calls run on the event loop thread: each is one indexed statement
    on a local file (tens of microseconds), cheaper than a hop to a worker thread.

    Its failures go to ``health`` (by default one of its own, probing the file's folder:
    nobody watches it, but the failure still raises StateUnwritable)."""

    def __init__(self, path: Path, *, health: StateHealth | None = None) -> None:
        folder = path.parent
        self._health = health or StateHealth(lambda: probe_folder(folder))
        self._db = open_local_db(
            path,
            "CREATE TABLE IF NOT EXISTS identity ("
            " connection TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL,"
            " prospect_id INTEGER NOT NULL,"
            " learned_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),"
            " PRIMARY KEY (connection, namespace, key))",
            "CREATE INDEX IF NOT EXISTS identity_by_prospect ON identity (connection, prospect_id)",
        )

    async def lookup(self, connection: str, namespace: str, key: str) -> int | None:
        try:
            row = self._db.execute(
                "SELECT prospect_id FROM identity WHERE connection=? AND namespace=? AND key=?",
                (connection, namespace, _normal(namespace, key)),
            ).fetchone()
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error
        return int(row[0]) if row else None

    async def remember(self, connection: str, namespace: str, key: str, prospect_id: int) -> None:
        try:
            self._db.execute(
                # learned_at is set here, not by a column default: unixepoch('subsec')
                # needs SQLite 3.42+, and older ones (Debian 12 ships 3.40) store NULL.
                "INSERT INTO identity (connection, namespace, key, prospect_id, learned_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (connection, namespace, key) DO UPDATE SET"
                " prospect_id=excluded.prospect_id, learned_at=excluded.learned_at",
                (connection, namespace, _normal(namespace, key), prospect_id, time.time()),
            )
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error

    async def forget(self, connection: str, prospect_id: int) -> int:
        try:
            return self._db.execute(
                "DELETE FROM identity WHERE connection=? AND prospect_id=?",
                (connection, prospect_id),
            ).rowcount
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error

    def entries(self) -> Iterator[tuple[str, str, str, int]]:
        """Every ``(connection, namespace, key, prospect_id)``, keys as stored (already
        normal): for ``prospect-sync state migrate``, which copies them elsewhere."""
        yield from self._db.execute(
            "SELECT connection, namespace, key, prospect_id FROM identity"
            " ORDER BY connection, namespace, key"
        )

    def close(self) -> None:
        self._db.close()


class MemoryIdentityStore:
    """A dict, for unit tests and for connections built without a store."""

    def __init__(self) -> None:
        self._map: dict[tuple[str, str, str], int] = {}

    async def lookup(self, connection: str, namespace: str, key: str) -> int | None:
        return self._map.get((connection, namespace, _normal(namespace, key)))

    async def remember(self, connection: str, namespace: str, key: str, prospect_id: int) -> None:
        self._map[(connection, namespace, _normal(namespace, key))] = prospect_id

    async def forget(self, connection: str, prospect_id: int) -> int:
        entries = [k for k, v in self._map.items() if k[0] == connection and v == prospect_id]
        for entry in entries:
            del self._map[entry]
        return len(entries)

    def close(self) -> None:
        self._map.clear()


class IdentityView:
    """The map as one connection's strategies see it (``pardot.identity``): implements
    ``strategies.base.IdentityView`` over any :class:`IdentityStore`."""

    def __init__(self, store: IdentityStore, connection: str) -> None:
        self._store = store
        self._connection = connection

    async def lookup(self, namespace: str, key: str) -> int | None:
        found = await self._store.lookup(self._connection, namespace, key)
        metrics.identity_lookup(self._connection, hit=found is not None)
        return found

    async def remember(self, namespace: str, key: str, prospect: Prospect) -> None:
        """Learn that ``key`` names ``prospect`` — only if Pardot said so: a planned
        write (dry run) or an answer without an id teaches nothing. Called after the
        Pardot write, so a store that cannot write does not fail the call (see the
        module docstring)."""
        if key and prospect.id is not None and not prospect.planned:
            try:
                await self._store.remember(self._connection, namespace, key, prospect.id)
            except StateUnwritable:
                # Pardot applied the write: the caller gets its result. The store has
                # told the state's health, so the next calls are refused before writing;
                # what is not remembered is learned again by a later read.
                log.warning(
                    "identity.remember_failed", namespace=namespace, prospect_id=prospect.id
                )

    async def forget(self, prospect_id: int) -> None:
        await self._store.forget(self._connection, prospect_id)
