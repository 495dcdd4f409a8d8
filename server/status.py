"""Turns a :class:`~strategies.core.errors.ProspectSyncError` into a rich gRPC status.

The one place an error becomes what a caller sees: a canonical code, the message, and
``google.rpc`` details a program can act on without parsing text — ``ErrorInfo``
(stable reason, domain ``prospectsync.pardot``, Pardot's err_code in metadata),
``BadRequest`` field violations, ``RetryInfo``. Details travel in the
``grpc-status-details-bin`` trailer, as ``grpc_status`` reads them back.

Never puts a secret, a stack trace or an internal type name in a status.
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.logging import redact
from strategies.core.errors import DOMAIN, ProspectSyncError

#: Codes that always mean "the same call may work later": a RetryInfo goes with them
#: even when the error did not say how long to wait.
DEFAULT_RETRY_AFTER_S: dict[grpc.StatusCode, float] = {grpc.StatusCode.UNAVAILABLE: 1.0}


def to_rpc_status(error: ProspectSyncError, *, field_prefix: str = "") -> status_pb2.Status:
    """``error`` as the ``google.rpc.Status`` a caller decodes: what a unary call sends
    in its trailers, and what BatchSync puts in an item's result. ``field_prefix``
    places the BadRequest field paths inside a larger request (``items[3].identify.``
    turns ``traits.email`` into ``items[3].identify.traits.email``)."""
    message = redact(error.message)
    status = status_pb2.Status(code=error.code.value[0], message=message)
    status.details.append(_packed(_error_info(error)))
    if error.violations:
        status.details.append(_packed(_bad_request(error, field_prefix)))
    retry_after = error.retry_after
    if retry_after is None:
        retry_after = DEFAULT_RETRY_AFTER_S.get(error.code)
    if retry_after is not None:
        status.details.append(_packed(_retry_info(retry_after)))
    return status


def to_grpc_status(error: ProspectSyncError) -> grpc.Status:
    return rpc_status.to_status(to_rpc_status(error))


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any], error: ProspectSyncError
) -> NoReturn:
    """Ends the call with ``error``'s status; ``context.abort`` is the form that carries
    trailing metadata on every grpc.aio version."""
    status = to_grpc_status(error)
    try:
        await context.abort(status.code, status.details, status.trailing_metadata)
    except grpc.aio.AbortError:
        raise
    except Exception as ended:
        # The call ended before the answer was ready (its deadline passed, so gRPC already
        # told the caller DEADLINE_EXCEEDED): there is nothing left to send, and treating
        # this as a new failure would only abort a second time ("Abort already called!").
        raise asyncio.CancelledError("the call had already ended") from ended
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises


def _error_info(error: ProspectSyncError) -> error_details_pb2.ErrorInfo:
    metadata = {key: redact(str(value)) for key, value in error.metadata.items()}
    return error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata)


def _bad_request(error: ProspectSyncError, field_prefix: str) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=field_prefix + field, description=redact(text)
            )
            for field, text in error.violations
        ]
    )


def _retry_info(retry_after: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(round(max(retry_after, 0.0) * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _packed(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
