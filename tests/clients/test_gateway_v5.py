"""The v5 gateway over HTTP against fakepardot: chosen for v5 calls, OAuth only, pages
followed on the configured host, one call per write within the account's slots, and
v5's errors (JSON or XML) read through the one err_code table."""

from __future__ import annotations

import asyncio

import pytest

from clients.config import ConnectionConfig
from clients.config.connection import ConnectionMisconfigured, check_connection
from clients.connections import PardotConnections
from clients.gateway import PardotGateway
from clients.gateway_v5 import PardotV5Gateway
from fakepardot import DEMO, FakePardot
from strategies.core.errors import FailedPrecondition, PardotError

from .conftest import ClientFactory, api_calls, gateway, legacy_config, oauth_config


def v5_config(fake: FakePardot, **overrides: object) -> ConnectionConfig:
    return oauth_config(fake, "v5", api_version=5, **overrides)


async def test_v5_calls_get_the_v5_gateway_and_the_others_the_v3v4_one(fake: FakePardot) -> None:
    connections = PardotConnections({"v5": v5_config(fake)})
    try:
        connection = connections.get("v5")
        chosen = {
            version: type(connection.gateway(api_version=version, dry_run=False, deadline=None))
            for version in (3, 4, 5)
        }
    finally:
        await connections.aclose()
    assert chosen == {3: PardotGateway, 4: PardotGateway, 5: PardotV5Gateway}


async def test_a_legacy_login_cannot_speak_v5(fake: FakePardot, make_client: ClientFactory) -> None:
    connection = make_client(legacy_config(fake))
    with pytest.raises(FailedPrecondition) as caught:
        gateway(connection, api_version=5)
    assert caught.value.reason == "PARDOT_AUTH_MECHANISM_INVALID"
    assert "connections.legacy.auth" in caught.value.message
    with pytest.raises(ConnectionMisconfigured) as refused:
        check_connection(legacy_config(fake, api_version=5))
    assert any("connections.legacy.api_version" in p for p in refused.value.problems)


async def test_a_query_by_email_follows_every_page_on_the_configured_host(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    fake.state.set_switches(v5_page_size=2)
    seeded = {
        int(fake.state.add_prospect(DEMO.account_v4, email="paged@example.com")["id"])
        for _ in range(5)
    }
    g = gateway(make_client(v5_config(fake)))

    found = await g.read_by_email("paged@example.com")

    assert {p.id for p in found} == seeded and len(found) == 5
    reads = [c for c in api_calls(fake) if c.method == "GET"]
    assert len(reads) == len(g.calls) == 3
    assert all(c.path == "/api/v5/objects/prospects" for c in reads)
    assert "email" in reads[0].query and "nextPageToken" in reads[1].query


async def test_writes_go_one_call_each_never_in_batches_within_five_slots(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    fake.state.set_switches(latency_s=0.02)
    connection = make_client(v5_config(fake))

    async def one(n: int) -> int | None:
        written = await gateway(connection).upsert_latest_by_email(f"many{n}@example.com", {})
        return written.id

    ids = await asyncio.gather(*(one(n) for n in range(20)))

    writes = [c for c in api_calls(fake) if c.path.endswith("/do/upsertLatestByEmail")]
    assert len(writes) == 20 and len(set(ids)) == 20 and None not in ids
    assert all(c.err_code == 0 for c in api_calls(fake))  # never err 66: at most 5 in flight
    assert not [c for c in api_calls(fake) if "batch" in c.path]


@pytest.mark.parametrize("envelope", ["json", "xml"])
async def test_an_expired_token_on_v5_is_refreshed_once_in_either_envelope(
    fake: FakePardot, make_client: ClientFactory, envelope: str
) -> None:
    connection = make_client(v5_config(fake))
    await gateway(connection).read_by_email("warm@example.com")  # a token is held
    fake.state.set_switches(v5_auth_errors=envelope)
    fake.state.expire_tokens()

    written = await gateway(connection).upsert_latest_by_email("token@example.com", {})

    assert written.created is True
    assert [c.err_code for c in api_calls(fake)][-2:] == [184, 0]


async def test_v5_concurrency_refusals_are_retried_like_v4s(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    fake.state.inject("err", times=1, err_code=66, path_contains="/api/v5/objects/")
    written = await gateway(make_client(v5_config(fake))).upsert_latest_by_email(
        "retry@example.com", {}
    )
    assert written.created is True
    assert [c.err_code for c in api_calls(fake)] == [66, 0]


async def test_a_v5_field_error_names_the_reason_from_the_one_table(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    g = gateway(make_client(v5_config(fake)))
    with pytest.raises(PardotError) as caught:
        await g.upsert_latest_by_email("field@example.com", {"no_such_field": "x"})
    assert (caught.value.err_code, caught.value.reason) == (180, "INVALID_FIELD")
    assert caught.value.code.name == "INVALID_ARGUMENT"
