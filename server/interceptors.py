"""Cross-cutting work around every RPC, and nothing else: per-call log context, the
one "rpc.done" event, and the guarantee that no exception reaches a caller as a trace.

Business logic never lives here. What a ProspectSyncError means is ``server.status``'s
job; this module only makes sure one that escaped a handler is still reported through
it, and that anything else becomes INTERNAL with an id to find it in the log.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog

from clients.errors import ProspectSyncError
from server.status import abort_with

log = structlog.get_logger("server.rpc")

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]

#: Probes and tooling call these all day; their completion is logged at debug level.
_QUIET_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


class RpcContextInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary-unary handler (streaming ones — reflection, health Watch — pass
    through untouched: they carry no business logic and log nothing of ours)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _guarded(handler_call_details.method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _guarded(method: str, behavior: UnaryBehavior) -> UnaryBehavior:
    quiet = method.startswith(_QUIET_PREFIXES)

    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        # Each RPC runs in its own task, but that task's context is a copy of the
        # server's: start from nothing so no field of another call can leak in.
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(method=method)
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
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
            await abort_with(context, error)
        except Exception:
            code = grpc.StatusCode.INTERNAL
            error_id = uuid.uuid4().hex[:12]
            structlog.contextvars.bind_contextvars(error_id=error_id)
            log.exception("rpc.unexpected_error")
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"internal error (id {error_id}); the server log has the details",
            )
        finally:
            latency_ms = round((time.perf_counter() - started) * 1000, 3)
            emit = log.debug if quiet else log.info
            emit("rpc.done", code=code.name, latency_ms=latency_ms)

    return guarded
