"""The state files hold emails: only the service's own user may read them.

Every local state file is opened by ``clients.state.local_db.open_local_db`` (the
identity map, the message_id records, the backfill journal): it creates the files 0600
(SQLite gives the -wal and -shm siblings the mode of their database), the folders it
creates 0700, and warns when a file or the folder it finds is open to others.

Modes are read from ``st_mode`` bits, which root does not bypass: these tests hold
under root as under any user. The umask is set to the usual 022, under which SQLite
alone would create 0644 files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from clients.state.identity import SqliteIdentityStore
from clients.state.local import IDEMPOTENCY_FILE, IDENTITY_FILE
from clients.state.local_db import open_local_db
from clients.state.responses import ResponseStore
from server.backfill.journal import JOURNAL_FILE, BackfillJournal

#: What a state file is opened by, and closed with: each kind the service keeps.
Opener = Callable[[Path], Awaitable[Callable[[], None]]]


async def _identity_map(state_dir: Path) -> Callable[[], None]:
    store = SqliteIdentityStore(state_dir / IDENTITY_FILE)
    await store.remember("default", "email", "a@example.com", 1)  # a write: the -wal exists
    return store.close


async def _message_id_records(state_dir: Path) -> Callable[[], None]:
    store = ResponseStore(state_dir / IDEMPOTENCY_FILE, window_s=60.0)
    return store.close


async def _backfill_journal(state_dir: Path) -> Callable[[], None]:
    journal = BackfillJournal(state_dir / JOURNAL_FILE, "job")
    journal.forget()
    return journal.close


KINDS: dict[str, tuple[str, Opener]] = {
    "identity map": (IDENTITY_FILE, _identity_map),
    "message_id records": (IDEMPOTENCY_FILE, _message_id_records),
    "backfill journal": (JOURNAL_FILE, _backfill_journal),
}


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("kind", KINDS)
async def test_each_state_file_and_its_siblings_are_owner_only(tmp_path: Path, kind: str) -> None:
    file, opener = KINDS[kind]
    state_dir = tmp_path / "state"
    close = await opener(state_dir)
    try:
        database = state_dir / file
        siblings = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert all(path.exists() for path in siblings), sorted(os.listdir(state_dir))
        assert {path.name: oct(mode(path)) for path in siblings} == {
            path.name: oct(0o600) for path in siblings
        }
    finally:
        close()


def test_the_folders_the_service_creates_are_owner_only(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    state_dir = tmp_path / "var" / "prospectsync"
    db = open_local_db(state_dir / "some.sqlite3", "CREATE TABLE t (x)")
    db.close()
    assert oct(mode(state_dir)) == oct(0o700)
    assert oct(mode(tmp_path / "var")) == oct(0o700)
    assert oct(mode(tmp_path)) == oct(0o755)  # it existed: left as it was


def _wide(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "state.mode_too_wide"]


def test_an_existing_file_open_to_others_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "state" / "some.sqlite3"
    path.parent.mkdir(mode=0o700)
    db = open_local_db(path, "CREATE TABLE t (x)")
    db.close()
    path.chmod(0o644)  # as an earlier version created it
    with capture_logs() as logs:
        db = open_local_db(path)
        db.close()
    [warning] = _wide(logs)
    assert warning["log_level"] == "warning"
    assert warning["path"] == str(path)
    assert warning["mode"] == "0644"
    assert warning["expected"] == "0600"
    assert oct(mode(path)) == oct(0o644)  # warned, not changed: the operator's to decide


def test_an_existing_folder_open_to_others_is_warned_about(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state_dir.chmod(0o755)
    with capture_logs() as logs:
        db = open_local_db(state_dir / "some.sqlite3", "CREATE TABLE t (x)")
        db.close()
    [warning] = _wide(logs)
    assert warning["path"] == str(state_dir)
    assert warning["mode"] == "0755"
    assert warning["expected"] == "0700"
    # The new file in it is still the owner's alone.
    assert oct(mode(state_dir / "some.sqlite3")) == oct(0o600)


def test_owner_only_files_and_folders_open_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "state" / "some.sqlite3"
    db = open_local_db(path, "CREATE TABLE t (x)")
    db.close()
    with capture_logs() as logs:
        db = open_local_db(path)
        db.execute("INSERT INTO t VALUES (1)")
        db.close()
    assert _wide(logs) == []
