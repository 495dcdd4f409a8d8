"""The suppressions: the people ``Forget`` erased, kept as keyed hashes so that a later
identify or track for them is refused instead of re-creating them (issue 15,
"Erasure"; docs/erasure.md).

A digest is HMAC-SHA256, under the backend's suppression key, of the scope (the Pardot
account, ``server.forget`` says why) and one identifier (``email:<normalized email>``,
``id:<pardot id>``, ``field:<lookup field>:<value>``, ``user:<user id>``): never the
plain value. Without
the key, a digest says nothing about whom it names, and nobody can test a guessed
email against the store; with the key (it is kept beside the state, see
:func:`file_key`), a stolen copy lets its thief test guesses one by one, which is what
a suppression list must allow the service itself to do.

Two implementations of ``clients.state.protocols.Suppressions``: SQLite under
``server.state_dir`` (the embedded default: it survives a restart; the key in a 0600
file beside it) and memory (connections built without a backend: tests, tools).
Redis has its own (``clients.state.redis.suppressions``). A store that cannot read or
write reports to the backend's health and raises StateUnwritable, as the identity map
does: a call that cannot ask whether its person was forgotten is refused before it
writes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
from pathlib import Path

from clients.state.health import StateHealth
from clients.state.local_db import FILE_MODE, open_local_db, probe_folder

#: How the suppressions name themselves to the state's health (and in the status).
WHAT = "the suppressions"
#: Bytes of a generated suppression key.
KEY_BYTES = 32


def digest(key: bytes, scope: str, identifier: str) -> str:
    """The suppression digest of ``identifier`` in ``scope`` (hex). The scope is inside
    the HMAC, so a person forgotten in one Pardot account is not refused in another,
    and a digest copied between scopes matches nothing."""
    message = f"{scope}\x00{identifier}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def file_key(path: Path) -> bytes:
    """The suppression key kept in ``path``: created once (random, 0600, written
    before anyone reads it), then read. Two processes on one state_dir race with
    O_EXCL: the loser reads the winner's key, so both hash alike."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return _read_key(path)
    try:
        os.write(descriptor, secrets.token_bytes(KEY_BYTES).hex().encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 2 * KEY_BYTES:  # a creator still writing it: never hash under less
        raise OSError(f"the suppression key {path} is incomplete")
    return bytes.fromhex(text)


class SqliteSuppressions:
    """Suppressions in SQLite: one indexed row per digest. ``any_of`` is one statement
    however many digests a call carries."""

    def __init__(self, path: Path, key_path: Path, *, health: StateHealth | None = None) -> None:
        folder = path.parent
        self._health = health or StateHealth(lambda: probe_folder(folder))
        self._db = open_local_db(
            path,
            "CREATE TABLE IF NOT EXISTS suppressions ("
            " connection TEXT NOT NULL, digest TEXT NOT NULL,"
            " PRIMARY KEY (connection, digest))",
        )
        self._key = file_key(key_path)

    async def hash_key(self) -> bytes:
        return self._key

    async def add(self, connection: str, digests: tuple[str, ...]) -> None:
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO suppressions (connection, digest) VALUES (?, ?)",
                [(connection, d) for d in digests],
            )
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error

    async def any_of(self, connection: str, digests: tuple[str, ...]) -> bool:
        if not digests:
            return False
        marks = ",".join("?" * len(digests))
        try:
            row = self._db.execute(
                f"SELECT 1 FROM suppressions WHERE connection=? AND digest IN ({marks}) LIMIT 1",
                (connection, *digests),
            ).fetchone()
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error
        return row is not None

    def close(self) -> None:
        self._db.close()


class MemorySuppressions:
    """A set, for unit tests and connections built without a backend; its key is new
    with every store (nothing outlives the process)."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(KEY_BYTES)
        self._set: set[tuple[str, str]] = set()

    async def hash_key(self) -> bytes:
        return self._key

    async def add(self, connection: str, digests: tuple[str, ...]) -> None:
        self._set.update((connection, d) for d in digests)

    async def any_of(self, connection: str, digests: tuple[str, ...]) -> bool:
        return any((connection, d) in self._set for d in digests)

    def close(self) -> None:
        self._set.clear()
