"""Fixtures for the server tests: a real grpc.aio server on 127.0.0.1:0, captured logs,
and stand-in connections whose gateways are the in-memory Pardot (tests/support).

The stand-ins let a test control what happens inside a call (block it, fail it with an
unexpected exception, see the deadline it got) without any HTTP; the real
``PardotConnections`` against fakepardot is exercised in test_smoke.py.

``state`` is a state backend under test (tests/support/state.py), once per backend that
keeps message_id records: the idempotency tests run against its protocol.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients.config import ConnectionConfig
from clients.state.identity import IdentityView, MemoryIdentityStore
from clients.state.protocols import IdentityStore
from fakepardot import FakePardot
from server.app import RunningServer, start_server
from server.config import ServerConfig, ServiceConfig
from strategies.core.errors import FailedPrecondition, Reason
from strategies.core.model import CallRecord
from support.log_capture import LogCapture, captured_logs
from support.memory_gateway import MemoryGateway
from support.state import RECORD_BACKENDS, state_fixture

#: A configured secret that must never show up in a log line or a status.
CONFIGURED_SECRET = "cfg-secret-4b1d7e2a9c"

V3_CONNECTION = ConnectionConfig(
    name="default",
    api_version=3,
    auth="legacy",
    email="legacy-v3@example.com",
    password=CONFIGURED_SECRET,
    user_key="0123456789abcdef0123456789abcdef",
)
V4_CONNECTION = ConnectionConfig(
    name="v4",
    api_version=4,
    business_unit_id="0Uv000000000001CAA",
    client_id="client",
    client_secret="v4-client-secret-value",
    refresh_token="v4-refresh-token-value",
)


def service_config(state_dir: Path, **server: Any) -> ServiceConfig:
    """The stand-in connections' configuration; ``server`` overrides ``[server]`` keys."""
    return ServiceConfig(
        server=ServerConfig(listen="127.0.0.1:0", state_dir=state_dir, **server),
        connections={"default": V3_CONNECTION, "v4": V4_CONNECTION},
    )


class RecordingGateway:
    """The in-memory Pardot, with a CallRecord per operation (as the real gateway
    keeps) and an optional hook run before each operation."""

    def __init__(
        self,
        inner: MemoryGateway,
        deadline: float | None,
        before: Callable[[str], Awaitable[None]] | None,
    ) -> None:
        self.inner = inner
        self.api_version = inner.api_version
        self.identity = inner.identity
        self.deadline = deadline
        self.calls: list[CallRecord] = []
        self._before = before

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self.inner, name)
        if not callable(operation) or not asyncio.iscoroutinefunction(operation):
            return operation  # attributes (earlier_attempt, written) and plain methods

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self._before is not None:
                await self._before(name)
            started = time.monotonic()
            try:
                return await operation(*args, **kwargs)
            finally:
                duration = time.monotonic() - started
                self.calls.append(CallRecord("POST", f"/memory/{name}", 200, 0, duration))

        return call


@dataclass
class StubConnection:
    config: ConnectionConfig
    owner: StubConnections

    def gateway(self, *, api_version: int, dry_run: bool, deadline: float | None) -> Any:
        self.owner.deadlines.append(deadline)
        inner = MemoryGateway(api_version=api_version, dry_run=dry_run)
        # One Pardot and one identity map per stand-in, across calls (as in production).
        inner.prospects = self.owner.prospects
        inner.identity = IdentityView(self.owner.identity, self.config.name)
        return RecordingGateway(inner, deadline, self.owner.before)


@dataclass
class StubConnections:
    """Quacks like ``clients.connections.PardotConnections``."""

    configs: dict[str, ConnectionConfig]
    prospects: dict[int, dict[str, Any]] = field(default_factory=dict)
    identity: IdentityStore = field(default_factory=MemoryIdentityStore)
    deadlines: list[float | None] = field(default_factory=list)
    before: Callable[[str], Awaitable[None]] | None = None
    closed: bool = False

    def get(self, name: str) -> StubConnection:
        try:
            return StubConnection(self.configs[name or "default"], self)
        except KeyError:
            raise FailedPrecondition("unknown", reason=Reason.UNKNOWN_CONNECTION) from None

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Served:
    running: RunningServer
    channel: grpc.aio.Channel
    connections: StubConnections

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.port}"


state = state_fixture(RECORD_BACKENDS)


@pytest.fixture
def fresh_fake(fake: FakePardot) -> FakePardot:
    """fakepardot over real HTTP, for the tests that run the real Pardot client: an
    alias of ``fake`` (tests/conftest.py), which is reset around each test."""
    return fake


@pytest.fixture
def configured_secret() -> str:
    return CONFIGURED_SECRET


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., ServiceConfig]:
    """``service_config`` keeping its state under the test's tmp_path."""
    return functools.partial(service_config, tmp_path / "state")


@pytest.fixture
def stub_connections() -> StubConnections:
    return StubConnections(configs={"default": V3_CONNECTION, "v4": V4_CONNECTION})


@pytest.fixture
async def served(
    stub_connections: StubConnections, make_config: Callable[..., ServiceConfig]
) -> AsyncIterator[Served]:
    running = await start_server(make_config(), connections=stub_connections)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield Served(running, channel, stub_connections)
    finally:
        await channel.close()
        await running.stop(0)


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """The service's real logging setup, writing into a buffer; restored afterwards."""
    with captured_logs([CONFIGURED_SECRET]) as capture:
        yield capture


def offline_config(**server: object) -> dict[str, object]:
    """A configuration to parse, not to call: one legacy connection to a port nothing
    listens on; ``server`` sets ``[server]`` keys."""
    return {
        "server": {"listen": "127.0.0.1:0", **server},
        "connections": {
            "default": {
                "auth": "legacy",
                "api_version": 3,
                "pardot_url": "http://127.0.0.1:9",
                "email": "ops@example.com",
                "password": "not-a-real-password",
                "user_key": "0123456789abcdef0123456789abcdef",
            }
        },
    }
