"""server.interceptors: grpc.aio asks every interceptor for the handler on every call;
the wrapped handler of a method is built once and reused (what each wrapper does per
call is tested over real servers in test_status, test_admission and test_idempotency)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from clients.state.local import IDEMPOTENCY_FILE
from clients.state.responses import ResponseStore
from server.idempotency import Idempotency
from server.interceptors import (
    AdmissionInterceptor,
    IdempotencyInterceptor,
    RpcContextInterceptor,
)

IDENTIFY = "/prospectsync.v1.ProspectSync/Identify"


class Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    return request


@pytest.fixture
def idempotency(tmp_path: Path) -> Iterator[Idempotency]:
    records = Idempotency(ResponseStore(tmp_path / IDEMPOTENCY_FILE, window_s=60.0))
    yield records
    records.close()


@pytest.mark.parametrize("kind", ["context", "admission", "idempotency"])
async def test_a_methods_wrapped_handler_is_built_once(kind: str, idempotency: Idempotency) -> None:
    interceptor: grpc.aio.ServerInterceptor = {
        "context": RpcContextInterceptor(),
        "admission": AdmissionInterceptor(3),
        "idempotency": IdempotencyInterceptor(idempotency),
    }[kind]
    handler = grpc.unary_unary_rpc_method_handler(echo)

    async def continuation(_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return handler

    first = await interceptor.intercept_service(continuation, Details(IDENTIFY))
    again = await interceptor.intercept_service(continuation, Details(IDENTIFY))
    assert first is again and first is not handler

    # Another handler for the method (a re-registered service) is wrapped afresh.
    handler = grpc.unary_unary_rpc_method_handler(echo)
    renewed = await interceptor.intercept_service(continuation, Details(IDENTIFY))
    assert renewed is not first and renewed is not handler
