"""Both auth modes against fakepardot: tokens are fetched once and cached, refreshed
single-flight when they expire, and rejected credentials fail fast with a message that
names the keys to fix, never a secret."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from grpc import StatusCode
from structlog.testing import capture_logs

from clients import auth as pardot_auth
from clients.state.local import MemoryState
from fakepardot import DEMO, FakePardot
from strategies.core.errors import (
    DeadlineExceeded,
    PardotAuthFailed,
    PardotError,
    PardotUnavailable,
)
from support.waiting import until

from .conftest import (
    ClientFactory,
    api_calls,
    gateway,
    legacy_config,
    oauth_config,
    token_requests,
    v3_config,
)

ALL_SECRETS = (DEMO.client_secret, DEMO.refresh_token, DEMO.password, DEMO.user_key)


async def test_oauth_token_is_fetched_once_and_cached(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    seeded = fake.state.add_prospect("v4", email="cached@example.com")
    pardot = gateway(make_client(oauth_config(fake)))

    found = await pardot.read_by_email("cached@example.com")
    by_id = await pardot.read_by_id(seeded["id"])

    assert [p.id for p in found] == [seeded["id"]]
    assert by_id is not None and by_id.email == "cached@example.com"
    assert fake.state.token_grants == 1
    # A token grant is shared by every request, so no request's calls list it.
    assert [c.http_status for c in pardot.calls] == [200, 200]
    assert all(c.path.startswith("/api/prospect/") for c in pardot.calls)


@pytest.mark.parametrize("grant", ["refresh_token", "password", "client_credentials"])
async def test_every_grant_type_gets_a_token(
    fake: FakePardot, make_client: ClientFactory, grant: str
) -> None:
    config = oauth_config(fake, grant_type=grant, username=DEMO.username, password=DEMO.password)
    assert await gateway(make_client(config)).read_by_email("nobody@example.com") == []
    assert fake.state.token_grants == 1


async def test_the_business_unit_header_chooses_the_account(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    in_v4 = fake.state.add_prospect("v4", email="only-v4@example.com")
    v4 = gateway(make_client(oauth_config(fake)))
    v3 = gateway(make_client(v3_config(fake)))

    assert (await v4.read_by_id(in_v4["id"])) is not None
    assert (await v3.read_by_id(in_v4["id"])) is None


async def test_an_unknown_business_unit_is_a_settings_error_and_not_retried(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake, business_unit_id="0Uv000000000009CAA")))
    with pytest.raises(PardotError) as caught:
        await pardot.read_by_email("a@example.com")
    assert caught.value.err_code == 201
    assert caught.value.code is StatusCode.FAILED_PRECONDITION
    assert len(api_calls(fake)) == 1


async def test_expired_tokens_are_refreshed_once_for_ten_concurrent_calls(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake))
    await gateway(client).read_by_email("warm@example.com")
    assert fake.state.token_grants == 1
    fake.state.expire_tokens()
    fake.state.latency_s = 0.01

    gateways = [gateway(client) for _ in range(10)]
    results = await asyncio.gather(*(g.read_by_email("x@example.com") for g in gateways))

    assert results == [[]] * 10
    assert fake.state.token_grants == 2
    refused = [c for c in api_calls(fake) if c.err_code == 184]
    assert 1 <= len(refused) <= 10
    # Every call that met the expired token retried exactly once, after the refresh.
    for g in gateways:
        attempts = [(c.attempt, c.err_code) for c in g.calls if c.path.startswith("/api/")]
        assert attempts in ([(1, 4)], [(1, 184), (2, 4)])  # err 4: no such email


async def test_bad_oauth_credentials_fail_fast_without_a_retry_storm(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake, refresh_token="wrong-refresh-token"))

    results = await asyncio.gather(
        *(gateway(client).read_by_email("a@example.com") for _ in range(10)),
        return_exceptions=True,
    )
    later = gateway(client)
    with pytest.raises(PardotAuthFailed):
        await later.read_by_email("a@example.com")

    assert all(isinstance(r, PardotAuthFailed) for r in results)
    error = results[0]
    assert isinstance(error, PardotAuthFailed)
    assert error.code is StatusCode.FAILED_PRECONDITION
    assert error.reason == "PARDOT_AUTH_FAILED"
    assert "connections.default.refresh_token" in error.message
    assert "wrong-refresh-token" not in error.message
    assert DEMO.client_secret not in error.message
    assert len(token_requests(fake)) == 1  # one grant attempt for eleven calls
    assert api_calls(fake) == []
    assert later.calls == []  # within the cooldown nothing is sent at all


async def test_calls_queued_behind_a_failed_token_fetch_share_its_failure(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake, max_retries=0))
    fake.state.inject("http_500", times=50, path_contains="oauth2/token")

    results = await asyncio.gather(
        *(gateway(client).read_by_email("a@example.com") for _ in range(10)),
        return_exceptions=True,
    )

    assert all(isinstance(r, PardotUnavailable) for r in results)
    assert len(token_requests(fake)) == 1  # not one per waiting call
    fake.state.clear_faults()
    assert await gateway(client).read_by_email("a@example.com") == []  # not sticky


async def test_a_token_refused_again_after_one_refresh_is_an_auth_failure(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake))
    fake.state.inject("err", times=2, err_code=184, path_contains="/api/prospect/")

    with pytest.raises(PardotAuthFailed) as caught:
        await gateway(client).read_by_email("a@example.com")
    assert "connections.default.business_unit_id" in caught.value.message
    assert caught.value.metadata["err_code"] == "184"
    assert fake.state.token_grants == 2  # the first token and exactly one refresh
    assert len(api_calls(fake)) == 2

    with pytest.raises(PardotAuthFailed):  # cooling down: no grant, no call
        await gateway(client).read_by_email("a@example.com")
    assert fake.state.token_grants == 2 and len(api_calls(fake)) == 2


async def test_legacy_login_then_one_relogin_on_err_1(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(legacy_config(fake)))
    await pardot.upsert_by_email("legacy@example.com", {"first_name": "Lee"})
    assert fake.state.logins == 1
    fake.state.expire_tokens()

    found = await pardot.read_by_email("legacy@example.com")

    assert [p.get("first_name") for p in found] == ["Lee"]
    assert fake.state.logins == 2
    reads = [(c.attempt, c.err_code) for c in pardot.calls if "/do/read/" in c.path]
    assert reads == [(1, 1), (2, 0)]
    for call in api_calls(fake):  # credentials travel in the header only
        assert not {"api_key", "user_key", "password"} & set(call.query)


async def test_legacy_login_refused_names_the_keys(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(legacy_config(fake, password="not-the-password")))
    with pytest.raises(PardotAuthFailed) as caught:
        await pardot.read_by_email("a@example.com")
    assert "connections.legacy.password" in caught.value.message
    assert "not-the-password" not in caught.value.message
    assert fake.state.logins == 0
    assert pardot.calls == []  # the refused login is logged, not a call of this request


async def test_retired_legacy_auth_says_to_use_oauth(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    fake.state.legacy_retired = True
    with pytest.raises(PardotAuthFailed) as caught:
        await gateway(make_client(legacy_config(fake))).read_by_email("a@example.com")
    assert caught.value.reason == "LEGACY_AUTH_RETIRED"
    assert "oauth" in caught.value.message


async def test_no_secret_or_token_reaches_logs_records_or_errors(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    oauth = gateway(make_client(oauth_config(fake)))
    legacy = gateway(make_client(legacy_config(fake)))
    with capture_logs() as logs:
        await oauth.read_by_email("a@example.com")
        await legacy.read_by_email("a@example.com")
        fake.state.expire_tokens()
        await oauth.read_by_email("a@example.com")
        await legacy.read_by_email("a@example.com")

    assert {e["event"] for e in logs} >= {"pardot.call"}
    text = repr(logs) + repr(oauth.calls) + repr(legacy.calls)
    for secret in ALL_SECRETS:
        assert secret not in text
    assert "00Dfake!" not in text  # the fake's access tokens
    assert "Bearer" not in text and "api_key=" not in text
    assert all("?" not in c.path for c in oauth.calls + legacy.calls)


async def test_a_token_fetch_outlives_the_caller_whose_deadline_started_it(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    """A race of the former single flight (a lock, and a count of finished fetches read
    before waiting for it): the fetch ran in the caller that took the lock, so that
    caller's deadline cancelled it, and the callers queued behind fetched again — two
    token requests (or, after an earlier failure, they shared that stale failure). Now
    a fetch is one shared task: one caller giving up does not end it for the others."""
    client = make_client(oauth_config(fake))
    fake.state.inject("delay", times=1, delay_s=0.3, path_contains="oauth2/token")
    hurried = gateway(client, deadline=time.monotonic() + 0.15)
    patient = [gateway(client) for _ in range(4)]

    results = await asyncio.gather(
        hurried.read_by_email("a@example.com"),
        *(g.read_by_email("a@example.com") for g in patient),
        return_exceptions=True,
    )

    assert isinstance(results[0], DeadlineExceeded)
    assert results[1:] == [[]] * 4
    await until(lambda: any(c.fault == "delay" for c in token_requests(fake)))
    assert len(token_requests(fake)) == 1
    assert fake.state.token_grants == 1


async def test_a_token_read_from_the_store_is_told_to_the_redactor_before_use(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    """A store shared with other processes may hold a token this process never fetched:
    it reaches ``on_secret_learned`` too, before any request carries it."""
    tokens = MemoryState().tokens("default")

    async def fetched_elsewhere() -> str:
        return "token-from-another-process"

    await tokens.refresh(None, fetched_elsewhere)
    learned: list[str] = []
    before = pardot_auth._secret_learned
    pardot_auth.on_secret_learned(learned.append)
    try:
        async with httpx.AsyncClient() as http:
            auth = pardot_auth.make_authenticator(
                oauth_config(fake), http, MemoryState().slots("bu", 1), tokens
            )
            assert await auth.token(request_timeout_s=1) == "token-from-another-process"
            assert await auth.token(request_timeout_s=1) == "token-from-another-process"
        assert learned == ["token-from-another-process"]  # once, not per request
        assert fake.state.token_grants == 0
    finally:
        pardot_auth.on_secret_learned(before)
