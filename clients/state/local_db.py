"""The one way the service opens a local SQLite file under ``server.state_dir`` (the
identity map, the message_id records, the backfill journal), and the one way it checks
that the folder can still be written (:func:`probe_folder`).

WAL lets the server and a backfill run read and write the same file at once;
``synchronous=NORMAL`` is durable across a process crash (only an OS crash can lose the
last commits, which cost one extra Pardot read later, never a wrong answer). Autocommit:
every statement the callers run is one small transaction unless they open one
themselves (the message_id records group several calls' records in one).

The files hold emails and lookup values, so they are the service user's alone: a file
is created 0600 before SQLite opens it (SQLite gives its -wal and -shm the database's
mode), a folder this module creates is 0700, and one it finds open to others (an
earlier version's 0644 files, a 0755 folder) is reported as ``state.mode_too_wide``,
never changed: widening or narrowing a folder an operator set up is theirs to decide.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import structlog

log = structlog.get_logger("clients")

#: Owner read and write: the mode state files are created with.
FILE_MODE = 0o600
#: Owner only: the mode of the folders this module creates.
FOLDER_MODE = 0o700
#: SQLite's siblings of a database in WAL mode.
_SIBLINGS = ("-wal", "-shm")
#: Where :func:`probe_folder` writes, inside the state folder.
PROBE_FILE = ".write-probe"
#: What :func:`probe_folder` writes: a few SQLite pages, about what the next commits need.
PROBE_BYTES = 64 * 1024


def open_local_db(path: Path, *schema: str) -> sqlite3.Connection:
    """Opens (creating folders and file as needed, owner-only) and runs the ``CREATE …
    IF NOT EXISTS`` statements of ``schema``. Shared by the event loop thread only."""
    _ensure_folder(path.parent)
    _ensure_file(path)
    for suffix in _SIBLINGS:  # left by a crash; those SQLite creates get the file's mode
        sibling = Path(f"{path}{suffix}")
        if sibling.exists():
            _warn_if_wide(sibling, FILE_MODE)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in schema:
        db.execute(statement)
    return db


def probe_folder(folder: Path) -> None:
    """Writes, syncs and removes :data:`PROBE_BYTES` in ``folder``: raises OSError while
    the folder cannot take a write (a full disk, a read-only mount, a path that is no
    longer a folder). The state's health runs it, in a worker thread, until it passes."""
    probe = folder / PROBE_FILE
    descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(descriptor, bytes(PROBE_BYTES))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
        probe.unlink(missing_ok=True)


def _ensure_folder(folder: Path) -> None:
    """``folder`` and its missing parents, each created 0700 (``Path.mkdir`` gives the
    parents it creates the default mode, whatever mode it is asked for)."""
    missing: list[Path] = []
    for level in (folder, *folder.parents):
        if level.exists():
            break
        missing.append(level)
    if not missing:
        _warn_if_wide(folder, FOLDER_MODE)
    for level in reversed(missing):
        level.mkdir(mode=FOLDER_MODE, exist_ok=True)


def _ensure_file(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _warn_if_wide(path, FILE_MODE)
    else:
        os.close(descriptor)  # empty: SQLite makes a database of it


def _warn_if_wide(path: Path, expected: int) -> None:
    actual = stat.S_IMODE(path.stat().st_mode)
    if actual & ~expected:
        log.warning(
            "state.mode_too_wide",
            path=str(path),
            mode=f"{actual:04o}",
            expected=f"{expected:04o}",
            fix=f"chmod {expected:o} {path}",
        )
