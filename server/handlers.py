"""How the server's interceptors wrap a grpc.aio method handler: the types every
interceptor speaks, the unary behavior as grpc.aio calls it, and the one cache that
keeps a method's wrapped handler from being built again on every call.

Its own module because three interceptors share it — the context, admission, auth and
idempotency ones (``server.interceptors``), the RPC metrics (``server.metrics``) and the
RPC spans (``server.tracing``) — and ``server.interceptors`` already reports to
``server.metrics``: shared from there it would be an import cycle. It wraps nothing
itself and imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc

#: Every method's handler: requests and responses are the methods' own messages, so Any.
#: A string: grpc.RpcMethodHandler is generic in types-grpcio only, not at run time.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
UnaryBehavior = Callable[[Any, Context], Awaitable[Any]]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]
#: Builds a method's wrapped handler from its method name and handler.
Wrap = Callable[[str, Handler], Handler]


class WrappedOncePerMethod:
    """grpc.aio asks every interceptor for the handler on every call, but a method's
    handler is the same object call after call: its wrapped handler is built on the
    first call and reused (building it per call cost a measurable part of each RPC).

    Keyed by method and checked by identity, so a different handler for the method (a
    refusal, a re-registered service) is wrapped afresh; at most one per method is kept.
    """

    def __init__(self, wrap: Wrap) -> None:
        self._wrap = wrap
        self._built: dict[str, tuple[Handler, Handler]] = {}

    def __call__(self, method: str, handler: Handler) -> Handler:
        built = self._built.get(method)
        if built is None or built[0] is not handler:
            built = self._built[method] = (handler, self._wrap(method, handler))
        return built[1]


def unary_behavior(handler: Handler) -> UnaryBehavior:
    """``handler``'s unary-unary behavior as grpc.aio calls it. Only for a unary-unary
    handler: every interceptor checks ``handler.unary_unary`` before it wraps one.

    The cast because types-grpcio types RpcMethodHandler for the threaded server alone
    (a ``grpc.ServicerContext`` in, the response out), and grpc.aio reuses that class:
    there a behavior takes a ``grpc.aio.ServicerContext`` and returns an awaitable."""
    behavior = handler.unary_unary
    if behavior is None:
        raise TypeError("not a unary-unary handler")
    return cast(UnaryBehavior, behavior)


def unary(handler: Handler, behavior: UnaryBehavior) -> Handler:
    """``handler`` with ``behavior`` in place of its unary-unary behavior."""
    return grpc.unary_unary_rpc_method_handler(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


#: A handler's kind (the one of its four behaviors that is set), and how to build one.
_BUILDERS: dict[str, Callable[..., Handler]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def behavior_of(handler: Handler) -> Callable[..., Any]:
    """Whichever of its four behaviors ``handler`` has (a coroutine function, or an
    async generator function for a streaming response)."""
    behavior: Callable[..., Any] = getattr(handler, _kind(handler))
    return behavior


def like(handler: Handler, behavior: Callable[..., Any], *, decoded: bool = True) -> Handler:
    """A handler of ``handler``'s kind running ``behavior``; with its (de)serializers,
    unless ``decoded`` is False (then the request is never decoded)."""
    builder = _BUILDERS[_kind(handler)]
    if not decoded:
        return builder(behavior)
    return builder(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _kind(handler: Handler) -> str:
    return next(name for name in _BUILDERS if getattr(handler, name) is not None)
