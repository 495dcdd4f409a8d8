"""The suppressions: the people ``Forget`` erased, kept as keyed hashes so that a later
identify or track for them is refused instead of re-creating them (issue 15,
"Erasure"; docs/erasure.md).

A digest is HMAC-SHA256, under the backend's suppression key, of the scope (the Pardot
account, ``server.forget`` says why) and one identifier (``email:<normalized email>``,
``id:<pardot id>``, ``field:<lookup field>:<value>``, ``user:<user id>``): never the
plain value. Without
the key, a digest says nothing about whom it names, and nobody can test a guessed
email against the store; with the key, a stolen copy lets its thief test guesses one
by one, which is what a suppression list must allow the service itself to do.

The key: ``server.suppression_key`` when an operator configures it (kept out of the
state, so a stolen state dump cannot test guesses), else generated once and kept with
the state (:func:`file_key`; Redis ``SET NX``). Digests cannot be re-hashed under
another key (they hold no plain value), so a key change would silently un-forget
everyone: each store keeps a *key check* (:func:`key_check`, an HMAC under the key of a
fixed text: it tells whether a key is the right one, never what it is) and
:func:`settled_key` refuses any other key with :class:`SuppressionKeyChanged`. The
first key a store uses is its key: the generated one can be adopted by configuring
that very value (docs/erasure.md says how, and how to start over on purpose).

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
from collections.abc import AsyncIterator
from itertools import groupby, islice
from pathlib import Path

import structlog

from clients.state.health import StateHealth
from clients.state.local_db import FILE_MODE, open_local_db, probe_folder
from strategies.core.errors import StateUnwritable

log = structlog.get_logger("clients.state.suppressions")

#: How the suppressions name themselves to the state's health (and in the status).
WHAT = "the suppressions"
#: Bytes of a generated suppression key.
KEY_BYTES = 32
#: Digests :meth:`SqliteSuppressions.recorded` hands out at once: bounded memory
#: however many people were forgotten.
LISTED_AT_ONCE = 1000


def digest(key: bytes, scope: str, identifier: str) -> str:
    """The suppression digest of ``identifier`` in ``scope`` (hex). The scope is inside
    the HMAC, so a person forgotten in one Pardot account is not refused in another,
    and a digest copied between scopes matches nothing."""
    message = f"{scope}\x00{identifier}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


#: What the key check is an HMAC of (changing it would refuse every store's key).
_CHECKED_TEXT = b"prospectsync suppression key check v1"


class SuppressionKeyChanged(StateUnwritable):
    """The key is not the one the store's suppressions were recorded under: hashing
    under it would let every forgotten person through, so the store refuses to work
    (the service refuses to start; a call reaching such a store is refused before any
    Pardot call). The message names the setting, never a key."""


def key_check(key: bytes) -> str:
    """What the state keeps to know its key again: an HMAC under the key of a fixed
    text. It cannot be turned back into the key, and it tests only a guessed *key*
    (256 random bits), never a guessed email."""
    return hmac.new(key, _CHECKED_TEXT, hashlib.sha256).hexdigest()


def settled_key(
    configured: bytes | None, kept: bytes | None, recorded_check: str | None, where: str
) -> bytes:
    """The key a store hashes with: ``configured`` (``server.suppression_key``) when
    set, else ``kept`` (the generated one in the state); refused unless it matches what
    the store recorded (``recorded_check``; a store from before the check existed
    answers with its kept key's). ``where`` names the store for the message."""
    key = configured if configured is not None else kept
    if key is None:
        raise ValueError("a suppression store needs a configured or a kept key")
    if recorded_check is None and kept is not None:
        recorded_check = key_check(kept)
    if recorded_check is not None and not hmac.compare_digest(recorded_check, key_check(key)):
        now = "server.suppression_key" if configured is not None else "the generated key"
        raise SuppressionKeyChanged(
            f"the suppressions in {where} were recorded under another key than {now}: "
            "under it every person erased with Forget would be let through again. Set "
            "server.suppression_key to the key they were recorded under (docs/erasure.md, "
            '"The key check, and changing the key"), which also says how to give them up '
            "on purpose"
        )
    if configured is not None and kept is not None:
        log.warning(
            "suppressions.key_in_state",
            where=where,
            fix="server.suppression_key is set: once every replica has it, delete the "
            "generated key from the state (docs/erasure.md)",
        )
    return key


def configured_key(text: str) -> bytes | None:
    """``server.suppression_key``'s bytes (hex, checked by ``server.config``); None when
    unset."""
    return bytes.fromhex(text.strip()) if text else None


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


def existing_file_key(path: Path) -> bytes | None:
    """The generated key in ``path`` if there is one (never creates it)."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        return None


def _read_key(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 2 * KEY_BYTES:  # a creator still writing it: never hash under less
        raise OSError(f"the suppression key {path} is incomplete")
    return bytes.fromhex(text)


class SqliteSuppressions:
    """Suppressions in SQLite: one indexed row per digest. ``any_of`` is one statement
    however many digests a call carries."""

    def __init__(
        self,
        path: Path,
        key_path: Path,
        *,
        key: bytes | None = None,
        health: StateHealth | None = None,
    ) -> None:
        """``key``: the configured one (then ``key_path`` is only read, for the check
        of a store that knew no other), else the generated one in ``key_path``. Raises
        SuppressionKeyChanged when the key is not the store's."""
        folder = path.parent
        self._health = health or StateHealth(lambda: probe_folder(folder))
        self._db = open_local_db(
            path,
            "CREATE TABLE IF NOT EXISTS suppressions ("
            " connection TEXT NOT NULL, digest TEXT NOT NULL,"
            " PRIMARY KEY (connection, digest))",
            "CREATE TABLE IF NOT EXISTS key_check ("
            " one INTEGER PRIMARY KEY CHECK (one = 1), check_digest TEXT NOT NULL)",
        )
        try:
            kept = existing_file_key(key_path) if key is not None else file_key(key_path)
            self._key = settled_key(key, kept, self._recorded_check(), str(path))
            self._db.execute(
                "INSERT OR IGNORE INTO key_check (one, check_digest) VALUES (1, ?)",
                (key_check(self._key),),
            )
        except BaseException:
            self._db.close()
            raise

    def _recorded_check(self) -> str | None:
        row = self._db.execute("SELECT check_digest FROM key_check WHERE one = 1").fetchone()
        return None if row is None else str(row[0])

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

    async def recorded(self) -> AsyncIterator[tuple[str, tuple[str, ...]]]:
        try:
            rows = self._db.execute(
                "SELECT connection, digest FROM suppressions ORDER BY connection, digest"
            )
            for scope, group in groupby(rows, key=lambda row: str(row[0])):
                while chunk := tuple(str(row[1]) for row in islice(group, LISTED_AT_ONCE)):
                    yield scope, chunk
        except sqlite3.Error as error:
            raise self._health.failed(WHAT, error) from error

    def close(self) -> None:
        self._db.close()


class MemorySuppressions:
    """A set, for unit tests and connections built without a backend; its key is the
    configured one, else new with every store (nothing outlives the process)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(KEY_BYTES)
        self._set: set[tuple[str, str]] = set()

    async def hash_key(self) -> bytes:
        return self._key

    async def add(self, connection: str, digests: tuple[str, ...]) -> None:
        self._set.update((connection, d) for d in digests)

    async def any_of(self, connection: str, digests: tuple[str, ...]) -> bool:
        return any((connection, d) in self._set for d in digests)

    async def recorded(self) -> AsyncIterator[tuple[str, tuple[str, ...]]]:
        for scope, group in groupby(sorted(self._set), key=lambda pair: pair[0]):
            yield scope, tuple(d for _, d in group)

    def close(self) -> None:
        self._set.clear()
