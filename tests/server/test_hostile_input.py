"""Hostile input over a real server: every refusal is INVALID_ARGUMENT (or gRPC's own
RESOURCE_EXHAUSTED for an oversized message) before anything reaches a connection, and
the server keeps serving. Path injection at Pardot is proven in tests/e2e/test_security.py;
generated requests in tests/e2e/test_fuzz.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.app import start_server
from server.config import ServiceConfig
from strategies.validation import MAX_MESSAGE_ID_LENGTH, MAX_TRAITS, MAX_VALUE_BYTES
from support.service import identify

if TYPE_CHECKING:
    from .conftest import LogCapture, Served, StubConnections

IDENTIFY = "/prospectsync.v1.ProspectSync/Identify"


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in rpc_status.from_call(error).details)
    return [v.field for v in bad.field_violations]


def reason(error: grpc.aio.AioRpcError) -> str:
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in rpc_status.from_call(error).details)
    return info.reason


async def refused(served: Served, request: pb.IdentifyRequest) -> grpc.aio.AioRpcError:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(request, timeout=5)
    assert served.connections.prospects == {}  # nothing was written anywhere
    return caught.value


async def still_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def custom_traits(count: int) -> dict[str, str]:
    return {"email": "tom@example.com", **{f"field_{i}": "x" for i in range(count - 1)}}


async def test_too_many_traits_are_refused(served: Served) -> None:
    error = await refused(served, identify(custom_traits(MAX_TRAITS + 1)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["traits"]
    assert f"at most {MAX_TRAITS} traits" in error.details()


async def test_as_many_traits_as_allowed_pass(served: Served) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    reply = await stub.Identify(identify(custom_traits(MAX_TRAITS)), timeout=5)
    assert reply.outcome == pb.OUTCOME_CREATED


async def test_a_value_over_the_size_limit_is_refused_counting_utf8_bytes(served: Served) -> None:
    # Fewer characters than the limit, more bytes: "é" is two bytes in UTF-8.
    notes = "é" * (MAX_VALUE_BYTES // 2 + 1)
    error = await refused(served, identify({"email": "tom@example.com", "notes": notes}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["traits.notes"]
    assert notes not in error.details()  # the value is never quoted back


async def test_a_value_at_the_size_limit_passes(served: Served) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    traits = {"email": "tom@example.com", "notes": "n" * MAX_VALUE_BYTES}
    reply = await stub.Identify(identify(traits), timeout=5)
    assert reply.outcome == pb.OUTCOME_CREATED


async def test_an_overlong_message_id_is_refused(served: Served) -> None:
    request = identify({"email": "tom@example.com"}, message_id="m" * (MAX_MESSAGE_ID_LENGTH + 1))
    error = await refused(served, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["message_id"]


async def test_a_message_over_the_size_limit_is_refused_and_the_server_goes_on(
    stub_connections: StubConnections, make_config: Callable[..., ServiceConfig]
) -> None:
    running = await start_server(make_config(max_message_bytes=4096), connections=stub_connections)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = pb_grpc.ProspectSyncStub(channel)
            big = identify({"email": "tom@example.com", "notes": "n" * 5000})
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Identify(big, timeout=5)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert stub_connections.deadlines == []  # refused before the servicer
            small = await stub.Identify(identify({"email": "tom@example.com"}), timeout=5)
            assert small.outcome == pb.OUTCOME_CREATED
            await still_serving(channel)
    finally:
        await running.stop(0)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        if not number:
            return bytes([*out, byte])
        out.append(byte | 0x80)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def deeply_nested_traits(depth: int) -> bytes:
    """An IdentifyRequest whose traits nest ``depth`` Structs deep: valid protobuf that a
    generated stub cannot build (protobuf refuses past 100 levels), so built by hand."""
    value = _field(3, b"x")  # Value.string_value
    for _ in range(depth):
        struct = _field(1, _field(1, b"a") + _field(2, value))  # Struct.fields["a"]
        value = _field(5, struct)  # Value.struct_value
    return _field(4, _field(1, _field(1, b"deep") + _field(2, value)))  # IdentifyRequest.traits


@pytest.mark.parametrize(
    "payload",
    [deeply_nested_traits(150), b"\xff\xff\xff\xff", _field(4, b"\x0a\x05ab")],
    ids=["nested-150-deep", "not-protobuf", "truncated-struct"],
)
async def test_an_undecodable_request_is_invalid_argument(served: Served, payload: bytes) -> None:
    call = served.channel.unary_unary(IDENTIFY)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(payload, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(caught.value) == "MALFORMED_REQUEST"
    assert "DecodeError" not in caught.value.details() and "upb" not in caught.value.details()
    assert served.connections.deadlines == []
    await still_serving(served.channel)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
async def test_nan_or_infinity_in_traits_is_invalid_argument(served: Served, number: float) -> None:
    request = identify({"email": "tom@example.com"})
    request.traits.fields["score"].number_value = number
    error = await refused(served, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["traits"]


MEGABYTE = 1_000_000


async def test_a_megabyte_event_name_is_refused_and_never_logged_whole(
    served: Served, logs: LogCapture
) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    name = "e" * MEGABYTE
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Track(pb.TrackRequest(event=name, message_id="m-1"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == ["event"]
    assert served.connections.deadlines == []  # no connection was asked for a gateway
    assert logs.named("rpc.done")  # the call was logged…
    assert len(logs.text) < 10_000  # …and nothing of it holds the name


async def test_a_megabyte_user_id_never_reaches_a_connection(served: Served) -> None:
    request = identify({"email": "tom@example.com"}, user_id="u" * MEGABYTE)
    error = await refused(served, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["user_id"]
    assert served.connections.deadlines == []  # no gateway opened: no identity map write
