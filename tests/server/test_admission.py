"""server.max_in_flight: the excess of a burst gets documented backpressure at once."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from server.interceptors import AdmissionInterceptor, RpcContextInterceptor

release = asyncio.Event()


async def slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await release.wait()
    return request


@pytest.fixture
async def channel():
    release.clear()
    server = grpc.aio.server(interceptors=[RpcContextInterceptor(), AdmissionInterceptor(3)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Slow", {"Call": grpc.unary_unary_rpc_method_handler(slow)}
            ),
        )
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    release.set()
    await server.stop(0)


async def test_calls_past_the_cap_are_refused_with_retry_info(channel) -> None:
    call = channel.unary_unary("/test.Slow/Call")
    admitted = [asyncio.ensure_future(call(b"x", timeout=10)) for _ in range(3)]
    await asyncio.sleep(0.2)  # the three are in progress
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(b"x", timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "server.max_in_flight" in caught.value.details()
    status = rpc_status.from_call(caught.value)
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert any(d.Unpack(info) for d in status.details) and info.reason == "SERVER_BUSY"
    assert any(d.Unpack(retry) for d in status.details) and retry.retry_delay.seconds == 1

    # Health is never refused, even at the cap.
    health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    release.set()
    assert await asyncio.gather(*admitted) == [b"x"] * 3
    assert await call(b"y", timeout=10) == b"y"  # the count went back down
