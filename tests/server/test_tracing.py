"""The traces' promises, recorded by the OpenTelemetry SDK's in-memory exporter from a
real grpc.aio server (the real servicer over fakepardot, behind the tracing interceptor):

- each unary RPC is one SERVER span, and each Pardot request it makes (the token grant
  too) a CLIENT span that is its child, carrying strategy, connection, batch size and
  err_code; a caller's ``traceparent`` makes the RPC span part of the caller's trace;
- no attribute of any span, nor its status text, holds the email sent or a secret;
- with an OTLP endpoint, the spans reach a real OTLP/gRPC collector (a TraceService
  on loopback), under our protobuf pin.

OpenTelemetry lets a process install its tracer provider once: this module installs
one whose sampler records only while a test here has switched it on, so the tests
that run later in the same process record nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from clients.connections import PardotConnections
from clients.state.local import LocalState
from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.app import open_connections, open_state
from server.config import ConfigError, ServiceConfig, TracingConfig, parse_config
from server.interceptors import RpcContextInterceptor
from server.servicer import ProspectSyncServicer
from server.tracing import RpcTracingInterceptor, tracer_provider
from support.service import config_for, identify

from .conftest import offline_config

EMAIL = "margaret.hamilton@example.com"
SECRETS = (DEMO.client_secret, DEMO.refresh_token, DEMO.password, DEMO.user_key)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class _WhileOn(Sampler):
    """Records while ``on``; drops every span otherwise (the other tests' calls)."""

    def __init__(self) -> None:
        self.on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
    ) -> SamplingResult:
        if not self.on:
            return SamplingResult(Decision.DROP)
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links)

    def get_description(self) -> str:
        return "while a tracing test runs"


_SAMPLER = _WhileOn()
_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (installed once), recording for this test only."""
    installed = trace.get_tracer_provider()
    if not isinstance(installed, TracerProvider):
        provider = TracerProvider(sampler=_SAMPLER)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider().sampler is _SAMPLER, "another provider was installed"  # type: ignore[attr-defined]
    _EXPORTER.clear()
    _SAMPLER.on = True
    yield _EXPORTER
    _SAMPLER.on = False
    _EXPORTER.clear()


@dataclass
class TracedService:
    server: grpc.aio.Server
    port: int
    channel: grpc.aio.Channel
    stub: pb_grpc.ProspectSyncStub
    connections: PardotConnections
    state: LocalState


async def traced_service(
    config: ServiceConfig, provider: trace.TracerProvider | None = None
) -> TracedService:
    """The ProspectSync servicer over real connections to fakepardot, behind the tracing
    interceptor and the RPC context interceptor (issue14-metrics-hooks.md's order)."""
    state = open_state(config)
    connections = open_connections(config, state)
    server = grpc.aio.server(
        interceptors=[RpcTracingInterceptor(provider), RpcContextInterceptor()]
    )
    servicer = ProspectSyncServicer(
        connections, person_locks=state.person_locks(), state_health=state.health
    )
    pb_grpc.add_ProspectSyncServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return TracedService(
        server, port, channel, pb_grpc.ProspectSyncStub(channel), connections, state
    )


@pytest.fixture
async def service(fake: FakePardot, tmp_path: Path) -> AsyncIterator[TracedService]:
    opened = await traced_service(config_for(fake, tmp_path / "state"))
    yield opened
    await close(opened)


async def close(service: TracedService) -> None:
    await service.channel.close()
    await service.server.stop(None)
    await service.connections.aclose()
    service.state.health.close()


def every_text(span: ReadableSpan) -> list[str]:
    """Everything a span says in words: its name, status text, attributes, events."""
    texts = [span.name, span.status.description or ""]
    texts += [f"{key}={value}" for key, value in (span.attributes or {}).items()]
    for event in span.events:
        texts.append(event.name)
        texts += [f"{key}={value}" for key, value in (event.attributes or {}).items()]
    return texts


def assert_nothing_private(finished: Sequence[ReadableSpan]) -> None:
    for span in finished:
        for text in every_text(span):
            assert "@" not in text and "hamilton" not in text, (span.name, text)
            for secret in SECRETS:
                assert secret not in text, (span.name, "a secret")


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_an_rpc_span_has_a_child_span_per_pardot_request(
    service: TracedService, spans: InMemorySpanExporter
) -> None:
    # LookupFieldV4, cold: a token grant, a read by email (the email is in its path) and
    # a create; the caller's trace goes on through the service.
    response = await service.stub.Identify(
        identify({"email": EMAIL, "org_id": "org-77"}, lookup_field="org_id"),
        metadata=(("traceparent", TRACEPARENT),),
    )
    assert response.prospect_id

    finished = spans.get_finished_spans()
    (rpc,) = [s for s in finished if s.kind is SpanKind.SERVER]
    pardot = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert rpc.name == "prospectsync.v1.ProspectSync/Identify"
    assert rpc.context is not None and rpc.parent is not None
    assert f"{rpc.context.trace_id:032x}" == TRACEPARENT.split("-")[1]
    assert attributes(rpc) | {"rpc.grpc.status_code": 0} == attributes(rpc)
    assert attributes(rpc)["prospectsync.strategy"] == "LookupFieldV4"
    assert attributes(rpc)["prospectsync.connection"] == "default"
    assert attributes(rpc)["prospectsync.outcome"] == "CREATED"

    kinds = [attributes(s)["prospectsync.pardot.kind"] for s in pardot]
    assert kinds == ["oauth/token", "v4/prospect/read", "v4/prospect/create"]
    for span in pardot:
        assert span.parent is not None and span.parent.span_id == rpc.context.span_id
        assert attributes(span)["prospectsync.connection"] == "default"
        assert "prospectsync.pardot.batch_size" in attributes(span)
        assert "prospectsync.pardot.err_code" in attributes(span)
    read, create = pardot[1:]
    assert attributes(read)["prospectsync.strategy"] == "LookupFieldV4"
    # Nobody has that email yet: v4 answers the read with err 4, as Pardot does.
    assert attributes(read)["prospectsync.pardot.err_code"] == 4
    assert attributes(create)["prospectsync.pardot.outcome"] == "ok"
    assert_nothing_private(finished)


async def test_a_failed_call_says_its_code_and_err_code_but_not_the_details(
    service: TracedService, spans: InMemorySpanExporter, fake: FakePardot
) -> None:
    fake.state.inject("err", err_code=4, path_contains="/do/upsert")  # invalid email, v3
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await service.stub.Identify(identify({"email": EMAIL}, connection="v3"))

    finished = spans.get_finished_spans()
    (rpc,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert rpc.status.status_code is trace.StatusCode.ERROR
    assert rpc.status.description == failed.value.code().name
    assert attributes(rpc)["rpc.grpc.status_code"] == failed.value.code().value[0]
    assert attributes(rpc)["prospectsync.err_code"] == 4
    (upsert,) = [s for s in finished if attributes(s).get("prospectsync.pardot.err_code") == 4]
    assert upsert.status.status_code is trace.StatusCode.ERROR
    assert attributes(upsert)["prospectsync.pardot.outcome"] == "pardot_error"
    assert_nothing_private(finished)


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC collector's trace endpoint: keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.received.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


async def test_spans_reach_an_otlp_collector(fake: FakePardot, tmp_path: Path) -> None:
    collector = _Collector()
    receiver = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, receiver)  # type: ignore[no-untyped-call]
    port = receiver.add_insecure_port("127.0.0.1:0")
    await receiver.start()
    provider = tracer_provider(f"http://127.0.0.1:{port}", service_name="prospectsync-test")
    service = await traced_service(config_for(fake, tmp_path / "state"), provider)
    try:
        await service.stub.Identify(identify({"email": EMAIL}, connection="v3"))
        # The exporter's own thread sends the batch; force_flush waits for it.
        assert await asyncio.to_thread(provider.force_flush, 10_000)
    finally:
        await close(service)
        await asyncio.to_thread(provider.shutdown)
        await receiver.stop(None)

    exported = [
        (resource.resource, span)
        for request in collector.received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = [span.name for _, span in exported]
    assert "prospectsync.v1.ProspectSync/Identify" in names
    service_names = {
        attribute.value.string_value
        for resource, _ in exported
        for attribute in resource.attributes
        if attribute.key == "service.name"
    }
    assert service_names == {"prospectsync-test"}


def test_the_tracing_table_is_read_and_checked(tmp_path: Path) -> None:
    config = parse_config(
        offline_config(tracing={"otlp_endpoint": "http://127.0.0.1:4317", "sample_ratio": 0.25}),
        base_dir=tmp_path,
    )
    assert config.server.tracing == TracingConfig(
        otlp_endpoint="http://127.0.0.1:4317", sample_ratio=0.25
    )
    with pytest.raises(ConfigError) as bad:
        parse_config(
            offline_config(
                tracing={"otlp_endpoint": "127.0.0.1:4317", "sample_ratio": 2, "service_name": ""}
            ),
            base_dir=tmp_path,
        )
    assert bad.value.problems == [
        "server.tracing.otlp_endpoint: must be an http:// or https:// URL",
        "server.tracing.service_name: must not be empty",
        "server.tracing.sample_ratio: must be from 0 to 1",
    ]
    with pytest.raises(ConfigError) as missing:
        parse_config(offline_config(tracing={}), base_dir=tmp_path)
    assert missing.value.problems == [
        'server.tracing.otlp_endpoint: is required, e.g. "http://127.0.0.1:4317"'
    ]
