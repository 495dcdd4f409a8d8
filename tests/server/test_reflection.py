"""Server reflection under both names: grpc.reflection.v1 (what current grpcurl, grpcui
and Postman ask first) and grpc.reflection.v1alpha (what older clients, and the pinned
grpcurl, ask). A v1 request is sent raw here, the way a v1-only client sends it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2 as wire  # v1's messages, byte for byte

from server.app import REFLECTION_V1_SERVICE_NAME, SERVICE_NAME, start_server
from server.config import ServiceConfig
from support.grpcurl import grpcurl, needs_grpcurl

if TYPE_CHECKING:
    from .conftest import Served, StubConnections

MakeConfig = Callable[..., ServiceConfig]

V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
ALL_SERVICES = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    SERVICE_NAME,
]


async def reflect_v1(
    channel: grpc.aio.Channel, *requests: wire.ServerReflectionRequest
) -> list[wire.ServerReflectionResponse]:
    call = channel.stream_stream(
        V1_METHOD,
        request_serializer=wire.ServerReflectionRequest.SerializeToString,
        response_deserializer=wire.ServerReflectionResponse.FromString,
    )
    return [reply async for reply in call(iter(requests), timeout=10)]


def files(reply: wire.ServerReflectionResponse) -> Sequence[descriptor_pb2.FileDescriptorProto]:
    return [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]


async def test_v1_lists_every_service(served: Served) -> None:
    [reply] = await reflect_v1(served.channel, wire.ServerReflectionRequest(list_services=""))
    assert sorted(s.name for s in reply.list_services_response.service) == ALL_SERVICES


async def test_v1_describes_our_service_with_its_imports(served: Served) -> None:
    [reply] = await reflect_v1(
        served.channel, wire.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME)
    )
    names = [f.name for f in files(reply)]
    assert names[0] == "prospectsync/v1/prospect_sync.proto"
    assert "google/rpc/status.proto" in names
    [service] = files(reply)[0].service
    assert [m.name for m in service.method] == [
        "Identify",
        "Track",
        "GetTrackingSnippet",
        "BatchSync",
        "Forget",
    ]


async def test_v1_describes_itself_as_grpc_reflection_v1(served: Served) -> None:
    [reply] = await reflect_v1(
        served.channel,
        wire.ServerReflectionRequest(file_containing_symbol=REFLECTION_V1_SERVICE_NAME),
    )
    [file] = files(reply)
    assert file.name == "grpc/reflection/v1/reflection.proto"
    assert file.package == "grpc.reflection.v1"
    [method] = file.service[0].method
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"
    assert method.output_type == ".grpc.reflection.v1.ServerReflectionResponse"
    assert all("v1alpha" not in f.type_name for m in file.message_type for f in m.field)


async def test_v1_answers_an_unknown_symbol_with_not_found(served: Served) -> None:
    [reply] = await reflect_v1(
        served.channel, wire.ServerReflectionRequest(file_containing_symbol="nope.v1.Nope")
    )
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


@needs_grpcurl
async def test_grpcurl_lists_and_describes_both_reflection_services(served: Served) -> None:
    code, out, err = await grpcurl(served.running.port, "list")
    assert code == 0, err
    assert out.split() == ALL_SERVICES
    code, out, err = await grpcurl(served.running.port, "describe", REFLECTION_V1_SERVICE_NAME)
    assert code == 0, err
    assert "rpc ServerReflectionInfo ( stream .grpc.reflection.v1.ServerReflectionRequest )" in out


async def test_v1_is_off_with_reflection(
    stub_connections: StubConnections, make_config: MakeConfig
) -> None:
    running = await start_server(make_config(reflection=False), connections=stub_connections)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await reflect_v1(channel, wire.ServerReflectionRequest(list_services=""))
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await running.stop(0)
