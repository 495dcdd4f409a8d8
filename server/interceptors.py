"""Cross-cutting work around every RPC, and nothing else.

Four interceptors, outermost first (``server.app`` installs them in this order):

- :class:`RpcContextInterceptor`: per-call log context, the one "rpc.done" event, and
  the guarantee that no exception reaches a caller as a trace — a ProspectSyncError is
  reported through ``server.status``, a request that cannot be decoded is
  INVALID_ARGUMENT, anything else INTERNAL with an id to find it in the log.
- :class:`AdmissionInterceptor`: at most ``server.max_in_flight`` units of work in
  progress, a unary call one unit and a BatchSync one per item; beyond, RESOURCE_EXHAUSTED
  with RetryInfo at once (documented backpressure) instead of memory that grows with the
  burst. Health is never refused.
- :class:`CallerAuthInterceptor` (when ``[server.auth]`` is configured): a bearer token
  in the ``authorization`` metadata, or UNAUTHENTICATED. Health stays open (probes and
  load balancers carry no token); reflection needs a token like the service, since it
  describes the API to whoever asks.
- :class:`IdempotencyInterceptor`: ``message_id`` replays (``server.idempotency``), after
  the caller is authenticated, so an unknown caller never sees a stored response.

Business logic never lives here: what an error means is ``server.status``'s job, what
a message_id means is ``server.idempotency``'s.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc
import structlog
from google.protobuf.message import DecodeError

from prospectsync.v1 import prospect_sync_pb2 as pb
from server import metrics
from server.handlers import (
    Context,
    Continuation,
    Handler,
    UnaryBehavior,
    WrappedOncePerMethod,
    like,
    unary,
    unary_behavior,
)
from server.idempotency import Idempotency, serving_items
from server.logging import enabled_for
from server.status import abort_with
from strategies.core.errors import FailedPrecondition, ProspectSyncError, Reason

log = structlog.get_logger("server.rpc")


#: Probes and tooling call these all day; their completion is logged at debug level.
_QUIET_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
#: Open without a caller token.
HEALTH_PREFIX = "/grpc.health.v1.Health/"


class Unauthenticated(ProspectSyncError):
    """The caller sent no bearer token, or one the server was not configured with."""

    default_reason = Reason.UNAUTHENTICATED


class ServerBusy(ProspectSyncError):
    """The work in progress leaves no room under ``server.max_in_flight`` for this call."""

    default_reason = Reason.SERVER_BUSY


class MalformedRequest(ProspectSyncError):
    """The request bytes are not the method's message (the generated stub never sends
    such a thing; a hand-built or hostile one may)."""

    default_reason = Reason.MALFORMED_REQUEST


class UnexpectedError(ProspectSyncError):
    """A bug: the caller learns only an id to quote, the log has the rest."""

    default_reason = Reason.INTERNAL

    def __init__(self, error_id: str) -> None:
        super().__init__(
            f"internal error (id {error_id}); the server log has the details",
            metadata={"error_id": error_id},
        )


def report_unexpected(event: str, **fields: Any) -> UnexpectedError:
    """Logs the exception being handled, traceback included, as ``event`` under a fresh
    error id, and returns what the caller may learn of it: that id."""
    error_id = uuid.uuid4().hex[:12]
    structlog.contextvars.bind_contextvars(error_id=error_id, reason=Reason.INTERNAL)
    log.exception(event, **fields)
    return UnexpectedError(error_id)


class RpcContextInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary-unary handler (streaming ones — reflection, health Watch — pass
    through untouched: they carry no business logic and log nothing of ours)."""

    def __init__(self) -> None:
        self._wrapped = WrappedOncePerMethod(_guarded_handler)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return self._wrapped(handler_call_details.method, handler)


def _guarded_handler(method: str, handler: Handler) -> Handler:
    return grpc.unary_unary_rpc_method_handler(
        _guarded(method, unary_behavior(handler)),
        request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


class _Undecodable:
    """Stands in for a request whose bytes did not decode (see :func:`_tolerant`)."""


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """gRPC turns a deserializer's exception into UNKNOWN, naming protobuf's internals
    (a Struct nested past protobuf's depth limit does it): hand the handler a marker
    instead, so the caller gets INVALID_ARGUMENT like any other bad input."""
    if deserialize is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return _Undecodable()

    return decode


def _guarded(method: str, behavior: UnaryBehavior) -> UnaryBehavior:
    done_level = logging.DEBUG if method.startswith(_QUIET_PREFIXES) else logging.INFO

    async def guarded(request: Any, context: Context) -> Any:
        # Each RPC runs in its own task, but that task's context is a copy of the
        # server's: start from nothing so no field of another call can leak in.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(method=method)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            if isinstance(request, _Undecodable):
                raise MalformedRequest(
                    f"the request is not a valid {method.rsplit('/', 1)[-1]} message: malformed "
                    "protobuf, or values nested deeper than protobuf's limit of 100 levels"
                )
            return await behavior(request, context)
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            # The caller went away or its deadline passed; gRPC already told it so.
            code = grpc.StatusCode.CANCELLED
            raise
        except ProspectSyncError as error:
            code = error.code
            structlog.contextvars.bind_contextvars(reason=error.reason)
            metrics.rpc_error(method, error.reason)
            await abort_with(context, error)
        except Exception:
            code = grpc.StatusCode.INTERNAL
            await abort_with(context, report_unexpected("rpc.unexpected_error"))
        finally:
            if enabled_for(done_level):
                latency_ms = round((time.perf_counter() - started) * 1000, 3)
                log.log(done_level, "rpc.done", code=code.name, latency_ms=latency_ms)

    return guarded


class AdmissionInterceptor(grpc.aio.ServerInterceptor):
    """Counts the work in progress and refuses what does not fit under the cap before it
    costs anything: a burst of thousands gets a prompt "retry in a second" for its
    excess, and the work admitted keeps its latency and the process its memory.

    The unit is an event, not a call (:func:`units_of`): a unary call takes one unit, a
    BatchSync one per item, since each item holds about what a unary call holds (its
    task, its gateway, its Pardot answer). Counting calls let 120 BatchSync of 1,000
    items in at once, 120,000 events and 516 MB, under a cap meant for 2,000. A call is
    admitted whole or not at all: admitting part of a batch would answer the rest with
    an error per item, which a caller cannot tell from Pardot's. A BatchSync larger
    than the whole cap could never be admitted, so it is FAILED_PRECONDITION (retrying
    cannot help) naming the setting, not SERVER_BUSY."""

    #: What a refused caller is told to wait: about one batch round trip at Pardot.
    RETRY_AFTER_S = 1.0

    def __init__(self, max_in_flight: int) -> None:
        self._max = max_in_flight
        #: Units in progress now (a unary call 1, a BatchSync its item count).
        self.in_flight = 0
        self._wrapped = WrappedOncePerMethod(self._admitting)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if (
            handler is None
            or handler.unary_unary is None
            or handler_call_details.method.startswith(HEALTH_PREFIX)
        ):
            return handler
        return self._wrapped(handler_call_details.method, handler)

    def _admitting(self, _method: str, handler: Handler) -> Handler:
        behavior = unary_behavior(handler)

        async def admitted(request: Any, context: Context) -> Any:
            units = units_of(request)
            self._refuse_unless_fits(units)
            self.in_flight += units
            metrics.in_flight(self.in_flight, self._max)
            try:
                return await behavior(request, context)
            finally:
                self.in_flight -= units
                metrics.in_flight(self.in_flight, self._max)

        return unary(handler, admitted)

    def _refuse_unless_fits(self, units: int) -> None:
        if units > self._max:
            metrics.admission_refused(Reason.FAILED_PRECONDITION)
            raise FailedPrecondition(
                f"items: this BatchSync holds {units:,} items, more than this server takes "
                f"in progress at once (server.max_in_flight = {self._max:,}, counted in "
                f"items): send at most {self._max:,} items per call, or raise "
                "server.max_in_flight where memory allows"
            )
        if self.in_flight + units > self._max:
            what = "1 call" if units == 1 else f"{units:,} items"
            metrics.admission_refused(Reason.SERVER_BUSY)
            raise ServerBusy(
                f"{self.in_flight:,} of the {self._max:,} units this server takes at once "
                f"(server.max_in_flight; a call is 1, a BatchSync item 1) are in progress, "
                f"no room for {what}: retry after the delay",
                retry_after=self.RETRY_AFTER_S,
            )


def units_of(request: Any) -> int:
    """The admission units ``request`` takes: a BatchSync's item count (at least 1, an
    empty batch is refused by the servicer), any other request 1."""
    if isinstance(request, pb.BatchSyncRequest):
        return max(1, len(request.items))
    return 1


class CallerAuthInterceptor(grpc.aio.ServerInterceptor):
    """Every call but health must carry ``authorization: Bearer <token>`` with one of
    the configured tokens; the comparison takes the same time whatever the token."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = tuple(token.encode() for token in tokens)
        if not self._tokens:
            raise ValueError("caller authentication needs at least one token")

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(HEALTH_PREFIX):
            return handler
        problem = self._problem(handler_call_details.invocation_metadata or ())
        return handler if problem is None else _refusing(handler, Unauthenticated(problem))

    def _problem(self, metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
        """None when the call carries an accepted token; else what is wrong with it."""
        values = [value for key, value in metadata if key == "authorization"]
        if not values:
            return "send the metadata 'authorization: Bearer <token>' (caller authentication is on)"
        scheme, _, credential = str(values[0]).partition(" ")
        if len(values) > 1 or scheme.lower() != "bearer" or not credential.strip():
            return "the authorization metadata must be one 'Bearer <token>'"
        offered = credential.strip().encode()
        # Compare with every token, always: the time taken says nothing about which
        # token (or how much of one) matched.
        matched = [hmac.compare_digest(offered, token) for token in self._tokens]
        return None if any(matched) else "the bearer token is not one this server accepts"


def _refusing(handler: Handler, error: ProspectSyncError) -> Handler:
    """A handler of the same kind as ``handler`` that ends the call with ``error``
    without reading the request: an unauthenticated payload is never decoded."""

    async def refuse(_request: Any, context: Context) -> None:
        structlog.contextvars.bind_contextvars(reason=error.reason)
        await abort_with(context, error)

    return like(handler, refuse, decoded=False)


class IdempotencyInterceptor(grpc.aio.ServerInterceptor):
    """Routes the RPCs whose requests carry a ``message_id`` (Identify, Track, Forget) through
    :meth:`server.idempotency.Idempotency.guard`, and lets every call's items reach the
    same records (BatchSync's items, through :func:`server.idempotency.as_item`).
    BatchSync itself is not one idempotent unit: its request has no ``message_id``."""

    def __init__(self, idempotency: Idempotency) -> None:
        self._idempotency = idempotency
        self._wrapped = WrappedOncePerMethod(self._idempotent)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        ours = method.startswith(self._idempotency.method_prefix)
        if handler is None or handler.unary_unary is None or not ours:
            return handler
        return self._wrapped(method, handler)

    def _idempotent(self, method: str, handler: Handler) -> Handler:
        behavior = unary_behavior(handler)
        idempotency = self._idempotency

        async def idempotent(request: Any, context: Context) -> Any:
            # Every call can reach the records: a batch's items are idempotent one by one.
            with serving_items(idempotency):
                return await idempotency.guard(method, request, lambda: behavior(request, context))

        return unary(handler, idempotent)
