"""server.status and the interceptor's safety net, over a real aio channel: every error
arrives as a canonical code whose google.rpc details decode back from the trailers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from server.interceptors import RpcContextInterceptor
from server.logging import register_secret
from server.status import abort_with, to_grpc_status
from strategies.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    PardotAuthFailed,
    PardotError,
    PardotUnavailable,
    ProspectSyncError,
    Reason,
)

from .conftest import LogCapture

T = TypeVar("T", bound=Message)

LEARNED_SECRET = f"learned-token-{uuid.uuid4().hex}"


def daily_limit() -> PardotError:
    error = PardotError(122, "Daily API rate limit met")
    error.retry_after = 3600.25
    return error


ERRORS: dict[str, Exception] = {
    "invalid": InvalidArgument("traits.email", "is required for API v3 (EmailV3)"),
    "precondition": FailedPrecondition("no strategy", reason=Reason.NO_MATCHING_STRATEGY),
    "unavailable": PardotUnavailable("Pardot did not answer in time", retry_after=0.25),
    "unavailable-bare": PardotUnavailable("Pardot did not answer"),
    "daily": daily_limit(),
    "auth": PardotAuthFailed("connections.default.client_secret was rejected"),
    "leaky": FailedPrecondition(f"token {LEARNED_SECRET} refused"),
    "bug": KeyError("internal detail"),
}


async def handler(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    name, _, how = request.decode().partition(":")
    error = ERRORS[name]
    if how == "late":
        # Busy past the caller's deadline without awaiting, as a handler under a CPU
        # storm is: gRPC ends the call before the handler answers.
        time.sleep(0.3)  # noqa: ASYNC251 - blocking on purpose, see above
    if how in ("abort", "late") and isinstance(error, ProspectSyncError):
        await abort_with(context, error)  # the servicer's way
    raise error  # escaping: the interceptor's safety net


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[RpcContextInterceptor()])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Errors", {"Raise": grpc.unary_unary_rpc_method_handler(handler)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    await server.stop(0)


async def fail(channel: grpc.aio.Channel, request: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Errors/Raise")(request.encode(), timeout=5)
    return caught.value


def detail(error: grpc.aio.AioRpcError, kind: type[T]) -> T | None:
    status = rpc_status.from_call(error)
    assert status is not None
    message = kind()
    return message if any(d.Unpack(message) for d in status.details) else None


@pytest.mark.parametrize("how", ["abort", "raise"])
async def test_invalid_argument_carries_its_field_violation(
    channel: grpc.aio.Channel, how: str
) -> None:
    error = await fail(channel, f"invalid:{how}")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "traits.email is required for API v3 (EmailV3)"
    info = detail(error, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("INVALID_ARGUMENT", "prospectsync.pardot")
    bad = detail(error, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("traits.email", "is required for API v3 (EmailV3)")
    ]
    assert detail(error, error_details_pb2.RetryInfo) is None


async def test_a_pardot_error_carries_its_err_code_and_retry_delay(
    channel: grpc.aio.Channel,
) -> None:
    error = await fail(channel, "daily:abort")
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = detail(error, error_details_pb2.ErrorInfo)
    assert info.reason == "PARDOT_DAILY_LIMIT"
    assert dict(info.metadata) == {"err_code": "122"}
    retry = detail(error, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToTimedelta().total_seconds() == 3600.25
    assert detail(error, error_details_pb2.BadRequest) is None


async def test_unavailable_says_when_to_retry(channel: grpc.aio.Channel) -> None:
    error = await fail(channel, "unavailable:abort")
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert detail(error, error_details_pb2.ErrorInfo).reason == "PARDOT_UNAVAILABLE"
    assert detail(error, error_details_pb2.RetryInfo).retry_delay.ToMilliseconds() == 250


async def test_unavailable_says_to_retry_even_without_a_known_delay(
    channel: grpc.aio.Channel,
) -> None:
    error = await fail(channel, "unavailable-bare:abort")
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    retry = detail(error, error_details_pb2.RetryInfo)
    assert retry is not None and retry.retry_delay.ToTimedelta().total_seconds() == 1.0


async def test_no_retry_info_where_waiting_does_not_help(channel: grpc.aio.Channel) -> None:
    for name in ("precondition", "auth", "invalid"):
        assert detail(await fail(channel, f"{name}:abort"), error_details_pb2.RetryInfo) is None


@pytest.mark.parametrize(
    ("name", "code", "reason"),
    [
        ("precondition", grpc.StatusCode.FAILED_PRECONDITION, "NO_MATCHING_STRATEGY"),
        ("auth", grpc.StatusCode.FAILED_PRECONDITION, "PARDOT_AUTH_FAILED"),
    ],
)
async def test_settings_and_credentials_problems_are_failed_precondition(
    channel: grpc.aio.Channel, name: str, code: grpc.StatusCode, reason: str
) -> None:
    error = await fail(channel, f"{name}:abort")
    assert error.code() == code
    assert detail(error, error_details_pb2.ErrorInfo).reason == reason


async def test_a_learned_secret_is_redacted_from_the_status(channel: grpc.aio.Channel) -> None:
    register_secret(LEARNED_SECRET)
    error = await fail(channel, "leaky:abort")
    assert error.details() == "token [REDACTED] refused"
    assert rpc_status.from_call(error).message == "token [REDACTED] refused"


async def test_an_unexpected_exception_is_internal_and_says_only_an_id(
    channel: grpc.aio.Channel,
) -> None:
    error = await fail(channel, "bug:raise")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "internal detail" not in error.details() and "KeyError" not in error.details()
    assert error.details().startswith("internal error (id ")
    info = detail(error, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("INTERNAL", "prospectsync.pardot")
    assert list(info.metadata) == ["error_id"] and info.metadata["error_id"] in error.details()


def test_the_status_code_is_the_errors_code() -> None:
    for error in ERRORS.values():
        if isinstance(error, ProspectSyncError):
            assert to_grpc_status(error).code == error.code


async def test_an_answer_after_the_deadline_is_dropped_quietly(
    channel: grpc.aio.Channel, logs: LogCapture
) -> None:
    """Under a deadline storm the error is ready only after gRPC ended the call: the
    caller sees DEADLINE_EXCEEDED, and no second abort or "unexpected error" follows."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Errors/Raise")(b"unavailable:late", timeout=0.1)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.sleep(0.4)  # let the handler finish
    assert logs.named("rpc.unexpected_error") == []
    [done] = logs.named("rpc.done")
    assert done["code"] == "CANCELLED"
