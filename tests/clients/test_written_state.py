"""clients.state.written: the memory of what the service last wrote to each prospect
(issue 15, ``settings.skip_unchanged``), tested against ``WrittenFields`` once per
backend (tests/support/state.py's ``state`` fixture: sqlite, memory, redis), and the
``WrittenView`` adapter one connection's gateways use."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator

import pytest

from clients.state.local import WRITTEN_FILE
from clients.state.protocols import WrittenFields
from clients.state.written import GROUP_WRITE_S, WrittenView, digest
from support.state import BACKENDS, StateUnderTest, state_fixture

state = state_fixture(BACKENDS)


@pytest.fixture
def store(state: StateUnderTest) -> Iterator[WrittenFields]:
    opened = state.client_state().written()
    yield opened
    opened.close()


async def test_the_store_merges_digests_per_prospect_and_connection(
    store: WrittenFields,
) -> None:
    assert await store.digests("default", 7) == {}
    await store.wrote("default", 7, {"first_name": "d1", "city": "d2"})
    await store.wrote("default", 7, {"city": "d3"})  # a later write of one field
    assert await store.digests("default", 7) == {"first_name": "d1", "city": "d3"}
    assert await store.digests("other", 7) == {}  # another connection
    assert await store.digests("default", 8) == {}  # another prospect


async def test_forget_drops_the_prospect_on_that_connection_only(store: WrittenFields) -> None:
    await store.wrote("default", 7, {"first_name": "d1"})
    await store.wrote("other", 7, {"first_name": "d1"})
    await store.forget("default", 7)
    assert await store.digests("default", 7) == {}
    assert await store.digests("other", 7) == {"first_name": "d1"}
    await store.forget("default", 7)  # forgetting nothing is fine


async def test_a_store_opened_again_remembers_where_the_backend_is_shared(
    state: StateUnderTest, store: WrittenFields
) -> None:
    await store.wrote("default", 7, {"first_name": "d1"})
    # SQLite writes the memory behind, within GROUP_WRITE_S: its timer, set first,
    # fires before this sleep ends (the loop runs timers in order).
    await asyncio.sleep(GROUP_WRITE_S * 2)
    again = state.client_state().written()
    try:
        expected = {"first_name": "d1"} if state.shared else {}
        assert await again.digests("default", 7) == expected
    finally:
        again.close()


async def test_the_view_says_unchanged_only_when_every_field_was_written_so(
    store: WrittenFields,
) -> None:
    view = WrittenView(store, "default")
    assert not await view.unchanged(7, {"first_name": "Ann"})  # nothing remembered
    await view.wrote(7, {"first_name": "Ann", "city": "Oslo"})
    assert await view.unchanged(7, {"first_name": "Ann"})
    assert await view.unchanged(7, {"first_name": "Ann", "city": "Oslo"})
    assert not await view.unchanged(7, {"first_name": "Anne"})  # a changed value
    assert not await view.unchanged(7, {"first_name": "Ann", "phone": "1"})  # a new field
    assert not await view.unchanged(8, {"first_name": "Ann"})  # another prospect
    assert not await WrittenView(store, "other").unchanged(7, {"first_name": "Ann"})
    await view.wrote(7, {"city": "Bergen"})  # a write of another field keeps first_name
    assert await view.unchanged(7, {"first_name": "Ann", "city": "Bergen"})
    await view.forget(7)
    assert not await view.unchanged(7, {"first_name": "Ann"})


async def test_the_view_tells_a_multi_select_value_from_its_joined_text(
    store: WrittenFields,
) -> None:
    view = WrittenView(store, "default")
    await view.wrote(7, {"colors": ("red", "blue")})  # type: ignore[dict-item]
    assert await view.unchanged(7, {"colors": ("red", "blue")})  # type: ignore[dict-item]
    assert not await view.unchanged(7, {"colors": ("blue", "red")})  # type: ignore[dict-item]
    assert not await view.unchanged(7, {"colors": "red,blue"})
    assert not await view.unchanged(7, {"colors": "redblue"})


def test_digests_are_short_and_never_the_value() -> None:
    value = "ann@example.com"
    made = digest(7, "email", value)
    assert value not in made and len(made) <= 24
    assert digest(7, "email", value) == made  # stable: compared across calls
    assert digest(8, "email", value) != made  # salted by the prospect
    assert digest(7, "first_name", value) != made  # and by the field


async def test_the_sqlite_file_holds_digests_not_values(state: StateUnderTest) -> None:
    if state.backend != "sqlite":
        pytest.skip("the SQLite file is the embedded backend's")
    opened = state.client_state().written()
    try:
        await WrittenView(opened, "default").wrote(7, {"email": "ann@example.com"})
    finally:
        opened.close()
    for path in state.state_dir.glob(f"{WRITTEN_FILE}*"):  # the file, its -wal
        assert b"ann@example.com" not in path.read_bytes()
    with sqlite3.connect(state.state_dir / WRITTEN_FILE) as db:
        assert db.execute("SELECT count(*) FROM prospect_digests").fetchone()[0] == 1


async def test_the_store_sees_its_own_changes_at_once_and_a_forget_then_a_write_replaces(
    store: WrittenFields,
) -> None:
    await store.wrote("default", 9, {"first_name": "d1", "city": "d2"})
    assert await store.digests("default", 9) == {"first_name": "d1", "city": "d2"}
    await store.forget("default", 9)
    await store.wrote("default", 9, {"first_name": "d3"})
    assert await store.digests("default", 9) == {"first_name": "d3"}
    await asyncio.sleep(GROUP_WRITE_S * 2)  # written (SQLite): the same answer from the file
    assert await store.digests("default", 9) == {"first_name": "d3"}
