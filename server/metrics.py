"""The service's Prometheus metrics: the registry that is served, the side HTTP port that
serves it (``[server.metrics] listen``), the RPC metrics as go-grpc-prometheus names
them, and the server's own events (message_id replays, admission refusals, errors by
reason).

The RPC metrics keep go-grpc-prometheus's names, labels and label values
(``grpc_server_started_total``, ``grpc_server_handled_total{grpc_type, grpc_service,
grpc_method, grpc_code}``, ``grpc_server_handling_seconds``; ``grpc_code`` as Go spells
a code, ``OK``, ``InvalidArgument``, ``Canceled``), so the dashboards and alerts that the
fleet has for its Go services work on this one unchanged.

The port is prometheus-client's own HTTP server, in a daemon thread: it answers while
the event loop is busy or stuck, which is when a scrape matters most, it parses no HTTP
of ours, and it serves the multiprocess registry as it is. A starlette app on the
loop would share the loop with the RPCs it should be watching. Off unless configured,
and on loopback in the documented example: the metrics name connections and accounts.

This module never labels anything with a request's content: methods, codes and
reasons only (``clients.metrics`` keeps the same rule for the Pardot client).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final
from wsgiref.simple_server import WSGIServer

import grpc
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

import clients.metrics  # noqa: F401 - registers the Pardot client's metrics for serving
from server.handlers import Context, Continuation, Handler, WrappedOncePerMethod, behavior_of, like
from strategies.core.errors import Reason

#: grpc.RpcMethodHandler is generic in types-grpcio only, not at run time.

#: The variable that turns on prometheus-client's multiprocess mode: each worker writes
#: its values to files there, and one exposition adds them up (issue 13's ``workers``).
MULTIPROC_DIR_VARIABLE: Final = "PROMETHEUS_MULTIPROC_DIR"

#: prometheus-client's ``*_created`` series double every counter and histogram, and
#: go-grpc-prometheus has none: off, for the whole process.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

#: Go's names of the status codes (codes.Code.String()), as go-grpc-prometheus labels them.
GO_CODE_NAMES: Final[dict[grpc.StatusCode, str]] = {
    code: "".join(word.capitalize() for word in code.name.split("_")) for code in grpc.StatusCode
}
GO_CODE_NAMES[grpc.StatusCode.OK] = "OK"
GO_CODE_NAMES[grpc.StatusCode.CANCELLED] = "Canceled"

RPC_STARTED = Counter(
    "grpc_server_started",
    "Total number of RPCs started on the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
RPC_HANDLED = Counter(
    "grpc_server_handled",
    "Total number of RPCs completed on the server, regardless of success or failure.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
RPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Histogram of response latency (seconds) of gRPC that had been application-level "
    "handled by the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
    # go-grpc-prometheus's default (prometheus.DefBuckets), plus 30 s for BatchSync.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RPC_ERRORS = Counter(
    "prospectsync_rpc_errors",
    "RPCs that ended with a ProspectSyncError, by method and ErrorInfo reason "
    "(docs/errors.md): what grpc_code does not say, such as PARDOT_AUTH_FAILED.",
    ["grpc_method", "reason"],
)
MESSAGE_ID_REPLAYS = Counter(
    "prospectsync_message_id_replays",
    "Calls answered from the stored response of an earlier call with the same message_id.",
    ["grpc_method"],
)
ADMISSION_REFUSALS = Counter(
    "prospectsync_admission_refusals",
    "Calls refused before any work under server.max_in_flight, by reason (SERVER_BUSY: "
    "retry later; FAILED_PRECONDITION: a BatchSync larger than the whole cap).",
    ["reason"],
)
IN_FLIGHT_UNITS = Gauge(
    "prospectsync_in_flight_units",
    "Units of work in progress (a unary call 1, a BatchSync 1 per item).",
    multiprocess_mode="livesum",
)
MAX_IN_FLIGHT = Gauge(
    "prospectsync_max_in_flight_units",
    "server.max_in_flight: the units of work the server takes at once.",
    multiprocess_mode="livesum",
)


def exposition_registry() -> CollectorRegistry:
    """What the port serves: this process's registry, or, with ``PROMETHEUS_MULTIPROC_DIR``
    set (before any worker imported prometheus-client), a registry that adds up every
    worker's files there. The one place this is chosen."""
    directory = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if not directory:
        return prometheus_client.REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


@dataclass
class MetricsEndpoint:
    """The side HTTP port serving ``/metrics`` (any path answers the same)."""

    port: int
    _server: WSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def close(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def start_metrics_endpoint(
    listen: str, registry: CollectorRegistry | None = None
) -> MetricsEndpoint:
    """Serves ``registry`` (default :func:`exposition_registry`) on ``listen``,
    ``HOST:PORT`` (port 0: any free port; ``[::1]:9464`` for IPv6). Raises OSError when
    the address cannot be bound."""
    host, _, port = listen.rpartition(":")
    server, thread = prometheus_client.start_http_server(
        int(port), addr=host.strip("[]"), registry=registry or exposition_registry()
    )
    return MetricsEndpoint(port=server.server_port, _server=server, _thread=thread)


# --- the server's events (each a line in the module that owns it) -------------------


def rpc_error(method: str, reason: Reason | str) -> None:
    """An RPC ended with a ProspectSyncError of ``reason`` (``server.interceptors``; a
    ProspectSyncError's ``reason`` is the Reason's name)."""
    RPC_ERRORS.labels(_method_name(method), _reason_name(reason)).inc()


def message_id_replayed(method: str) -> None:
    """A call was answered from a stored message_id response (``server.idempotency``)."""
    MESSAGE_ID_REPLAYS.labels(_method_name(method)).inc()


def admission_refused(reason: Reason | str) -> None:
    """A call was refused under server.max_in_flight (``server.interceptors``)."""
    ADMISSION_REFUSALS.labels(_reason_name(reason)).inc()


def in_flight(units: int, limit: int) -> None:
    """The units of work in progress now, and the cap (``server.interceptors``)."""
    IN_FLIGHT_UNITS.set(units)
    MAX_IN_FLIGHT.set(limit)


def _reason_name(reason: Reason | str) -> str:
    return reason.name if isinstance(reason, Reason) else reason


def _method_name(method: str) -> str:
    """``Identify`` of ``/prospectsync.v1.ProspectSync/Identify`` (items of a BatchSync
    pass their unary method's name)."""
    return method.rsplit("/", 1)[-1]


# --- the RPC metrics -----------------------------------------------------------------


def split_method(method: str) -> tuple[str, str]:
    """``("prospectsync.v1.ProspectSync", "Identify")`` of
    ``/prospectsync.v1.ProspectSync/Identify``."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service or "unknown", name or "unknown"


def rpc_type(handler: Handler) -> str:
    """go-grpc-prometheus's ``grpc_type`` of a handler."""
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """``grpc_server_started_total`` when a call reaches its handler,
    ``grpc_server_handled_total`` with its code and ``grpc_server_handling_seconds`` when
    it ends, for every method, health and reflection included, streams included.

    Installed first (outermost): it then counts the calls the other interceptors refuse
    (admission, caller auth) with the code they were refused with. A method no service
    has is answered UNIMPLEMENTED by gRPC itself before any handler: not counted, as
    go-grpc-prometheus does not count it either.
    """

    def __init__(self) -> None:
        self._wrapped = WrappedOncePerMethod(_measured)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self._wrapped(handler_call_details.method, handler)


@dataclass(frozen=True)
class _Labels:
    """The label values of one method, resolved once."""

    started: Any
    histogram: Any
    handled: Callable[[grpc.StatusCode], Any]


def _labels(method: str, handler: Handler) -> _Labels:
    kind = rpc_type(handler)
    service, name = split_method(method)
    handled: dict[grpc.StatusCode, Any] = {}

    def handled_for(code: grpc.StatusCode) -> Any:
        child = handled.get(code)
        if child is None:
            child = handled[code] = RPC_HANDLED.labels(kind, service, name, GO_CODE_NAMES[code])
        return child

    return _Labels(
        started=RPC_STARTED.labels(kind, service, name),
        histogram=RPC_HANDLING_SECONDS.labels(kind, service, name),
        handled=handled_for,
    )


def _measured(method: str, handler: Handler) -> Handler:
    labels = _labels(method, handler)
    # Ours and OK are counted from the start, so a rate of errors has a zero to start from.
    labels.handled(grpc.StatusCode.OK)
    behavior = behavior_of(handler)
    wrapped = (
        _measured_generator(behavior, labels)
        if inspect.isasyncgenfunction(behavior)
        else _measured_coroutine(behavior, labels)
    )
    return like(handler, wrapped)


def _measured_coroutine(
    behavior: Callable[[Any, Context], Awaitable[Any]], labels: _Labels
) -> Callable[[Any, Context], Awaitable[Any]]:
    """A behavior that returns its response (or writes its stream with context.write)."""

    async def measured(request: Any, context: Context) -> Any:
        labels.started.inc()
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        try:
            response = await behavior(request, context)
            code = _code(context, grpc.StatusCode.OK)
            return response
        except grpc.aio.AbortError:
            code = _code(context, grpc.StatusCode.UNKNOWN)
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            labels.handled(code).inc()
            labels.histogram.observe(time.perf_counter() - started)

    return measured


def _measured_generator(
    behavior: Callable[[Any, Context], AsyncIterator[Any]], labels: _Labels
) -> Callable[[Any, Context], AsyncIterator[Any]]:
    """A behavior that yields its responses (grpc-reflection's, for one)."""

    async def measured(request: Any, context: Context) -> AsyncIterator[Any]:
        labels.started.inc()
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        try:
            async for response in behavior(request, context):
                yield response
            code = _code(context, grpc.StatusCode.OK)
        except grpc.aio.AbortError:
            code = _code(context, grpc.StatusCode.UNKNOWN)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            labels.handled(code).inc()
            labels.histogram.observe(time.perf_counter() - started)

    return measured


#: A code by its number, for a context that reports one as an int.
_CODES_BY_NUMBER: Final = {code.value[0]: code for code in grpc.StatusCode}


def _code(context: Context, otherwise: grpc.StatusCode) -> grpc.StatusCode:
    """The code the handler set (abort or set_code), else ``otherwise``."""
    code: object = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return _CODES_BY_NUMBER.get(code, otherwise)
    return otherwise
