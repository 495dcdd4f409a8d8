"""clients.state.redis: who a person is and what a message did, shared by replicas.

Two or three ``RedisState`` objects on one key prefix stand for as many replicas (each
its own client, connection pool and health), on the session's real redis-server; the
outage test runs a redis-server of its own, to stop it.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from clients.connections import PardotConnections
from clients.state.protocols import IdempotencyKey
from clients.state.redis.locks import RedisPersonLocks
from clients.state.redis.responses import RedisResponseRecords
from clients.state.redis.state import RedisState
from clients.state.redis.written import WrittenRides
from fakepardot import FakePardot
from strategies.core.errors import StateUnwritable
from strategies.core.model import EMAIL
from support.redis_server import (
    RedisServer,
    fresh_prefix,
    read_events,
    redis_server_binary,
    session_server,
)
from support.waiting import until

from .conftest import gateway, oauth_config

KEY = IdempotencyKey("/prospectsync.v1.ProspectSync/Identify", "default", "m-1")


@pytest.fixture
async def replicas() -> AsyncIterator[list[RedisState]]:
    """Three replicas of one deployment: one Redis, one key prefix."""
    prefix = fresh_prefix()
    opened = [RedisState(session_server().url, key_prefix=prefix) for _ in range(3)]
    try:
        yield opened
    finally:
        for replica in opened:
            await replica.aclose()


async def eventually(condition: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    """Bounded polling of something Redis decides on its own clock (a lease running out)."""
    async with asyncio.timeout(within_s):
        while not await condition():  # noqa: ASYNC110 - Redis's clock decides, no event
            await asyncio.sleep(0.01)


# --- the per-person locks ------------------------------------------------------------


async def test_a_20_way_first_identify_race_over_3_replicas_has_one_holder_at_a_time(
    replicas: list[RedisState],
) -> None:
    """Issue 13: 20 concurrent first calls for one person, spread over 3 replicas, each
    looking the person up and remembering it when not found: one holder at a time,
    so one of them "creates" and the other 19 find what it remembered."""
    locks = [replica.person_locks() for replica in replicas]
    maps = [replica.identity() for replica in replicas]
    inside = 0
    most_inside = 0
    created: list[int] = []

    async def first_identify(n: int) -> None:
        nonlocal inside, most_inside
        replica = n % 3
        async with locks[replica].hold("default", "email=ann@example.com"):
            inside += 1
            most_inside = max(most_inside, inside)
            found = await maps[replica].lookup("default", EMAIL, "ann@example.com")
            await asyncio.sleep(0)  # a Pardot call would let everyone else run here
            if found is None:
                created.append(n)
                await maps[replica].remember("default", EMAIL, "ann@example.com", 1000 + n)
            inside -= 1

    await asyncio.wait_for(asyncio.gather(*(first_identify(n) for n in range(20))), 30)
    assert most_inside == 1
    assert len(created) == 1
    assert await maps[2].lookup("default", EMAIL, "Ann@Example.com") == 1000 + created[0]


async def test_a_holder_that_dies_frees_the_lock_after_its_lease(
    replicas: list[RedisState],
) -> None:
    """A replica that stops renewing (killed, frozen) keeps the person locked for its
    lease only; then another replica gets in."""
    dead = RedisPersonLocks(replicas[0].context, lease_s=0.3, renew_every_s=3600)
    alive = RedisPersonLocks(replicas[1].context)
    held = asyncio.Event()
    never = asyncio.Event()

    async def holder_that_dies() -> None:
        async with dead.hold("default", "k"):
            held.set()
            await never.wait()  # no renewal, no release: its process is gone

    stuck = asyncio.ensure_future(holder_that_dies())
    try:
        await asyncio.wait_for(held.wait(), 5)
        await replicas[0].aclose()  # and its connections with it
        async with asyncio.timeout(10), alive.hold("default", "k"):
            assert await alive.fence("default", "k") == 2  # the second acquisition
    finally:
        stuck.cancel()
        await asyncio.gather(stuck, return_exceptions=True)


async def test_a_stale_holder_cannot_release_the_next_holders_lock(
    replicas: list[RedisState],
) -> None:
    """Fencing: a holder that stalled past its lease and then finishes gives back
    nothing — the lock stays with the holder that came after it."""
    stale = RedisPersonLocks(replicas[0].context, lease_s=0.3, renew_every_s=3600)
    fresh = replicas[1].person_locks()
    watcher = RedisPersonLocks(replicas[2].context)
    held, resume = asyncio.Event(), asyncio.Event()

    async def stalls() -> None:
        async with stale.hold("default", "k"):
            held.set()
            await resume.wait()

    stalled = asyncio.ensure_future(stalls())
    await asyncio.wait_for(held.wait(), 5)
    async with asyncio.timeout(10), fresh.hold("default", "k"):  # after the lease ran out
        assert await watcher.fence("default", "k") == 2
        resume.set()
        await asyncio.wait_for(stalled, 5)  # the stale holder leaves its block ...
        assert await watcher.fence("default", "k") == 2  # ... and the lock is still ours
    assert await watcher.fence("default", "k") is None  # given back by its holder


# --- the identity map ----------------------------------------------------------------


async def test_the_map_is_shared_and_forget_follows_entries_learned_again(
    replicas: list[RedisState],
) -> None:
    """The reverse index stays exact: an entry learned again for another id is no
    longer dropped by forgetting the old id."""
    one, two = replicas[0].identity(), replicas[1].identity()
    await one.remember("default", EMAIL, "Ann@Example.com", 7)
    await one.remember("default", "fid", "f-1", 7)
    assert await two.lookup("default", EMAIL, "ann@example.com") == 7  # another replica
    await two.remember("default", "fid", "f-1", 8)  # merged: the fid now names 8
    client, index = replicas[0].context.client, replicas[0].context.key("identity-of", "default")
    assert await client.scard(f"{index}:7") == 1  # the index follows: only the email left
    await one.forget("default", 7)
    assert await two.lookup("default", EMAIL, "ann@example.com") is None
    assert await two.lookup("default", "fid", "f-1") == 8
    await two.forget("default", 8)
    assert await one.lookup("default", "fid", "f-1") is None
    assert await client.exists(f"{index}:7", f"{index}:8") == 0  # nothing left behind


async def test_the_memory_of_writes_rides_the_identity_maps_script_else_goes_alone(
    replicas: list[RedisState],
) -> None:
    """After a write the memory and the identity map learn at once: one round trip
    (the HSET inside the identity script), counted as redis-server's read events. A
    write to the memory with no identity script beside it lands alone; a replica sees
    both either way."""
    state, other = replicas[0], replicas[1]
    written, identity = state.written(), state.identity()
    digests = {"email": "d1", "first_name": "d2"}
    await asyncio.gather(  # the first pair loads the script and opens the connections
        written.wrote("default", 6, digests),
        identity.remember("default", EMAIL, "bob@example.com", 6),
    )
    before = await read_events(state.context.client)
    await asyncio.gather(
        written.wrote("default", 7, digests),
        identity.remember("default", EMAIL, "ann@example.com", 7),
    )
    assert await read_events(state.context.client) - before == 2  # the pair, then this INFO
    assert await other.written().digests("default", 7) == digests
    assert await other.identity().lookup("default", EMAIL, "ann@example.com") == 7
    await written.wrote("default", 8, {"email": "d3"})  # alone
    assert await other.written().digests("default", 8) == {"email": "d3"}


async def test_the_memory_of_writes_that_rode_a_cancelled_script_goes_alone(
    replicas: list[RedisState],
) -> None:
    """An identity script cancelled before Redis answered may have carried another
    call's HSET: it goes again, alone, and its writer learns that it landed."""
    ctx = replicas[0].context
    rides = WrittenRides(ctx)
    key = ctx.key("written", "default", "9")
    landed = rides.add(key, {"email": "d9"})
    rides.put_back(rides.take())  # taken by a script that was cancelled
    await asyncio.wait_for(landed, 5)
    assert await replicas[1].written().digests("default", 9) == {"email": "d9"}


# --- the creates in doubt ------------------------------------------------------------


async def test_a_create_in_flight_on_one_replica_holds_the_others(
    replicas: list[RedisState],
) -> None:
    sending, other = (replica.create_holds("default", hold_s=30) for replica in replicas[:2])
    ticket = await sending.sending("Ann@Example.com", in_flight_s=10)
    assert await sending.remaining("ann@example.com") == 0.0  # not against itself
    assert 39 < await other.remaining("ANN@example.com") <= 40  # in flight + hold
    await sending.unanswered(ticket)
    assert 29 < await other.remaining("ann@example.com") <= 30  # from the failure on
    assert 29 < await sending.remaining("ann@example.com") <= 30  # now it holds itself too
    second = await other.sending("bob@example.com", in_flight_s=10)
    await other.answered(second)
    assert await sending.remaining("bob@example.com") == 0.0


async def test_a_hold_ends_on_redis_clock_and_its_key_goes_with_it(
    replicas: list[RedisState],
) -> None:
    holds = replicas[0].create_holds("default", hold_s=0.2)
    elsewhere = replicas[1].create_holds("default", hold_s=0.2)
    await holds.unanswered(await holds.sending("ann@example.com", in_flight_s=0))
    assert await elsewhere.remaining("ann@example.com") > 0
    client = replicas[0].context.client
    key = replicas[0].context.key("holds", "default", "ann@example.com")
    assert 0 < await client.pttl(key) <= 201  # nothing outlives its last hold
    await eventually(lambda: _zero(elsewhere.remaining("ann@example.com")))
    await eventually(lambda: _gone(client.exists(key)))


async def _zero(left: Awaitable[float]) -> bool:
    return await left == 0.0


async def _gone(exists: Awaitable[int]) -> bool:
    return await exists == 0


# --- the message_id records ----------------------------------------------------------


async def test_a_record_saved_on_one_replica_answers_on_another(
    replicas: list[RedisState],
) -> None:
    first, second = (replica.responses(window_s=60) for replica in replicas[:2])
    assert await asyncio.wait_for(first.begin(KEY), 5) is None
    began = await asyncio.wait_for(second.begin(KEY), 5)  # in progress, elsewhere
    assert began is not None
    released: list[bool] = []
    await asyncio.wait_for(first.save(KEY, b"first", then=lambda: released.append(True)), 5)
    assert released == [True]
    assert await second.get(KEY) == b"first"
    assert await asyncio.wait_for(second.begin(KEY), 5) is None  # answered: no longer
    ttl = await replicas[0].context.client.pttl(replicas[0].context.key("msg", *KEY))
    assert 59_000 < ttl <= 60_000  # the window is the record's TTL


async def test_a_save_whose_caller_went_away_is_stored_and_then_runs_all_the_same(
    replicas: list[RedisState],
) -> None:
    records, elsewhere = (replica.responses(window_s=60) for replica in replicas[:2])
    done = asyncio.Event()
    records.save(KEY, b"kept", then=done.set).cancel()  # the caller's deadline
    await asyncio.wait_for(done.wait(), 5)
    assert await elsewhere.get(KEY) == b"kept"


async def test_a_duplicate_in_flight_on_another_replica_waits_for_its_result(
    replicas: list[RedisState],
) -> None:
    first, second = (replica.responses(window_s=60) for replica in replicas[:2])
    assert isinstance(first, RedisResponseRecords) and isinstance(second, RedisResponseRecords)
    assert (await first.claim(KEY)).elsewhere is False
    claim = await second.claim(KEY)
    assert claim.elsewhere and claim.began is not None  # running on the first replica
    waiting = asyncio.ensure_future(second.wait_for(KEY, timeout_s=30))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await first.save(KEY, b"the first result", then=lambda: None)
    assert await asyncio.wait_for(waiting, 10) == b"the first result"


async def test_a_failed_attempt_elsewhere_lets_the_waiter_run_at_once(
    replicas: list[RedisState],
) -> None:
    first, second = (replica.responses(window_s=60) for replica in replicas[:2])
    assert isinstance(first, RedisResponseRecords) and isinstance(second, RedisResponseRecords)
    began = (await first.claim(KEY)).began
    assert began is None
    waiting = asyncio.ensure_future(second.wait_for(KEY, timeout_s=30))
    await first.release(KEY)  # the first attempt failed: it may have written
    assert await asyncio.wait_for(waiting, 10) is None
    claim = await second.claim(KEY)
    assert claim.elsewhere is False and claim.began is not None  # told when it began


async def test_a_replica_that_dies_mid_call_keeps_duplicates_waiting_its_lease_only(
    replicas: list[RedisState],
) -> None:
    dead = RedisResponseRecords(replicas[0].context, window_s=60, lease_s=0.3)
    second = replicas[1].responses(window_s=60)
    assert isinstance(second, RedisResponseRecords)
    await dead.claim(KEY)
    dead.close()  # stops renewing, never saves
    assert await asyncio.wait_for(second.wait_for(KEY, timeout_s=30), 10) is None
    assert (await second.claim(KEY)).elsewhere is False


# --- Redis away ----------------------------------------------------------------------


async def test_redis_stopped_is_state_unwritable_for_every_kind_and_recovers(
    tmp_path: Path,
) -> None:
    server = RedisServer(redis_server_binary(), tmp_path / "redis")
    server.start()
    state = RedisState(server.url, key_prefix=fresh_prefix(), timeout_s=0.5)
    state.health.probe_every_s = 0.05
    try:
        identity, locks = state.identity(), state.person_locks()
        holds, records = state.create_holds("default", hold_s=30), state.responses(window_s=60)
        await identity.remember("default", EMAIL, "ann@example.com", 7)
        server.stop()
        attempts: list[Callable[[], Awaitable[object]]] = [
            lambda: identity.lookup("default", EMAIL, "ann@example.com"),
            lambda: identity.remember("default", EMAIL, "bob@example.com", 8),
            lambda: holds.sending("ann@example.com", in_flight_s=10),
            lambda: holds.remaining("ann@example.com"),
            lambda: records.get(KEY),
            lambda: records.begin(KEY),
            lambda: records.save(KEY, b"x", then=lambda: None),
            lambda: _enter(locks.hold("default", "k")),
        ]
        for attempt in attempts:
            with pytest.raises(StateUnwritable) as caught:
                await asyncio.wait_for(attempt(), 10)
            assert caught.value.reason == "STATE_UNAVAILABLE"
        assert not state.health.writable  # NOT_SERVING: the servicer refuses calls
        server.start()  # no persistence: what it held is gone (AOF is recommended)
        await eventually(lambda: _writable(state))
        assert await identity.lookup("default", EMAIL, "ann@example.com") is None
    finally:
        await state.aclose()
        state.health.close()
        server.stop()


async def test_a_redis_that_stalls_fails_every_kind_within_its_timeout(tmp_path: Path) -> None:
    """A frozen Redis (SIGSTOP: connections open, no answer) fails each operation with
    StateUnwritable instead of holding the call: the client has no socket timeout of
    its own, so every command is bounded by ``redis.timeout_s`` in RedisContext.run.
    The server stays frozen longer than the test waits for each attempt: an attempt
    that waited for Redis instead would end in the test's TimeoutError."""
    server = RedisServer(redis_server_binary(), tmp_path / "redis")
    server.start()
    state = RedisState(server.url, key_prefix=fresh_prefix(), timeout_s=0.2)
    today = datetime.date(2026, 12, 2)
    try:
        identity, written, budget = state.identity(), state.written(), state.budget_mark("a")
        records, suppressions = state.responses(window_s=60), state.suppressions(b"k" * 32)
        slots, locks = state.slots("a", 5), state.person_locks()
        await identity.remember("default", EMAIL, "ann@example.com", 7)  # connected
        server.pause()
        attempts: list[Callable[[], Awaitable[object]]] = [
            lambda: identity.lookup("default", EMAIL, "ann@example.com"),
            lambda: written.digests("default", 7),
            lambda: budget.used(today),  # (a count is written behind: never raises)
            lambda: budget.exhausted_until(today),
            lambda: records.get(KEY),
            lambda: records.claim(KEY),  # type: ignore[attr-defined]  # shared records
            lambda: suppressions.any_of("default", ("d",)),
            lambda: _enter(slots),
            lambda: _enter(locks.hold("default", "k")),
        ]
        for attempt in attempts:
            with pytest.raises(StateUnwritable) as caught:
                await asyncio.wait_for(attempt(), 5)
            assert caught.value.reason == "STATE_UNAVAILABLE"
        assert not state.health.writable
    finally:
        server.resume()
        await state.aclose()
        state.health.close()
        server.stop()


async def _enter(hold: object) -> None:
    async with hold:  # type: ignore[attr-defined]
        pass


async def _writable(state: RedisState) -> bool:
    return state.health.writable


# --- the creates in doubt, through the gateway -----------------------------------------


async def test_a_create_in_flight_on_one_replica_is_held_on_another_until_pardot_answers(
    fake: FakePardot, replicas: list[RedisState]
) -> None:
    """Issue 12, item 2, across replicas: the hold is in Redis before the create is sent,
    so another replica (or the next one after a kill -9) sends no second create."""
    connections = PardotConnections(
        {"default": oauth_config(fake, unconfirmed_create_hold_s=30)}, state=replicas[0]
    )
    sending_replica = connections.get("default")
    elsewhere = replicas[1].create_holds("default", hold_s=30)
    try:
        await gateway(sending_replica).read_by_email("warm@example.com")
        fake.state.answers_held = True
        sending = asyncio.ensure_future(gateway(sending_replica).create("ann@example.com", {}))
        try:
            await until(lambda: fake.state.in_flight("v4") == 1)
            assert await elsewhere.remaining("Ann@example.com") > 30  # in flight, then 30 s
            assert await sending_replica.unconfirmed_creates.remaining("ann@example.com") == 0
        finally:
            fake.state.answers_held = False
        assert (await asyncio.wait_for(sending, 5)).created
        assert await elsewhere.remaining("ann@example.com") == 0.0  # answered: over
    finally:
        await connections.aclose()
