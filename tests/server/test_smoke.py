"""The server with the real Pardot client against fakepardot over HTTP: a smoke test of
the wiring (end-to-end behaviour lives in tests/e2e)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.state.local import IDENTITY_FILE
from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.app import RunningServer, start_server
from server.config import ConfigError, ServiceConfig, parse_config

if TYPE_CHECKING:
    from .conftest import LogCapture

pytestmark = pytest.mark.usefixtures("fresh_fake")


def config(fake: FakePardot, state_dir: Path, **connection: Any) -> ServiceConfig:
    v3 = {
        "pardot_url": fake.url,
        "api_version": 3,
        "business_unit_id": DEMO.business_unit_v3,
        "token_url": fake.token_url,
        "grant_type": "password",
        "client_id": DEMO.client_id,
        "client_secret": DEMO.client_secret,
        "username": DEMO.username,
        "password": DEMO.password,
        "timeout_s": 5,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.02,
        **connection,
    }
    return parse_config(
        {
            "server": {"listen": "127.0.0.1:0", "state_dir": str(state_dir)},
            "connections": {"default": v3},
        }
    )


@asynccontextmanager
async def open_stub(
    service_config: ServiceConfig,
) -> AsyncIterator[tuple[pb_grpc.ProspectSyncStub, RunningServer]]:
    running = await start_server(service_config)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield pb_grpc.ProspectSyncStub(channel), running
    finally:
        await channel.close()
        await running.stop(0)


@pytest.fixture
async def stub(fake: FakePardot, tmp_path: Path) -> AsyncIterator[pb_grpc.ProspectSyncStub]:
    async with open_stub(config(fake, tmp_path / "state")) as (opened, _):
        yield opened


def identify(email: str, **settings: Any) -> pb.IdentifyRequest:
    traits = struct_pb2.Struct()
    traits.update({"email": email, "first_name": "Smoke"})
    return pb.IdentifyRequest(traits=traits, settings=pb.PardotSettings(**settings))


def reason(error: grpc.aio.AioRpcError) -> str:
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in rpc_status.from_call(error).details)
    return info.reason


async def test_identify_reaches_pardot_over_http(
    stub: pb_grpc.ProspectSyncStub, fake: FakePardot
) -> None:
    reply = await stub.Identify(identify("smoke@example.com"), timeout=10)
    assert (reply.strategy, reply.outcome) == ("EmailV3", pb.OUTCOME_CREATED)
    [stored] = [p for p in fake.state.prospects("v3") if p["email"] == "smoke@example.com"]
    assert reply.prospect_id == str(stored["id"]) and stored["first_name"] == "Smoke"
    upserts = [c for c in reply.pardot_calls if "/do/upsert/email/" in c.path]
    assert [(c.method, c.http_status, c.err_code) for c in upserts] == [("POST", 200, 0)]


async def test_an_unknown_connection_is_failed_precondition(
    stub: pb_grpc.ProspectSyncStub, fake: FakePardot
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(identify("smoke@example.com", connection="nope"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "UNKNOWN_CONNECTION"
    assert "settings.connection" in caught.value.details()
    assert fake.state.calls == []  # nothing was sent anywhere


async def test_rejected_credentials_never_show_the_secret(
    fake: FakePardot, tmp_path: Path, logs: LogCapture, configured_secret: str
) -> None:
    wrong = config(fake, tmp_path / "state", client_secret=configured_secret)
    async with open_stub(wrong) as (stub, _):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Identify(identify("smoke@example.com"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "PARDOT_AUTH_FAILED"
    assert configured_secret not in caught.value.details()
    assert logs.named("pardot.call") and logs.named("rpc.done")
    assert configured_secret not in logs.text


async def test_the_callers_deadline_bounds_the_pardot_call(
    stub: pb_grpc.ProspectSyncStub, fake: FakePardot
) -> None:
    fake.state.inject("delay", delay_s=0.5, path_contains="/api/prospect/")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(identify("late@example.com"), timeout=0.2)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The server is fine afterwards.
    reply = await stub.Identify(identify("late@example.com"), timeout=10)
    assert reply.outcome in (pb.OUTCOME_CREATED, pb.OUTCOME_UPDATED)


async def test_the_identity_map_lives_in_the_state_dir(fake: FakePardot, tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with open_stub(config(fake, state)):
        database = state / IDENTITY_FILE
        assert database.is_file()
        with sqlite3.connect(database) as probe:
            tables = {row[0] for row in probe.execute("SELECT name FROM sqlite_master")}
        assert "identity" in tables


async def test_an_unusable_state_dir_is_a_config_error(fake: FakePardot, tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(ConfigError, match=r"^server\.state_dir: cannot open the identity map"):
        await start_server(config(fake, blocker))
