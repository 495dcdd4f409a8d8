"""server.max_in_flight: the excess of a burst gets documented backpressure at once."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from prospectsync.v1 import prospect_sync_pb2 as pb
from server.interceptors import AdmissionInterceptor, RpcContextInterceptor
from support.waiting import until

release = asyncio.Event()


async def slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await release.wait()
    return request


def fresh_release() -> None:
    """Each test runs in its own event loop, and an Event belongs to the first loop that
    waits on it: every server gets a new one."""
    global release
    release = asyncio.Event()


@pytest.fixture
async def channel():
    fresh_release()
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


# --- the cap counts items: a BatchSync of N items takes N units ---------------------


async def batch_behaviour(
    request: pb.BatchSyncRequest, context: grpc.aio.ServicerContext
) -> pb.BatchSyncResponse:
    await release.wait()
    return pb.BatchSyncResponse(results=[pb.BatchSyncResult() for _ in request.items])


@pytest.fixture
async def batch_channel():
    """A real server with a cap of 10 units, a slow unary method and a slow method that
    takes BatchSync's own request message (as the servicer's does)."""
    fresh_release()
    admission = AdmissionInterceptor(10)
    server = grpc.aio.server(interceptors=[RpcContextInterceptor(), admission])
    handlers = {
        "Call": grpc.unary_unary_rpc_method_handler(slow),
        "BatchSync": grpc.unary_unary_rpc_method_handler(
            batch_behaviour,
            request_deserializer=pb.BatchSyncRequest.FromString,
            response_serializer=pb.BatchSyncResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Slow", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, admission
    release.set()
    await server.stop(0)


def batch_of(count: int) -> bytes:
    item = pb.BatchSyncItem(identify=pb.IdentifyRequest(message_id="m"))
    return pb.BatchSyncRequest(items=[item] * count).SerializeToString()


def reason_of(error: grpc.aio.AioRpcError) -> tuple[str, error_details_pb2.RetryInfo | None]:
    status = rpc_status.from_call(error)
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert any(d.Unpack(info) for d in status.details)
    return info.reason, retry if any(d.Unpack(retry) for d in status.details) else None


async def test_a_batch_takes_one_unit_per_item(batch_channel) -> None:
    """Under a cap of 10: a 7-item BatchSync and 3 unary calls fill it (10 units), so
    one more unary call is refused although only 4 calls are in progress. Counting
    calls, that call and 6 more BatchSync would have got in."""
    channel, admission = batch_channel
    unary = channel.unary_unary("/test.Slow/Call")
    batch = channel.unary_unary("/test.Slow/BatchSync")
    admitted = [asyncio.ensure_future(batch(batch_of(7), timeout=10))]
    admitted += [asyncio.ensure_future(unary(b"x", timeout=10)) for _ in range(3)]
    await until(lambda: admission.in_flight == 10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(b"y", timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    reason, retry = reason_of(caught.value)
    assert reason == "SERVER_BUSY" and retry is not None and retry.retry_delay.seconds == 1
    assert "server.max_in_flight" in caught.value.details()

    release.set()
    replies = await asyncio.gather(*admitted)
    assert len(pb.BatchSyncResponse.FromString(replies[0]).results) == 7
    assert replies[1:] == [b"x"] * 3
    assert admission.in_flight == 0


async def test_a_batch_that_does_not_fit_is_refused_while_others_run(batch_channel) -> None:
    """With 3 unary calls in progress, an 8-item BatchSync (11 units) is refused at once
    with SERVER_BUSY and RetryInfo; a 7-item one (10 units) fits and runs."""
    channel, admission = batch_channel
    unary = channel.unary_unary("/test.Slow/Call")
    batch = channel.unary_unary("/test.Slow/BatchSync")
    admitted = [asyncio.ensure_future(unary(b"x", timeout=10)) for _ in range(3)]
    await until(lambda: admission.in_flight == 3)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batch(batch_of(8), timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    reason, retry = reason_of(caught.value)
    assert reason == "SERVER_BUSY" and retry is not None
    assert "server.max_in_flight" in caught.value.details()
    assert "8 items" in caught.value.details()

    fits = asyncio.ensure_future(batch(batch_of(7), timeout=10))
    await until(lambda: admission.in_flight == 10)
    release.set()
    assert len(pb.BatchSyncResponse.FromString(await fits).results) == 7
    assert await asyncio.gather(*admitted) == [b"x"] * 3
    # Everything ended: the units went back, and a full-cap batch runs alone.
    reply = await batch(batch_of(10), timeout=10)
    assert len(pb.BatchSyncResponse.FromString(reply).results) == 10


async def test_a_batch_larger_than_the_cap_is_refused_for_good(batch_channel) -> None:
    """11 items can never fit under a cap of 10: FAILED_PRECONDITION naming the limit
    and the setting, no RetryInfo (waiting would not help), even with nothing else in
    progress."""
    channel, _ = batch_channel
    batch = channel.unary_unary("/test.Slow/BatchSync")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batch(batch_of(11), timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    reason, retry = reason_of(caught.value)
    assert reason == "FAILED_PRECONDITION" and retry is None
    details = caught.value.details()
    assert "server.max_in_flight = 10" in details and "11 items" in details
