"""The running server over real sockets: health, reflection, the RPCs' statuses, the
per-call log, deadlines and the shutdown order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import descriptor_pool, struct_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.app import SERVICE_NAME, start_server
from server.config import ConfigError, ServiceConfig
from support.waiting import until

if TYPE_CHECKING:  # the fixtures' types (conftest.py)
    from .conftest import LogCapture, Served, StubConnections

MakeConfig = Callable[..., ServiceConfig]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def struct(**values: object) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def identify(
    email: str = "tom@example.com", *, message_id: str = "", **settings: object
) -> pb.IdentifyRequest:
    """A fresh message_id per call unless one is given: a repeat would be a replay."""
    return pb.IdentifyRequest(
        message_id=message_id or f"msg-{uuid.uuid4().hex}",
        user_id="u-1",
        traits=struct(email=email, first_name="Tom"),
        settings=pb.PardotSettings(**settings),
    )


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details)
    return info


# --- health and reflection ---------------------------------------------------------


@pytest.mark.parametrize("service", ["", SERVICE_NAME])
async def test_health_says_serving(served: Served, service: str) -> None:
    health = health_pb2_grpc.HealthStub(served.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert reply.status == SERVING


async def test_health_does_not_know_other_services(served: Served) -> None:
    health = health_pb2_grpc.HealthStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await health.Check(health_pb2.HealthCheckRequest(service="nope.v1.Nope"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def reflect(target: str) -> tuple[set[str], list[str]]:
    """What a reflection client (grpcurl's view) sees: the services, and the methods of
    ours resolved from the descriptors the server sends."""
    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        pool = descriptor_pool.DescriptorPool(database)
        methods = [m.name for m in pool.FindServiceByName(SERVICE_NAME).methods]
    return services, methods


async def test_reflection_lists_and_describes_the_service(served: Served) -> None:
    # The reflection client is synchronous: run it off the loop the server runs on.
    services, methods = await asyncio.wait_for(asyncio.to_thread(reflect, served.target), 10)
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= services
    assert methods == ["Identify", "Track", "GetTrackingSnippet", "BatchSync", "Forget"]


async def test_reflection_can_be_switched_off(
    stub_connections: StubConnections, make_config: MakeConfig
) -> None:
    running = await start_server(make_config(reflection=False), connections=stub_connections)
    try:
        with pytest.raises(grpc.RpcError) as caught:
            await asyncio.wait_for(asyncio.to_thread(reflect, f"127.0.0.1:{running.port}"), 10)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await running.stop(0)


# --- the RPCs ----------------------------------------------------------------------


async def test_identify_runs_the_strategy_and_reports_its_calls(served: Served) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    first = await stub.Identify(identify(), timeout=5)
    assert first.strategy == "EmailV3"
    assert first.outcome == pb.OUTCOME_CREATED
    assert first.prospect_id.isdigit()
    assert [(c.method, c.path, c.http_status) for c in first.pardot_calls] == [
        ("POST", "/memory/write", 200)
    ]
    assert first.pardot_calls[0].attempt == 1

    again = await stub.Identify(identify(), timeout=5)
    assert (again.outcome, again.prospect_id) == (pb.OUTCOME_UPDATED, first.prospect_id)


async def test_identify_passes_the_callers_deadline_down(served: Served) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    await stub.Identify(identify(), timeout=5)
    await stub.Identify(identify())
    with_deadline, without = served.connections.deadlines
    assert without is None
    # An absolute time.monotonic() value about 5 s ahead (gRPC rounds the timeout it
    # sends, so allow a little over).
    assert with_deadline is not None and 0 < with_deadline - time.monotonic() <= 6


async def test_a_caller_mistake_is_invalid_argument_naming_the_field(served: Served) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(identify(email=""), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "traits.email" in caught.value.details()
    status = rpc_status.from_call(caught.value)
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    assert [v.field for v in bad.field_violations] == ["traits.email"]


async def test_an_unknown_api_version_is_invalid_argument(served: Served) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(identify(api_version=6), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("settings.api_version")


async def test_v4_with_no_way_to_match_is_failed_precondition(served: Served) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(identify(connection="v4"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(caught.value).reason == "NO_MATCHING_STRATEGY"
    assert served.connections.deadlines == []  # refused before any gateway was made


async def test_concurrent_first_identifies_of_one_person_create_one_prospect(
    served: Served,
) -> None:
    """LookupFieldV4 reads before it creates: without one-at-a-time per person, every
    concurrent first call would read "nobody" and create its own prospect."""

    async def interleave(_operation: str) -> None:
        await asyncio.sleep(0.002)  # let the other calls run between each Pardot call

    served.connections.before = interleave
    stub = pb_grpc.ProspectSyncStub(served.channel)
    request = pb.IdentifyRequest(
        traits=struct(email="race@example.com", org_id="o-race"),
        settings=pb.PardotSettings(connection="v4", lookup_field="org_id"),
    )
    replies = await asyncio.gather(*(stub.Identify(request, timeout=10) for _ in range(8)))
    assert {r.strategy for r in replies} == {"LookupFieldV4"}
    assert len(served.connections.prospects) == 1
    assert [r.outcome for r in replies].count(pb.OUTCOME_CREATED) == 1
    assert {r.prospect_id for r in replies} == {replies[0].prospect_id}


async def test_an_unexpected_failure_is_internal_without_a_trace(
    served: Served, logs: LogCapture, configured_secret: str
) -> None:
    async def explode(operation: str) -> None:
        raise RuntimeError(f"kaboom in {operation} with {configured_secret}")

    served.connections.before = explode
    stub = pb_grpc.ProspectSyncStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(identify(), timeout=5)

    assert caught.value.code() == grpc.StatusCode.INTERNAL
    details = caught.value.details()
    assert "kaboom" not in details and "Traceback" not in details and "RuntimeError" not in details
    [logged] = logs.named("rpc.unexpected_error")
    assert logged["error_id"] in details
    assert "kaboom" in logged["exception"] and "Traceback" in logged["exception"]
    assert configured_secret not in logs.text
    assert "[REDACTED]" in logged["exception"]


async def test_one_rpc_done_event_per_call_with_its_context(
    served: Served, logs: LogCapture
) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    await stub.Identify(identify(message_id="msg-1"), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Identify(identify(email=""), timeout=5)

    # A refused call's status reaches the caller as it is aborted, its log line just
    # after: wait for both lines rather than race the server's last step.
    await until(lambda: len(logs.named("rpc.done")) == 2)
    ok, refused = logs.named("rpc.done")
    assert ok["method"] == "/prospectsync.v1.ProspectSync/Identify"
    assert (ok["code"], ok["message_id"], ok["connection"]) == ("OK", "msg-1", "default")
    assert (ok["strategy"], ok["outcome"], ok["pardot_calls"]) == ("EmailV3", "CREATED", 1)
    assert isinstance(ok["latency_ms"], float)
    assert (refused["code"], refused["reason"]) == ("INVALID_ARGUMENT", "INVALID_ARGUMENT")
    assert "outcome" not in refused  # no field of the first call leaked into the second


async def test_secrets_in_a_request_never_reach_logs_or_statuses(
    served: Served, logs: LogCapture, configured_secret: str
) -> None:
    """A caller (by mistake) sends a configured secret as settings.strategy; the registry
    refuses it and quotes the name it got: neither the status nor the log may repeat it."""
    stub = pb_grpc.ProspectSyncStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(identify(strategy=configured_secret), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = caught.value.details()
    assert details.startswith("settings.strategy") and "[REDACTED]" in details
    assert configured_secret.encode() not in b"".join(
        value for _, value in caught.value.trailing_metadata() if isinstance(value, bytes)
    )
    await until(lambda: bool(logs.named("rpc.done")))  # written just after the abort
    assert configured_secret not in logs.text


# --- start and stop ------------------------------------------------------------------


async def test_a_port_in_use_is_a_config_error_naming_the_setting(
    served: Served, stub_connections: StubConnections, make_config: MakeConfig
) -> None:
    with pytest.raises(ConfigError, match=r"^--listen: cannot listen on 127\.0\.0\.1:"):
        await start_server(make_config(), listen=served.target, connections=stub_connections)
    assert stub_connections.closed  # what the server was given, it closes even on failure


async def test_shutdown_goes_not_serving_then_drains_then_closes(
    served: Served,
) -> None:
    """Order on SIGTERM: health NOT_SERVING first, in-flight calls finish within the
    grace period, and only then are the Pardot clients closed."""
    entered, release = asyncio.Event(), asyncio.Event()

    async def hold(_operation: str) -> None:
        entered.set()
        await release.wait()

    served.connections.before = hold
    health = health_pb2_grpc.HealthStub(served.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert (await asyncio.wait_for(watch.read(), 5)).status == SERVING

    in_flight = asyncio.ensure_future(
        pb_grpc.ProspectSyncStub(served.channel).Identify(identify(), timeout=10)
    )
    await asyncio.wait_for(entered.wait(), 5)
    stopping = asyncio.ensure_future(served.running.stop(grace=5))

    assert (await asyncio.wait_for(watch.read(), 5)).status == NOT_SERVING
    assert not served.connections.closed and not in_flight.done()
    watch.cancel()  # an open Watch stream would hold the server for the whole grace

    release.set()
    reply = await asyncio.wait_for(in_flight, 5)
    assert reply.outcome == pb.OUTCOME_CREATED
    await asyncio.wait_for(stopping, 5)
    assert served.connections.closed
