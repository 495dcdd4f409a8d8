"""clients.state.redis.slots: one account's slots shared by every replica (issue 13).
Two ``RedisState`` on one key prefix stand for two replicas; a process that dies holding
slots is a real process killed with SIGKILL; an outage is a redis-server of the test's
own, stopped and started again. The protocol's own tests (tests/clients/test_state.py,
tests/clients/test_priority.py) run on Redis through the ``state`` fixture."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from clients.state.protocols import ConcurrencySlots
from clients.state.redis.slots import RedisSlots
from clients.state.redis.state import RedisState
from strategies.core.errors import StateUnwritable
from support.redis_server import RedisServer, fresh_prefix, redis_server_binary, session_server
from support.waiting import until

ACCOUNT = "0Uv000000000001CAA"
ROOT = Path(__file__).resolve().parents[2]

#: A replica that takes ``n`` of the account's slots (short leases) and keeps them
#: until it is killed.
HOLDER = """
import asyncio, sys
from clients.state.health import StateHealth
from clients.state.redis.context import RedisContext, open_client
from clients.state.redis.slots import RedisSlots

async def main() -> None:
    url, prefix, account = sys.argv[1:4]
    limit, n, lease = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    ctx = RedisContext(
        open_client(url, timeout_s=2.0), prefix, StateHealth(lambda: None), timeout_s=2.0
    )
    slots = RedisSlots(ctx, account, limit, lease_s=lease)
    for _ in range(n):
        await slots.__aenter__()
    print("held", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
async def replicas() -> AsyncIterator[list[RedisState]]:
    """Two replicas' backends on one Redis and one key prefix."""
    prefix = fresh_prefix()
    opened = [RedisState(session_server().url, key_prefix=prefix) for _ in range(2)]
    yield opened
    for state in opened:
        await state.aclose()


async def queued(state: RedisState) -> int:
    """The waiters Redis holds in the account's queue (every replica's)."""
    ctx = state.context
    return int(await ctx.client.zcard(ctx.key("slots", ACCOUNT, "queue")))


async def test_never_more_than_the_limit_in_flight_across_replicas(
    replicas: list[RedisState],
) -> None:
    slots = [state.slots(ACCOUNT, 3) for state in replicas]
    inside = most = done = 0
    full = asyncio.Event()  # the first three inside wait for each other: the limit is used

    async def call(n: int) -> None:
        nonlocal inside, most, done
        async with slots[n % 2] if n % 3 else slots[n % 2].follow_up:
            inside += 1
            most = max(most, inside)
            if inside == 3:
                full.set()
            await asyncio.wait_for(full.wait(), 10)
            for _ in range(3):
                await asyncio.sleep(0)  # hold it across turns of the loop
            inside -= 1
            done += 1

    await asyncio.wait_for(asyncio.gather(*(call(n) for n in range(60))), 30)
    assert (most, done, inside) == (3, 60, 0)  # full use of the 3, never a 4th
    for replica in slots:  # a fresh answer from Redis: every slot is back
        async with replica:
            pass
    assert not any(s.locked() for s in slots)


async def test_follow_ups_go_first_across_replicas_in_arrival_order(
    replicas: list[RedisState],
) -> None:
    one, two = (state.slots(ACCOUNT, 1) for state in replicas)
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with one:
            await release.wait()

    async def enter(slots: ConcurrencySlots, name: str) -> None:
        async with slots.follow_up if name.startswith("u") else slots:
            order.append(name)

    held = asyncio.ensure_future(holder())
    await until(one.locked)
    arrivals = [(two, "f1"), (one, "f2"), (two, "u1"), (one, "u2"), (two, "f3"), (one, "u3")]
    waiters = []
    for n, (slots, name) in enumerate(arrivals, start=1):
        waiters.append(asyncio.ensure_future(enter(slots, name)))
        await asyncio.wait_for(until_queued(replicas[0], n), 5)  # in Redis before the next
    assert two.locked()  # the other replica knows the slot is taken
    assert one.waiting() == 6 and one.waiting(follow_up=True) == 3  # its 3 and the other's 3

    release.set()
    await asyncio.wait_for(asyncio.gather(held, *waiters), 10)
    assert order == ["u1", "u2", "u3", "f1", "f2", "f3"]


async def until_queued(state: RedisState, n: int) -> None:
    while await queued(state) < n:  # noqa: ASYNC110 - Redis cannot set an Event of ours
        await asyncio.sleep(0.005)


async def test_a_waiter_cancelled_on_one_replica_takes_no_slot_from_the_others(
    replicas: list[RedisState],
) -> None:
    one, two = (state.slots(ACCOUNT, 1) for state in replicas)
    release = asyncio.Event()

    async def holder() -> None:
        async with one:
            await release.wait()

    async def waiter() -> None:
        async with two:
            pass

    held = asyncio.ensure_future(holder())
    await until(one.locked)
    gone = asyncio.ensure_future(waiter())
    await asyncio.wait_for(until_queued(replicas[0], 1), 5)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    await asyncio.wait_for(until_zero_queued(replicas[0]), 5)  # it left Redis's queue
    release.set()
    await held
    async with asyncio.timeout(5), one:  # and its slot was not kept
        pass


async def test_a_waiter_cancelled_as_its_slot_is_granted_gives_the_slot_back(
    replicas: list[RedisState],
) -> None:
    one, two = (state.slots(ACCOUNT, 1) for state in replicas)
    await one.__aenter__()
    waiter = asyncio.ensure_future(two.__aenter__())
    await asyncio.wait_for(until_queued(replicas[0], 1), 5)
    # Its deadline passes just as it hears of its slot, before it can go on.
    # White-box: the moment cannot be timed from outside.
    [(_, heard)] = cast("RedisSlots", two)._waiters.items()
    heard.add_done_callback(lambda _: waiter.cancel())
    await one.__aexit__(None, None, None)  # Redis grants the waiter the slot
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 5)
    async with asyncio.timeout(5):  # the slot came back: not held until its lease ends
        while await lease_ends(replicas[0]):  # noqa: ASYNC110 - polling Redis
            await asyncio.sleep(0.005)
    async with asyncio.timeout(5), one:
        pass


async def until_zero_queued(state: RedisState) -> None:
    while await queued(state):  # noqa: ASYNC110 - Redis cannot set an Event of ours
        await asyncio.sleep(0.005)


async def start_holder(
    url: str, prefix: str, *, limit: int, n: int, lease_s: float
) -> asyncio.subprocess.Process:
    """A replica process holding ``n`` of the account's ``limit`` slots."""
    argv = [url, prefix, ACCOUNT, str(limit), str(n), str(lease_s)]
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        *argv,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert (await asyncio.wait_for(holder.stdout.readline(), 30)).strip() == b"held"
    return holder


async def lease_ends(state: RedisState) -> list[float]:
    """When each slot's lease ends (Redis's clock, ms)."""
    ctx = state.context
    held = await ctx.client.zrange(ctx.key("slots", ACCOUNT, "leases"), 0, -1, withscores=True)
    return [float(score) for _, score in cast("list[tuple[bytes, float]]", held)]


async def redis_ms(state: RedisState) -> int:
    """Redis's clock, in milliseconds: the one the leases are judged by."""
    seconds, micros = await state.context.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_a_killed_replicas_slots_come_back_within_the_lease_and_a_live_one_keeps_its(
    replicas: list[RedisState],
) -> None:
    """A replica renews its leases while it lives (they outlast many lease times) and a
    kill -9 stops that: its slots go to the next in line once the lease ran out."""
    state = replicas[0]
    prefix = state.context.prefix
    lease_s = 0.3
    holder = await start_holder(session_server().url, prefix, limit=2, n=2, lease_s=lease_s)
    try:
        slots = state.slots(ACCOUNT, 2)
        first_ends = await lease_ends(state)
        assert len(first_ends) == 2
        entering = asyncio.ensure_future(slots.__aenter__())
        await asyncio.wait_for(until_queued(state, 1), 5)

        # The live holder renews: its leases end later than they first did, and the
        # Redis clock passed their first end while the waiter still waits.
        async def renewed_past_first_end() -> bool:
            ends, now_ms = await lease_ends(state), await redis_ms(state)
            return len(ends) == 2 and min(ends) > max(first_ends) and now_ms > max(first_ends)

        while not await renewed_past_first_end():  # noqa: ASYNC110 - polling Redis
            await asyncio.sleep(0.02)
        assert not entering.done()

        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        await asyncio.wait_for(entering, 10)  # within the lease (bounded generously)
        await slots.__aexit__(None, None, None)
        assert not slots.locked()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


async def test_redis_stopped_fails_entering_and_waiting_then_it_works_again(
    tmp_path: Path,
) -> None:
    server = RedisServer(redis_server_binary(), tmp_path / "redis")
    server.start()
    state = RedisState(server.url, key_prefix=fresh_prefix(), timeout_s=0.5)
    try:
        slots = state.slots(ACCOUNT, 1)
        await slots.__aenter__()  # held
        waiting = asyncio.ensure_future(slots.__aenter__())
        await asyncio.wait_for(until_queued(state, 1), 5)

        server.stop()
        with pytest.raises(StateUnwritable, match="the concurrency slots"):
            await asyncio.wait_for(waiting, 10)  # a waiter does not hang on a dead Redis
        with pytest.raises(StateUnwritable, match="the concurrency slots"):
            async with slots.follow_up:
                pass
        assert not state.health.writable
        await slots.__aexit__(None, None, None)  # a leave Redis cannot take is not raised

        server.start()  # no persistence: Redis starts empty
        async with asyncio.timeout(5), slots:
            assert slots.locked()
        assert not slots.locked()
    finally:
        state.health.close()
        await state.aclose()
        server.stop()
