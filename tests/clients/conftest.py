"""Fixtures for the client tests: the session's fakepardot over real HTTP on loopback
(``fake``, reset around each test that uses it: tests/conftest.py), and connections
configured with tiny backoffs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from clients.config import ConnectionConfig
from clients.connections import PardotConnection, PardotConnections
from clients.gateway import PardotGateway
from fakepardot import DEMO, FakePardot

#: Backoffs small enough for tests; the retry logic is the same.
FAST: dict[str, Any] = {"backoff_base_s": 0.001, "backoff_max_s": 0.005, "timeout_s": 2.0}


def oauth_config(fake: FakePardot, name: str = "default", **overrides: Any) -> ConnectionConfig:
    """The demo v4 business unit over the refresh_token grant (overrides win)."""
    values: dict[str, Any] = {
        "name": name,
        "pardot_url": fake.url,
        "token_url": fake.token_url,
        "auth": "oauth",
        "api_version": 4,
        "business_unit_id": DEMO.business_unit_v4,
        "grant_type": "refresh_token",
        "client_id": DEMO.client_id,
        "client_secret": DEMO.client_secret,
        "refresh_token": DEMO.refresh_token,
        **FAST,
    }
    return ConnectionConfig(**(values | overrides))


def v3_config(fake: FakePardot, name: str = "v3", **overrides: Any) -> ConnectionConfig:
    """The demo v3 business unit over the password grant."""
    values: dict[str, Any] = {
        "api_version": 3,
        "business_unit_id": DEMO.business_unit_v3,
        "grant_type": "password",
        "username": DEMO.username,
        "password": DEMO.password,
        "refresh_token": "",
    }
    return oauth_config(fake, name, **(values | overrides))


def legacy_config(fake: FakePardot, name: str = "legacy", **overrides: Any) -> ConnectionConfig:
    values: dict[str, Any] = {
        "name": name,
        "pardot_url": fake.url,
        "auth": "legacy",
        "api_version": 3,
        "email": DEMO.legacy_v3_email,
        "password": DEMO.legacy_password,
        "user_key": DEMO.user_key,
        **FAST,
    }
    return ConnectionConfig(**(values | overrides))


ClientFactory = Callable[[ConnectionConfig], PardotConnection]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Builds a connection for one configuration (as the server would: through
    ``PardotConnections``, with its own HTTP client) and closes it after the test."""
    made: list[PardotConnections] = []

    def build(config: ConnectionConfig) -> PardotConnection:
        connections = PardotConnections({config.name: config})
        made.append(connections)
        return connections.get(config.name)

    yield build
    for connections in made:
        await connections.aclose()


def gateway(
    connection: PardotConnection,
    *,
    api_version: int | None = None,
    dry_run: bool = False,
    deadline: float | None = None,
) -> PardotGateway:
    version = api_version if api_version is not None else connection.config.api_version
    return connection.gateway(api_version=version, dry_run=dry_run, deadline=deadline)


def api_calls(fake: FakePardot) -> list[Any]:
    """The fake's recorded API calls, without token grants and logins."""
    return [c for c in fake.state.calls if c.path.startswith("/api/") and "/login/" not in c.path]


def token_requests(fake: FakePardot) -> list[Any]:
    return [c for c in fake.state.calls if "oauth2/token" in c.path]
