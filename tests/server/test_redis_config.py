"""``server.state = "redis"``: ``server.app.open_state`` builds the Redis backend from
``[redis]``, two servers on one key prefix share what they remember (two replicas),
and a Redis that does not answer at start leaves the server up but NOT_SERVING,
refusing calls before any Pardot call, until Redis answers.

Real components: the servers run in this process on 127.0.0.1:0 against fakepardot
over HTTP and a real redis-server (tests/support/redis_server.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from clients.state.redis.state import RedisState
from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.app import SERVICE_NAME, open_state
from support.redis_server import RedisServer, fresh_prefix, redis_server_binary, session_server
from support.service import Service, close_service, config_for, identify, on_redis, open_service

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def refusal(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    """The refused call's code and ErrorInfo reason."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    status = rpc_status.from_call(caught.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:
        detail.Unpack(info)
    return caught.value.code(), info.reason


async def health_of(service: Service) -> set[int]:
    stub = health_pb2_grpc.HealthStub(service.channel)
    return {
        (await stub.Check(health_pb2.HealthCheckRequest(service=name))).status
        for name in ("", SERVICE_NAME)
    }


@pytest.fixture
async def replicas(fake: FakePardot, tmp_path: Path) -> AsyncIterator[tuple[Service, Service]]:
    """Two servers on the session's Redis under one prefix, each with a state_dir of
    its own (so nothing they share can come from SQLite)."""
    url, prefix = session_server().url, fresh_prefix()
    first = await open_service(on_redis(config_for(fake, tmp_path / "a"), url, prefix))
    try:
        second = await open_service(on_redis(config_for(fake, tmp_path / "b"), url, prefix))
        try:
            yield first, second
        finally:
            await close_service(second)
    finally:
        await close_service(first)


def test_open_state_builds_the_redis_backend_from_the_redis_table(
    fake: FakePardot, tmp_path: Path
) -> None:
    config = on_redis(config_for(fake, tmp_path), "redis://127.0.0.1:1/0", "ps-test:")
    state = open_state(config)
    assert isinstance(state, RedisState)
    assert state.context.prefix == "ps-test:"
    asyncio.run(state.aclose())


async def test_a_message_answered_on_one_replica_is_a_duplicate_on_the_other(
    fake: FakePardot, replicas: tuple[Service, Service]
) -> None:
    first, second = replicas
    assert await health_of(first) == await health_of(second) == {SERVING}
    sent = identify({"email": "shared@example.com"}, create_when_unmatched=True, message_id="r-1")
    assert (await first.stub.Identify(sent)).outcome == pb.OUTCOME_CREATED
    calls = len(fake.state.calls)

    assert (await second.stub.Identify(sent)).outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert len(fake.state.calls) == calls  # answered from Redis: no Pardot call at all
    assert [p["email"] for p in fake.state.prospects("v4")] == ["shared@example.com"]


@pytest.fixture
def absent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, on a port where nothing answers yet (the
    session's server is shared by other tests: never stopped here)."""
    server = RedisServer(redis_server_binary(), tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


async def test_a_redis_that_does_not_answer_at_start_means_not_serving_until_it_does(
    fake: FakePardot, tmp_path: Path, absent_redis: RedisServer
) -> None:
    config = on_redis(config_for(fake, tmp_path / "state"), absent_redis.url, fresh_prefix())
    service = await open_service(config)  # starts: an orchestrator promises no start order
    try:
        assert await health_of(service) == {NOT_SERVING}
        calls = len(fake.state.calls)
        sent = identify({"email": "late@example.com"}, create_when_unmatched=True, message_id="l-1")
        assert await refusal(service.stub.Identify(sent)) == (
            grpc.StatusCode.UNAVAILABLE,
            "STATE_UNAVAILABLE",
        )
        assert len(fake.state.calls) == calls  # refused before any Pardot call

        absent_redis.start()
        stub = health_pb2_grpc.HealthStub(service.channel)
        async with asyncio.timeout(30.0):  # the health's probe runs every 2 s
            async for answer in stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME)):
                if answer.status == SERVING:
                    break
        assert await health_of(service) == {SERVING}
        assert (await service.stub.Identify(sent)).outcome == pb.OUTCOME_CREATED
    finally:
        await close_service(service)
