"""message_id across replicas (issue 13): on shared records a duplicate of a message
another process is running waits for that one's result instead of running it too, and
runs at once when that attempt fails. Two ``RedisState`` on one key prefix stand for
two replicas, each with its own ``Idempotency`` (its own single flight)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from clients.state.protocols import IdempotencyKey
from clients.state.redis.state import RedisState
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.idempotency import Idempotency
from strategies.core.errors import PardotUnavailable
from support.redis_server import fresh_prefix, session_server
from support.waiting import until

KEY = IdempotencyKey("/prospectsync.v1.ProspectSync/Identify", "default", "m-1")


@pytest.fixture
async def replicas() -> AsyncIterator[tuple[Idempotency, Idempotency]]:
    prefix = fresh_prefix()
    states = [RedisState(session_server().url, key_prefix=prefix) for _ in range(2)]
    guards = [Idempotency(state.responses(window_s=60.0)) for state in states]
    yield guards[0], guards[1]
    for guard, state in zip(guards, states, strict=True):
        guard.close()
        await state.aclose()


def created(prospect_id: str) -> pb.IdentifyResponse:
    return pb.IdentifyResponse(prospect_id=prospect_id, outcome=pb.OUTCOME_CREATED)


async def test_a_duplicate_in_flight_on_another_replica_waits_for_its_result(
    replicas: tuple[Idempotency, Idempotency],
) -> None:
    here, there = replicas
    release = asyncio.Event()
    runs: list[str] = []

    async def first() -> pb.IdentifyResponse:
        runs.append("first")
        await release.wait()
        return created("7")

    async def second() -> pb.IdentifyResponse:
        runs.append("second")
        return created("8")

    running = asyncio.ensure_future(here.once(KEY, pb.IdentifyResponse, first))
    await until(lambda: runs == ["first"])
    duplicate = asyncio.ensure_future(there.once(KEY, pb.IdentifyResponse, second))
    await asyncio.sleep(0.2)  # it would have run by now, were it not waiting
    assert runs == ["first"] and not duplicate.done()
    release.set()
    assert (await running).outcome == pb.OUTCOME_CREATED
    replayed = await asyncio.wait_for(duplicate, 10)
    assert (replayed.prospect_id, replayed.outcome) == ("7", pb.OUTCOME_DUPLICATE_MESSAGE)
    assert runs == ["first"]


async def test_a_failed_attempt_on_another_replica_lets_the_duplicate_run_at_once(
    replicas: tuple[Idempotency, Idempotency],
) -> None:
    here, there = replicas
    fail = asyncio.Event()
    runs: list[str] = []

    async def first() -> pb.IdentifyResponse:
        runs.append("first")
        await fail.wait()
        raise PardotUnavailable("Pardot did not answer")

    async def second() -> pb.IdentifyResponse:
        runs.append("second")
        return created("8")

    running = asyncio.ensure_future(here.once(KEY, pb.IdentifyResponse, first))
    await until(lambda: runs == ["first"])
    duplicate = asyncio.ensure_future(there.once(KEY, pb.IdentifyResponse, second))
    await asyncio.sleep(0.1)
    assert not duplicate.done()
    fail.set()
    with pytest.raises(PardotUnavailable):
        await running
    answered = await asyncio.wait_for(duplicate, 5)  # well within the 10 s lease
    assert (answered.prospect_id, answered.outcome) == ("8", pb.OUTCOME_CREATED)
    assert runs == ["first", "second"]
