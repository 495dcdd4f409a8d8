"""OpenTelemetry traces: off unless ``[server.tracing]`` names an OTLP endpoint; then a
span per RPC, and a child span per Pardot request (made by ``clients.call_log``).

The RPC span is our own interceptor's, not opentelemetry-instrumentation-grpc's (whose
grpc.aio server interceptor works): that one sets the span's status to the abort's
details and records the AbortError as an exception event, and our details quote what
the caller sent (an email Pardot refuses, a field name). Here a span carries the
method, the gRPC code and the per-RPC log fields that can hold no email or secret
(:data:`SPAN_FIELDS`: strategy, connection, outcome, reason, err_code, counts), nothing
else. For the same reason the Pardot spans are not httpx instrumentation's: its
``url.full`` is a v3/v4 path with the email in it.

A caller's W3C ``traceparent`` (gRPC metadata) becomes the RPC span's parent, so the
trace continues from the service that called. The exporter is OTLP over gRPC:
grpcio is already here, the HTTP exporter would bring requests and urllib3. This
module only installs and wraps; it never decides anything about a call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final

import grpc
import structlog
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from server.handlers import (
    Context,
    Continuation,
    Handler,
    WrappedOncePerMethod,
    unary,
    unary_behavior,
)
from server.metrics import split_method

#: The per-RPC log fields (``server.servicer`` binds them) that an RPC span carries, as
#: ``prospectsync.<name>``: each is a name, a number or an enum's name, never what a
#: caller sent (message_id and the track event's name are left out on purpose).
SPAN_FIELDS: Final = (
    "strategy",
    "connection",
    "api_version",
    "dry_run",
    "outcome",
    "reason",
    "err_code",
    "pardot_calls",
    "items",
    "ok",
    "failed",
)


def tracer_provider(
    endpoint: str,
    *,
    service_name: str = "prospectsync",
    sample_ratio: float = 1.0,
    exporter: SpanExporter | None = None,
) -> TracerProvider:
    """A provider that batches spans to the OTLP/gRPC ``endpoint`` (``http://`` means
    plaintext, ``https://`` TLS), sampling ``sample_ratio`` of the traces that start
    here and following the caller's decision for the rest. ``exporter`` replaces the
    OTLP one (a test's in-memory exporter)."""
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    exporter = exporter or OTLPSpanExporter(
        endpoint=endpoint, insecure=endpoint.startswith("http://")
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install(provider: TracerProvider) -> None:
    """Make ``provider`` the process's: from then on the RPC spans and the Pardot spans
    (``clients.call_log``'s tracer) are recorded. OpenTelemetry allows this once per
    process."""
    trace.set_tracer_provider(provider)


class RpcTracingInterceptor(grpc.aio.ServerInterceptor):
    """A SERVER span per unary RPC, current while it runs, so that every Pardot request
    made for it is its child. Streaming methods (health Watch, reflection) carry no
    business and get no span. Installed first, before the metrics interceptor: its
    span then covers everything the call costs."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("prospectsync.server", tracer_provider=provider)
        self._wrapped = WrappedOncePerMethod(self._traced)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return self._wrapped(handler_call_details.method, handler)

    def _traced(self, method: str, handler: Handler) -> Handler:
        behavior = unary_behavior(handler)
        service, name = split_method(method)
        span_name = f"{service}/{name}"
        tracer = self._tracer
        base = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

        async def traced(request: Any, context: Context) -> Any:
            parent = propagate.extract(_metadata(context))
            with tracer.start_as_current_span(
                span_name,
                context=parent,
                kind=trace.SpanKind.SERVER,
                attributes=base,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                code = grpc.StatusCode.UNKNOWN
                try:
                    response = await behavior(request, context)
                    code = grpc.StatusCode.OK
                    return response
                except grpc.aio.AbortError:
                    aborted = context.code()
                    code = aborted if isinstance(aborted, grpc.StatusCode) else code
                    raise
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                finally:
                    _finish(span, code)

        return unary(handler, traced)


def _metadata(context: Context) -> dict[str, str]:
    """The call's text metadata, for the propagator (binary values carry no trace)."""
    return {
        key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)
    }


def _finish(span: trace.Span, code: grpc.StatusCode) -> None:
    if not span.is_recording():
        return
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    span.set_attributes(_safe_fields(structlog.contextvars.get_contextvars()))
    if code is not grpc.StatusCode.OK:
        # The code's name only: the details are the caller's to read, not the trace's.
        span.set_status(trace.StatusCode.ERROR, code.name)


def _safe_fields(fields: Mapping[str, Any]) -> dict[str, str | int | bool]:
    """:data:`SPAN_FIELDS` of the bound log fields, enums by name."""
    safe: dict[str, str | int | bool] = {}
    for name in SPAN_FIELDS:
        value = fields.get(name)
        if name == "err_code" and isinstance(value, str) and value.isdigit():
            value = int(value)  # ErrorInfo metadata is text; the Pardot spans' is a number
        if isinstance(value, str | int | bool):
            safe[f"prospectsync.{name}"] = value
        elif value is not None and hasattr(value, "name"):
            safe[f"prospectsync.{name}"] = str(value.name)
    return safe
