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

from clients.state.redis.state import RedisState
from strategies.core.errors import StateUnwritable
from support.redis_server import RedisServer, fresh_prefix, redis_server_binary, session_server

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
    marks = [state.budget_mark(ACCOUNT) for state in replicas]
    counts = await asyncio.gather(*(marks[n % 3].count(DAY) for n in range(60)))
    assert sorted(counts) == list(range(1, 61))  # each count seen once: atomic across replicas
    assert [await mark.used(DAY) for mark in marks] == [60, 60, 60]


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


async def test_redis_stopped_fails_the_count_and_it_recovers_when_redis_returns(
    tmp_path: Path,
) -> None:
    server = RedisServer(redis_server_binary(), tmp_path / "redis")
    server.start()
    state = RedisState(server.url, key_prefix=fresh_prefix(), timeout_s=0.5)
    try:
        mark = state.budget_mark(ACCOUNT)
        assert await mark.count(DAY) == 1
        server.stop()
        with pytest.raises(StateUnwritable, match="the daily budget"):
            await mark.count(DAY)
        assert not state.health.writable
        server.start()  # no persistence: the count starts again
        assert await mark.count(DAY) == 1
    finally:
        state.health.close()
        await state.aclose()
        server.stop()
