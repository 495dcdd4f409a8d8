"""grpc_service_config.json, the client behaviour we ship for stubs in every language:
loaded into a real grpc.aio channel, it retries UNAVAILABLE and nothing else.

Its per-method timeouts are not asserted over the wire: grpcio's asyncio channel
enforces a service-config timeout on the client only (the server sees no deadline) and
ends such calls early (docs/errors.md, "Client configuration")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.app import SERVICE_NAME
from strategies.core.errors import PardotUnavailable
from support.service import identify

if TYPE_CHECKING:
    from .conftest import Served

SERVICE_CONFIG = Path(__file__).resolve().parents[2] / "grpc_service_config.json"
TOM = {"email": "tom@example.com"}


def service_config() -> dict[str, Any]:
    return json.loads(SERVICE_CONFIG.read_text())


def seconds(duration: str) -> float:
    assert duration.endswith("s")
    return float(duration[:-1])


def test_every_method_has_exactly_one_config_and_only_unavailable_is_retried() -> None:
    configs = service_config()["methodConfig"]
    named = [(n["service"], n["method"]) for c in configs for n in c["name"]]
    methods = pb.DESCRIPTOR.services_by_name["ProspectSync"].methods
    assert sorted(named) == sorted((SERVICE_NAME, m.name) for m in methods)
    for config in configs:
        assert config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
        assert seconds(config["timeout"]) > 0


@pytest.fixture
async def configured_channel(served: Served) -> AsyncIterator[grpc.aio.Channel]:
    options = [("grpc.service_config", SERVICE_CONFIG.read_text())]
    async with grpc.aio.insecure_channel(served.target, options=options) as channel:
        yield channel


async def test_a_call_that_fails_unavailable_is_retried_by_the_stub(
    served: Served, configured_channel: grpc.aio.Channel
) -> None:
    failures = [PardotUnavailable("Pardot did not answer")]

    async def fail_once(_operation: str) -> None:
        if failures:
            raise failures.pop()

    served.connections.before = fail_once
    stub = pb_grpc.ProspectSyncStub(configured_channel)
    reply = await stub.Identify(identify(TOM, message_id="m-retry"), timeout=10)
    assert reply.outcome == pb.OUTCOME_CREATED
    assert len(served.connections.deadlines) == 2  # the server saw two attempts


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (identify({"email": ""}), grpc.StatusCode.INVALID_ARGUMENT),
        (identify(TOM, connection="v4"), grpc.StatusCode.FAILED_PRECONDITION),
    ],
    ids=["invalid-argument", "failed-precondition"],
)
async def test_other_failures_are_not_retried(
    served: Served,
    configured_channel: grpc.aio.Channel,
    request_: pb.IdentifyRequest,
    code: grpc.StatusCode,
) -> None:
    calls = 0

    async def count(_operation: str) -> None:
        nonlocal calls
        calls += 1

    served.connections.before = count
    stub = pb_grpc.ProspectSyncStub(configured_channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(request_, timeout=10)
    assert caught.value.code() == code
    assert len(served.connections.deadlines) <= 1 and calls == 0  # one attempt, no retry
