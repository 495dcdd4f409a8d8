"""clients.state.redis.budget: one account's daily count and err 122 mark, shared by
every replica (issue 13). Two ``RedisState`` on one key prefix stand for two replicas;
the protocol's own tests (tests/clients/test_state.py) run on Redis through the
``state`` fixture."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import redis.asyncio

from clients.state.redis.state import RedisState
from strategies.core.errors import StateUnwritable
from support.redis_server import (
    RedisServer,
    fresh_prefix,
    read_events,
    redis_server_binary,
    session_server,
)
from support.waiting import until

ACCOUNT = "0Uv000000000001CAA"
DAY = date(2024, 6, 1)


@pytest.fixture
async def replicas() -> AsyncIterator[list[RedisState]]:
    """Three replicas' backends on one Redis and one key prefix."""
    prefix = fresh_prefix()
    opened = [RedisState(session_server().url, key_prefix=prefix) for _ in range(3)]
    yield opened
    for state in opened:
        await state.aclose()


async def test_every_replica_counts_into_one_days_count(replicas: list[RedisState]) -> None:
    """60 counts spread over 3 replicas: each replica answers what it knows at once
    (its own counts on top of Redis's last answer), and Redis holds all 60."""
    marks = [state.budget_mark(ACCOUNT) for state in replicas]
    counts = await asyncio.gather(*(marks[n % 3].count(DAY) for n in range(60)))
    for replica in range(3):
        own = counts[replica::3]
        assert own == sorted(own) and own[-1] >= 20  # at least its own 20, in order
    assert [await mark.used(DAY) for mark in marks] == [60, 60, 60]
    assert await marks[0].count(DAY) == 61  # the total Redis answered, plus this one


async def test_counts_of_one_turn_go_to_redis_as_one_command(replicas: list[RedisState]) -> None:
    """The count is written behind: 50 counts of one turn of the event loop are one
    HINCRBY (and its EXPIRE) in one MULTI, not 50 round trips."""
    mark, ctx = replicas[0].budget_mark(ACCOUNT), replicas[0].context
    before = await _hincrbys(ctx.client)
    await asyncio.gather(*(mark.count(DAY) for _ in range(50)))
    assert await mark.used(DAY) == 50
    assert await _hincrbys(ctx.client) - before == 1


async def _hincrbys(client: redis.asyncio.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_hincrby", {}).get("calls", 0))


async def test_an_err_122_on_one_replica_is_seen_by_every_replica(
    replicas: list[RedisState],
) -> None:
    one, other, third = (state.budget_mark(ACCOUNT) for state in replicas)
    midnight = datetime(2024, 6, 2, 7, tzinfo=UTC)
    await one.exhaust(DAY, midnight)
    assert await other.exhausted_until(DAY) == midnight
    assert await third.exhausted_until(DAY) == midnight
    assert await other.exhausted_until(date(2024, 6, 2)) is None
    assert await replicas[0].budget_mark("0Uv000000000002CAA").exhausted_until(DAY) is None


async def test_a_days_keys_expire_by_themselves(replicas: list[RedisState]) -> None:
    mark = replicas[0].budget_mark(ACCOUNT)
    await mark.count(DAY)
    await mark.exhaust(DAY, datetime(2024, 6, 2, tzinfo=UTC))
    ctx = replicas[0].context
    ttl = await ctx.client.ttl(ctx.key("budget", ACCOUNT, DAY.isoformat()))
    assert 24 * 3600 < ttl <= 2 * 24 * 3600


async def test_redis_stopped_loses_no_count_and_fails_no_call(tmp_path: Path) -> None:
    """A count comes after its request was sent: Redis away must not fail the call
    (``count`` answers), the failure is reported (health NOT_SERVING, so no new call
    starts), and the counts are sent once Redis is back — none lost."""
    server = RedisServer(redis_server_binary(), tmp_path / "redis")
    server.start()
    state = RedisState(server.url, key_prefix=fresh_prefix(), timeout_s=0.5)
    state.health.probe_every_s = 0.05
    try:
        mark = state.budget_mark(ACCOUNT)
        assert await mark.count(DAY) == 1
        assert await mark.used(DAY) == 1
        server.stop()
        assert await mark.count(DAY) == 2  # answered from what it knows
        await until(lambda: not state.health.writable)
        with pytest.raises(StateUnwritable, match="the daily budget"):
            await mark.used(DAY)  # a read needs Redis
        server.start()  # no persistence: the day's count starts again, from what is unsent
        await until(lambda: state.health.writable)
        await mark.count(DAY)
        assert await mark.used(DAY) == 2  # the outage's count and this one
    finally:
        state.health.close()
        await state.aclose()
        server.stop()


async def test_a_read_of_the_mark_rides_the_slots_enter(replicas: list[RedisState]) -> None:
    """The transport asks for the mark just before it enters the slot: the enter's
    script reads it at Redis (one round trip for both, counted as redis-server's read
    events), and it reads what another replica marked."""
    state = replicas[0]
    mark, slots = state.budget_mark(ACCOUNT), state.slots(ACCOUNT, 5)
    reading = mark.exhausted_until(DAY)  # the first loads the script, opens connections
    async with slots:
        assert await reading is None
    midnight = datetime(2024, 6, 2, 7, tzinfo=UTC)
    await replicas[1].budget_mark(ACCOUNT).exhaust(DAY, midnight)
    await slots.drain()
    before = await read_events(state.context.client)
    reading = mark.exhausted_until(DAY)
    async with slots:
        assert await reading == midnight
        during = await read_events(state.context.client)
    assert during - before == 2  # the enter carrying the read, then this INFO


async def test_what_rode_a_cancelled_script_waits_again(replicas: list[RedisState]) -> None:
    """A slots script cancelled before Redis answered (a waiter's poll, its caller
    gone) may have carried another call's read and counts: they go again, alone, and
    nothing is lost or left waiting."""
    mark = replicas[0].budget_mark(ACCOUNT)
    await replicas[1].budget_mark(ACCOUNT).exhaust(DAY, datetime(2024, 6, 2, tzinfo=UTC))
    reading = mark.exhausted_until(DAY)
    await mark.count(DAY)
    ride = mark.ride()  # taken by a script…
    mark.returned(ride)  # …that was cancelled
    assert await asyncio.wait_for(reading, 5) == datetime(2024, 6, 2, tzinfo=UTC)
    assert await mark.used(DAY) == 1
