"""clients.state: the identity map and the per-person locks, tested against their
protocols (``clients.state.protocols``) once per backend (the ``state`` fixture,
tests/support/state.py), and the embedded backend's files under state_dir."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.state.identity import IdentityView
from clients.state.local import IDEMPOTENCY_FILE, IDENTITY_FILE, LocalState
from clients.state.locks import KeyedLocks
from clients.state.protocols import StateUnavailable
from strategies.core.model import EMAIL, FID, Prospect, field_namespace
from support.state import BACKENDS, StateUnderTest

ORG = field_namespace("org_id")


@pytest.fixture(params=BACKENDS)
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateUnderTest]:
    opened = StateUnderTest(request.param, tmp_path / "state")
    try:
        yield opened
    finally:
        opened.close()


# --- the identity map ------------------------------------------------------------------


def test_the_map_answers_what_it_learned_per_connection_and_namespace(
    state: StateUnderTest,
) -> None:
    store = state.identity()
    assert store.lookup("default", ORG, "o-1") is None
    store.remember("default", ORG, "o-1", 7)
    assert store.lookup("default", ORG, "o-1") == 7
    assert store.lookup("other", ORG, "o-1") is None  # another connection
    assert store.lookup("default", FID, "o-1") is None  # another namespace
    store.remember("default", ORG, "o-1", 8)  # learned again: the newest fact wins
    assert store.lookup("default", ORG, "o-1") == 8


def test_emails_match_case_insensitively_lookup_values_and_fids_exactly(
    state: StateUnderTest,
) -> None:
    store = state.identity()
    store.remember("default", EMAIL, " Ann@Example.COM ", 7)
    store.remember("default", ORG, "O-1", 8)
    assert store.lookup("default", EMAIL, "ann@example.com") == 7
    assert store.lookup("default", ORG, "O-1") == 8
    assert store.lookup("default", ORG, "o-1") is None


def test_forget_drops_every_entry_of_the_prospect_on_that_connection_only(
    state: StateUnderTest,
) -> None:
    store = state.identity()
    store.remember("default", EMAIL, "ann@example.com", 7)
    store.remember("default", ORG, "o-1", 7)
    store.remember("default", ORG, "o-2", 9)
    store.remember("other", ORG, "o-1", 7)
    store.forget("default", 7)
    assert store.lookup("default", EMAIL, "ann@example.com") is None
    assert store.lookup("default", ORG, "o-1") is None
    assert store.lookup("default", ORG, "o-2") == 9
    assert store.lookup("other", ORG, "o-1") == 7


def test_the_map_outlives_its_store_where_the_backend_shares_it(state: StateUnderTest) -> None:
    first = state.identity()
    first.remember("default", ORG, "o-1", 7)
    first.close()
    # A restart, or another process: "memory" lives and dies with its store.
    expected = 7 if state.shared else None
    assert state.identity().lookup("default", ORG, "o-1") == expected
    assert state.identity().lookup("default", ORG, "o-1") == expected


def test_the_view_is_one_connection_and_learns_only_what_pardot_said(
    state: StateUnderTest,
) -> None:
    store = state.identity()
    view = IdentityView(store, "default")
    view.remember(ORG, "o-1", Prospect(id=7))
    view.remember(ORG, "o-2", Prospect(id=8, planned=True))  # a dry run's plan
    view.remember(ORG, "o-3", Prospect(id=None))  # a batch answer without an id
    view.remember(ORG, "", Prospect(id=9))  # no key
    assert [view.lookup(ORG, key) for key in ("o-1", "o-2", "o-3", "")] == [7, None, None, None]
    assert IdentityView(store, "other").lookup(ORG, "o-1") is None
    view.forget(7)
    assert store.lookup("default", ORG, "o-1") is None


# --- one person at a time --------------------------------------------------------------


async def test_one_holder_per_person_and_the_others_in_turn(state: StateUnderTest) -> None:
    locks = state.person_locks()
    inside: list[str] = []
    order: list[str] = []
    release = asyncio.Event()

    async def hold(connection: str, key: str, name: str) -> None:
        async with locks.hold(connection, key):
            inside.append(name)
            order.append(name)
            await release.wait()
            inside.remove(name)

    tasks = [
        asyncio.ensure_future(hold("default", "org_id=o-1", "first")),
        asyncio.ensure_future(hold("default", "org_id=o-1", "second")),
        asyncio.ensure_future(hold("default", "org_id=o-2", "someone else")),
        asyncio.ensure_future(hold("other", "org_id=o-1", "another connection")),
    ]
    await asyncio.sleep(0.01)
    assert sorted(inside) == ["another connection", "first", "someone else"]
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order.index("second") > order.index("first")
    assert inside == []


async def test_a_holder_that_fails_lets_the_next_one_in(state: StateUnderTest) -> None:
    locks = state.person_locks()
    with pytest.raises(RuntimeError):
        async with locks.hold("default", "k"):
            raise RuntimeError("the strategy failed")
    async with asyncio.timeout(5), locks.hold("default", "k"):
        pass


async def test_in_process_locks_are_dropped_once_nobody_holds_or_waits() -> None:
    locks = KeyedLocks()
    release = asyncio.Event()

    async def hold() -> None:
        async with locks.hold("default", "org_id=o-1"):
            await release.wait()

    tasks = [asyncio.ensure_future(hold()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert list(locks._locks) == [("default", "org_id=o-1")]  # one lock, three users
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert locks._locks == {}  # memory follows concurrency, not history


# --- the embedded backend's files --------------------------------------------------------


def test_local_state_keeps_its_files_in_the_state_dir(tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "nested"
    local = LocalState(state_dir)
    identity = local.identity()
    records = local.responses(window_s=60.0)
    try:
        assert (state_dir / IDENTITY_FILE).is_file()
        assert (state_dir / IDEMPOTENCY_FILE).is_file()
    finally:
        records.close()
        identity.close()


def test_a_store_that_cannot_be_opened_names_its_kind_and_file(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where a directory should be")
    local = LocalState(blocker)
    with pytest.raises(StateUnavailable, match=r"^cannot open the identity map .*identity"):
        local.identity()
    with pytest.raises(StateUnavailable, match=r"^cannot open the idempotency records "):
        local.responses(window_s=60.0)
