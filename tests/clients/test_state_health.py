"""clients.state.health: the one answer to "can the service's own state be written now?".

A store that fails to write reports to it and raises StateUnwritable; from then on every
call is refused before it writes anything (``check``), until a probe that retries every
few seconds passes again. The probe here is the embedded backend's own
(``clients.state.local_db.probe_folder``) on a real folder, and the full disk is a real
one (a small tmpfs, tests/support/small_disk.py: skipped where mounting is not
permitted). No timing decides a test: waits are bounded polls on what the health
object counts.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs

from clients.state.health import StateHealth
from clients.state.identity import IdentityView
from clients.state.local import IDENTITY_FILE, LocalState
from clients.state.local_db import PROBE_FILE, probe_folder
from strategies.core.errors import Reason, StateUnwritable
from strategies.core.model import EMAIL, Prospect
from support.small_disk import SmallDisk, small_disk
from support.waiting import until

FULL = sqlite3.OperationalError("database or disk is full")


def folder_probe(folder: Path) -> StateHealth:
    return StateHealth(lambda: probe_folder(folder), probe_every_s=0.01)


def block(folder: Path) -> None:
    """A file where the state folder should be: every write into it fails (as root too)."""
    folder.rmdir()
    folder.write_text("not a folder")


def unblock(folder: Path) -> None:
    folder.unlink()
    folder.mkdir()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "state"
    made.mkdir()
    return made


def test_state_starts_writable(folder: Path) -> None:
    health = folder_probe(folder)
    assert health.writable
    health.check()  # nothing raised


async def test_a_write_failure_refuses_every_call_until_the_probe_passes(folder: Path) -> None:
    health = folder_probe(folder)
    block(folder)
    try:
        raised = health.failed("the identity map", FULL)
        assert isinstance(raised, StateUnwritable)
        assert raised.reason == Reason.STATE_UNAVAILABLE.name
        assert raised.code == grpc.StatusCode.UNAVAILABLE
        assert "the identity map" in raised.message and "database or disk is full" in raised.message
        assert not health.writable

        with pytest.raises(StateUnwritable) as refused:
            health.check()
        assert refused.value.reason == Reason.STATE_UNAVAILABLE.name
        assert "before any Pardot call" in refused.value.message
        assert refused.value.retry_after == health.probe_every_s

        await until(lambda: health.probes_failed >= 3)  # it retries, and keeps failing
        assert not health.writable
        unblock(folder)
        await until(lambda: health.writable)
        health.check()  # nothing raised
        assert not (folder / PROBE_FILE).exists()  # the probe leaves nothing behind
    finally:
        health.close()


async def test_changes_are_told_as_they_happen(folder: Path) -> None:
    health = folder_probe(folder)
    seen: list[bool] = []

    async def follow() -> None:
        async for writable in health.changes():
            seen.append(writable)

    follower = asyncio.ensure_future(follow())
    try:
        await until(lambda: seen == [True])  # the state now, first
        block(folder)
        health.failed("the message_id records", FULL)
        await until(lambda: seen == [True, False])
        unblock(folder)
        await until(lambda: seen == [True, False, True])
    finally:
        follower.cancel()
        health.close()


async def test_one_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    folder: Path,
) -> None:
    health = folder_probe(folder)
    block(folder)
    try:
        with capture_logs() as logs:
            health.failed("the identity map", FULL)
            health.failed("the message_id records", FULL)  # the same outage
            with pytest.raises(StateUnwritable):
                health.check()
            unblock(folder)
            await until(lambda: health.writable)
        events = [(entry["event"], entry["log_level"]) for entry in logs]
        assert events == [("state.unwritable", "error"), ("state.writable", "info")]
        ended = logs[-1]
        assert ended["failures"] == 2 and ended["refused"] == 1
    finally:
        health.close()


def test_the_probe_fails_where_the_folder_cannot_be_written(folder: Path) -> None:
    probe_folder(folder)
    assert list(folder.iterdir()) == []
    block(folder)
    with pytest.raises(OSError):
        probe_folder(folder)


# --- the stores report to it -------------------------------------------------------------


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk", size="1m") as mounted:
        yield mounted


async def test_the_identity_map_on_a_full_disk_reports_and_refuses(disk: SmallDisk) -> None:
    health = StateHealth(lambda: probe_folder(disk.path), probe_every_s=0.01)
    store = LocalState(disk.path, health=health).identity()
    try:
        await store.remember("default", EMAIL, "before@example.com", 1)
        disk.fill()
        with pytest.raises(StateUnwritable, match="the identity map"):
            await store.remember("default", EMAIL, "after@example.com", 2)
        assert not health.writable
        assert await store.lookup("default", EMAIL, "before@example.com") == 1  # reads still work

        # After a Pardot write the caller's success stands: the view does not raise.
        view = IdentityView(store, "default")
        await view.remember(EMAIL, "after@example.com", Prospect(id=2, email="after@example.com"))
        # Before a Pardot write it does: forget comes before resolving again.
        with pytest.raises(StateUnwritable):
            await view.forget(1)

        disk.free()
        await until(lambda: health.writable)
        await store.remember("default", EMAIL, "after@example.com", 2)
        assert await store.lookup("default", EMAIL, "after@example.com") == 2
        assert (disk.path / IDENTITY_FILE).exists()
    finally:
        store.close()
        health.close()
