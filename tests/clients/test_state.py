"""clients.state: every kind of shared state (the identity map, the per-person locks,
the create holds, the budget marks, the concurrency slots, the tokens), tested against
its protocol (``clients.state.protocols``) once per backend (the ``state`` fixture,
tests/support/state.py: a backend joins by one parameter there), and the embedded
backend's files under state_dir."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from clients.state.identity import IdentityView
from clients.state.local import HOLDS_FILE, IDEMPOTENCY_FILE, IDENTITY_FILE, LocalState
from clients.state.locks import KeyedLocks
from clients.state.protocols import StateUnavailable
from strategies.core.errors import PardotAuthFailed, PardotUnavailable
from strategies.core.model import EMAIL, FID, Prospect, field_namespace
from support.state import BACKENDS, StateUnderTest, state_fixture
from support.waiting import until

ORG = field_namespace("org_id")


state = state_fixture(BACKENDS)


# --- the identity map ------------------------------------------------------------------


async def test_the_map_answers_what_it_learned_per_connection_and_namespace(
    state: StateUnderTest,
) -> None:
    store = state.identity()
    assert await store.lookup("default", ORG, "o-1") is None
    await store.remember("default", ORG, "o-1", 7)
    assert await store.lookup("default", ORG, "o-1") == 7
    assert await store.lookup("other", ORG, "o-1") is None  # another connection
    assert await store.lookup("default", FID, "o-1") is None  # another namespace
    await store.remember("default", ORG, "o-1", 8)  # learned again: the newest fact wins
    assert await store.lookup("default", ORG, "o-1") == 8


async def test_emails_match_case_insensitively_lookup_values_and_fids_exactly(
    state: StateUnderTest,
) -> None:
    store = state.identity()
    await store.remember("default", EMAIL, " Ann@Example.COM ", 7)
    await store.remember("default", ORG, "O-1", 8)
    assert await store.lookup("default", EMAIL, "ann@example.com") == 7
    assert await store.lookup("default", ORG, "O-1") == 8
    assert await store.lookup("default", ORG, "o-1") is None


async def test_forget_drops_every_entry_of_the_prospect_on_that_connection_only(
    state: StateUnderTest,
) -> None:
    store = state.identity()
    await store.remember("default", EMAIL, "ann@example.com", 7)
    await store.remember("default", ORG, "o-1", 7)
    await store.remember("default", ORG, "o-2", 9)
    await store.remember("other", ORG, "o-1", 7)
    await store.forget("default", 7)
    assert await store.lookup("default", EMAIL, "ann@example.com") is None
    assert await store.lookup("default", ORG, "o-1") is None
    assert await store.lookup("default", ORG, "o-2") == 9
    assert await store.lookup("other", ORG, "o-1") == 7


async def test_the_map_outlives_its_store_where_the_backend_shares_it(
    state: StateUnderTest,
) -> None:
    first = state.identity()
    await first.remember("default", ORG, "o-1", 7)
    first.close()
    # A restart, or another process: "memory" lives and dies with its store.
    expected = 7 if state.shared else None
    assert await state.identity().lookup("default", ORG, "o-1") == expected
    assert await state.identity().lookup("default", ORG, "o-1") == expected


async def test_the_view_is_one_connection_and_learns_only_what_pardot_said(
    state: StateUnderTest,
) -> None:
    store = state.identity()
    view = IdentityView(store, "default")
    await view.remember(ORG, "o-1", Prospect(id=7))
    await view.remember(ORG, "o-2", Prospect(id=8, planned=True))  # a dry run's plan
    await view.remember(ORG, "o-3", Prospect(id=None))  # a batch answer without an id
    await view.remember(ORG, "", Prospect(id=9))  # no key
    found = [await view.lookup(ORG, key) for key in ("o-1", "o-2", "o-3", "")]
    assert found == [7, None, None, None]
    assert await IdentityView(store, "other").lookup(ORG, "o-1") is None
    await view.forget(7)
    assert await store.lookup("default", ORG, "o-1") is None


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
    await until(lambda: len(inside) == 3)  # a shared backend answers over the network
    await asyncio.sleep(0.01)  # the second would be in by now if the lock let it
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


# --- the creates in doubt ----------------------------------------------------------------


async def test_an_unanswered_create_is_held_its_time_per_email_case_insensitively(
    state: StateUnderTest,
) -> None:
    state.drives_time()
    holds = state.create_holds(hold_s=30)
    assert await holds.remaining("ann@example.com") == 0.0
    await holds.unanswered(await holds.sending(" Ann@Example.COM ", in_flight_s=10))
    assert await holds.remaining("ann@example.com") == pytest.approx(30)  # from the failure on
    assert await holds.remaining("ANN@EXAMPLE.com") > 0  # as Pardot matches emails
    assert await holds.remaining("bob@example.com") == 0.0  # per email
    state.clocks.advance(10)
    assert await holds.remaining("ann@example.com") == pytest.approx(20)  # it counts down
    state.clocks.advance(20.1)
    assert await holds.remaining("ann@example.com") == 0.0  # over: the create is taken as lost


async def test_holds_are_per_connection_and_a_hold_of_zero_holds_nothing(
    state: StateUnderTest,
) -> None:
    default, other = (
        state.create_holds("default", hold_s=30),
        state.create_holds("other", hold_s=30),
    )
    await default.unanswered(await default.sending("ann@example.com", in_flight_s=10))
    assert await default.remaining("ann@example.com") > 29
    assert await other.remaining("ann@example.com") == 0.0
    never = state.create_holds("off", hold_s=0)  # unconfirmed_create_hold_s = 0
    await never.unanswered(await never.sending("ann@example.com", in_flight_s=10))
    assert await never.remaining("ann@example.com") == 0.0


async def test_an_answered_create_holds_nothing(state: StateUnderTest) -> None:
    """Pardot answered (it created, or it refused): a read now tells the truth."""
    holds = state.create_holds(hold_s=30)
    await holds.answered(await holds.sending("ann@example.com", in_flight_s=10))
    assert await holds.remaining("ann@example.com") == 0.0


async def test_a_create_in_flight_holds_the_others_sharing_the_holds_not_its_own_process(
    state: StateUnderTest,
) -> None:
    """Issue 12, item 2: the hold is written before the create is sent. Its own process
    needs none while the call runs (one call per message and person there); another
    process on the same state (or the next one after a crash) must not create."""
    holds = state.create_holds(hold_s=30)
    ticket = await holds.sending("ann@example.com", in_flight_s=10)
    assert await holds.remaining("ann@example.com") == 0.0
    if state.shared:
        elsewhere = state.create_holds(hold_s=30)
        assert await elsewhere.remaining("ann@example.com") == pytest.approx(
            40, abs=0.5
        )  # in flight + hold
        await holds.answered(ticket)
        assert await elsewhere.remaining("ann@example.com") == 0.0


async def test_a_create_in_flight_when_its_process_died_is_held_by_the_next(
    state: StateUnderTest,
) -> None:
    state.drives_time()
    if not state.shared:
        pytest.skip(f"the {state.backend} backend's holds end with their process")
    died = state.create_holds(hold_s=30)
    await died.sending("ann@example.com", in_flight_s=10)  # ... and never a word of its fate
    died.close()
    state.clocks.advance(5)
    restarted = state.create_holds(hold_s=30)
    assert await restarted.remaining("ann@example.com") == pytest.approx(35)
    state.clocks.advance(35.1)
    assert await restarted.remaining("ann@example.com") == 0.0  # it ends all the same


async def test_a_step_of_the_wall_clock_never_ends_a_hold_early(state: StateUnderTest) -> None:
    """Issue 12, item 11, for the holds: their time is time that passed."""
    state.drives_time()
    holds = state.create_holds(hold_s=30)
    await holds.unanswered(await holds.sending("ann@example.com", in_flight_s=10))
    state.clocks.step(+3600)
    assert await holds.remaining("ann@example.com") == pytest.approx(30)
    state.clocks.step(-7200)
    assert await holds.remaining("ann@example.com") == pytest.approx(30)
    if state.shared:  # and across a restart
        holds.close()
        state.clocks.step(+3600)
        holds = state.create_holds(hold_s=30)
        assert await holds.remaining("ann@example.com") == pytest.approx(30)
    state.clocks.advance(30.1)
    assert await holds.remaining("ann@example.com") == 0.0


# --- the daily budget marks ------------------------------------------------------------


async def test_the_budget_mark_counts_per_day_and_keeps_the_exhausted_until(
    state: StateUnderTest,
) -> None:
    mark = state.budget_mark()
    day, next_day = date(2024, 6, 1), date(2024, 6, 2)
    midnight = datetime(2024, 6, 2, tzinfo=UTC)
    assert (await mark.used(day), await mark.exhausted_until(day)) == (0, None)
    assert [await mark.count(day) for _ in range(3)] == [1, 2, 3]
    assert await mark.used(day) == 3
    await mark.exhaust(day, midnight)
    assert await mark.exhausted_until(day) == midnight
    assert (await mark.count(day), await mark.used(day)) == (4, 4)  # the count goes on
    assert await mark.exhausted_until(day) == midnight

    # The account's next day starts from nothing.
    assert (await mark.used(next_day), await mark.exhausted_until(next_day)) == (0, None)
    assert await mark.count(next_day) == 1
    assert (await mark.used(next_day), await mark.exhausted_until(next_day)) == (1, None)


async def test_budget_marks_are_per_account(state: StateUnderTest) -> None:
    day = date(2024, 6, 1)
    one, two = state.budget_mark("0Uv000000000001CAA"), state.budget_mark("0Uv000000000002CAA")
    await one.count(day)
    await one.exhaust(day, datetime(2024, 6, 2, tzinfo=UTC))
    assert (await two.used(day), await two.exhausted_until(day)) == (0, None)
    assert await two.count(day) == 1


# --- the concurrency slots ---------------------------------------------------------------


async def test_slots_admit_at_most_their_limit(state: StateUnderTest) -> None:
    slots = state.slots(2)
    inside: list[int] = []
    most = 0
    release = asyncio.Event()

    async def use(n: int) -> None:
        nonlocal most
        async with slots:
            inside.append(n)
            most = max(most, len(inside))
            await release.wait()
            inside.remove(n)

    assert not slots.locked()
    tasks = [asyncio.ensure_future(use(n)) for n in range(5)]
    await until(lambda: len(inside) == 2)  # a shared backend answers over the network
    await asyncio.sleep(0.01)  # a third would be in by now if the limit let it
    assert len(inside) == 2 and slots.locked()
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert most == 2 and inside == []
    assert not slots.locked()


async def test_slot_waiters_go_in_arrival_order_and_a_cancelled_one_leaves(
    state: StateUnderTest,
) -> None:
    slots = state.slots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with slots:
            await release.wait()

    async def waiter(name: str) -> None:
        async with slots:
            order.append(name)
            await asyncio.sleep(0)  # hold it across a turn of the loop

    held = asyncio.ensure_future(holder())
    await asyncio.sleep(0)
    waiters: dict[str, asyncio.Future[None]] = {}
    for name in ("a", "b", "c", "d", "e"):
        waiters[name] = asyncio.ensure_future(waiter(name))
        await asyncio.sleep(0)  # each in the queue before the next arrives
    for gone in ("a", "d"):  # their deadlines passed while they waited
        waiters[gone].cancel()
    await asyncio.sleep(0)
    assert order == [] and slots.locked()
    await state.queued(3)

    release.set()
    await asyncio.wait_for(asyncio.gather(held, *(waiters[n] for n in "bce")), 5)

    assert order == ["b", "c", "e"]
    assert all(waiters[gone].cancelled() for gone in ("a", "d"))
    # The cancelled waiters took no slot with them (a shared backend's last leave is
    # answered over the network, after its caller went on).
    await until(lambda: not slots.locked())
    async with asyncio.timeout(1), slots:
        pass


# --- the tokens ------------------------------------------------------------------------


async def test_one_refresh_at_a_time_and_every_waiter_gets_its_token(
    state: StateUnderTest,
) -> None:
    tokens = state.tokens()
    fetches = 0
    answer = asyncio.Event()

    async def fetch() -> str:
        nonlocal fetches
        fetches += 1
        await answer.wait()
        return f"token-{fetches}"

    assert tokens.current() is None
    waiting = [asyncio.ensure_future(tokens.refresh(None, fetch)) for _ in range(10)]
    await asyncio.sleep(0.01)
    assert fetches == 1
    answer.set()
    assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == ["token-1"] * 10
    assert tokens.current() == "token-1"

    # A token other than the stale one is the answer, without a fetch.
    assert await tokens.refresh(None, fetch) == "token-1"
    assert await tokens.refresh("token-0", fetch) == "token-1"
    assert fetches == 1

    # The stored token is the stale one: one new fetch, and nobody uses the old one meanwhile.
    answer.clear()
    waiting = [asyncio.ensure_future(tokens.refresh("token-1", fetch)) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert tokens.current() is None
    answer.set()
    assert await asyncio.wait_for(asyncio.gather(*waiting), 5) == ["token-2"] * 3
    assert fetches == 2 and tokens.current() == "token-2"


async def test_every_waiter_gets_the_fetchs_failure_and_the_next_refresh_fetches_again(
    state: StateUnderTest,
) -> None:
    tokens = state.tokens()
    fetches = 0
    answer = asyncio.Event()

    async def failing() -> str:
        nonlocal fetches
        fetches += 1
        await answer.wait()
        raise PardotUnavailable("the token endpoint did not answer")

    waiting = [asyncio.ensure_future(tokens.refresh(None, failing)) for _ in range(5)]
    await asyncio.sleep(0.01)
    answer.set()
    results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 5)
    assert fetches == 1
    assert all(isinstance(r, PardotUnavailable) for r in results)
    assert tokens.current() is None

    async def working() -> str:
        return "fresh"

    assert await tokens.refresh(None, working) == "fresh"  # a failure is not sticky


async def test_a_caller_that_stops_waiting_leaves_the_fetch_to_the_others(
    state: StateUnderTest,
) -> None:
    tokens = state.tokens()
    fetches = 0
    answer = asyncio.Event()

    async def fetch() -> str:
        nonlocal fetches
        fetches += 1
        await answer.wait()
        return "shared"

    hurried = asyncio.ensure_future(tokens.refresh(None, fetch))  # it starts the fetch
    await asyncio.sleep(0.01)
    patient = asyncio.ensure_future(tokens.refresh(None, fetch))
    await asyncio.sleep(0.01)
    hurried.cancel()  # its deadline passed
    with pytest.raises(asyncio.CancelledError):
        await hurried
    answer.set()

    assert await asyncio.wait_for(patient, 5) == "shared"
    assert fetches == 1 and tokens.current() == "shared"


async def test_a_rejection_lasts_its_cooldown_and_forget_drops_only_the_stored_token(
    state: StateUnderTest,
) -> None:
    tokens = state.tokens()
    assert await tokens.rejection() is None
    await tokens.reject(PardotAuthFailed("Salesforce refused the grant; fix the keys"), for_s=0.2)
    rejection = await tokens.rejection()
    assert rejection is not None
    assert (rejection.message, rejection.reason) == (
        "Salesforce refused the grant; fix the keys",
        "PARDOT_AUTH_FAILED",
    )
    await asyncio.sleep(0.25)
    assert await tokens.rejection() is None

    async def fetch() -> str:
        return "token-1"

    await tokens.refresh(None, fetch)
    await tokens.forget("token-0")  # not the stored one: nothing changes
    assert tokens.current() == "token-1"
    await tokens.forget("token-1")
    assert tokens.current() is None


# --- the embedded backend's files --------------------------------------------------------


def test_local_state_keeps_its_files_in_the_state_dir(tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "nested"
    local = LocalState(state_dir)
    identity = local.identity()
    records = local.responses(window_s=60.0)
    holds = local.create_holds("default", hold_s=60.0)
    try:
        assert (state_dir / IDENTITY_FILE).is_file()
        assert (state_dir / IDEMPOTENCY_FILE).is_file()
        assert (state_dir / HOLDS_FILE).is_file()
    finally:
        holds.close()
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
    with pytest.raises(StateUnavailable, match=r"^cannot open the create holds .*holds"):
        local.create_holds("default", hold_s=60.0)
