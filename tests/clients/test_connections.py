"""PardotConnections: names map to configured connections only, accounts share one
limiter, and every gateway sees the connection's identity map."""

from __future__ import annotations

import asyncio

import pytest

from clients.connections import PardotConnections
from fakepardot import FakePardot
from strategies.core.errors import FailedPrecondition

from .conftest import api_calls, oauth_config, v3_config


async def test_names_resolve_and_unknown_names_say_what_is_configured(fake: FakePardot) -> None:
    connections = PardotConnections(
        {"default": oauth_config(fake), "v3": v3_config(fake, name="v3")}
    )
    try:
        assert connections.names == ["default", "v3"]
        assert connections.get("").name == "default"
        assert connections.get("v3").config.api_version == 3
        with pytest.raises(FailedPrecondition) as caught:
            connections.get("eu")
        assert caught.value.reason == "UNKNOWN_CONNECTION"
        assert "settings.connection" in caught.value.message
        assert "'default'" in caught.value.message and "'v3'" in caught.value.message
    finally:
        await connections.aclose()


async def test_closing_twice_is_harmless(fake: FakePardot) -> None:
    connections = PardotConnections({"default": oauth_config(fake)})
    await connections.aclose()
    await connections.aclose()


def test_a_bad_configuration_is_refused_at_construction(fake: FakePardot) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        PardotConnections({"default": oauth_config(fake, business_unit_id="0Uv123")})
    assert "connections.default.business_unit_id" in caught.value.message


async def test_gateways_talk_to_the_configured_account(fake: FakePardot) -> None:
    connections = PardotConnections(
        {"default": oauth_config(fake), "v3": v3_config(fake, name="v3")}
    )
    try:
        pardot = connections.get("v3").gateway(api_version=3, dry_run=False, deadline=None)
        created = await pardot.upsert_by_email("conn@example.com", {"first_name": "C"})
        assert [p["id"] for p in fake.state.prospects("v3")] == [created.id]
        assert fake.state.prospects("v4") == []
        await pardot.identity.remember("email", "conn@example.com", created)
        again = connections.get("v3").gateway(api_version=3, dry_run=False, deadline=None)
        assert await again.identity.lookup("email", "conn@example.com") == created.id
        other = connections.get("default").gateway(api_version=4, dry_run=False, deadline=None)
        assert await other.identity.lookup("email", "conn@example.com") is None
    finally:
        await connections.aclose()


async def test_two_names_for_one_account_share_its_five_slots(fake: FakePardot) -> None:
    connections = PardotConnections(
        {"default": oauth_config(fake), "alias": oauth_config(fake, name="alias")}
    )
    fake.state.latency_s = 0.02
    try:
        gateways = [
            connections.get(name).gateway(api_version=4, dry_run=False, deadline=None)
            for name in ["default", "alias"] * 15
        ]
        results = await asyncio.gather(*(g.read_by_email("a@example.com") for g in gateways))
        assert results == [[]] * 30
        assert [c for c in api_calls(fake) if c.err_code == 66] == []
    finally:
        await connections.aclose()
