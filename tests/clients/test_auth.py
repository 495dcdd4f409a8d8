"""Both auth modes against fakepardot: tokens are fetched once and cached, refreshed
single-flight when they expire, and rejected credentials fail fast with a message that
names the keys to fix, never a secret — per cause of Salesforce's refusal; a refresh of
the same refresh token in progress elsewhere is waited for, never a refusal. Where only
Salesforce's exact answer matters (the race's texts, a refusal the fake does not give),
an ``httpx.MockTransport`` stands in for the token endpoint."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from typing import Any

import httpx
import pytest
from grpc import StatusCode
from structlog.testing import capture_logs

from clients import auth as pardot_auth
from clients.config import ConnectionConfig
from clients.state.local import MemoryState
from clients.state.protocols import TokenStore
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


@pytest.mark.parametrize("status", [400, 403])
async def test_an_unknown_business_unit_is_a_settings_error_and_not_retried(
    fake: FakePardot, make_client: ClientFactory, status: int
) -> None:
    """err 201's HTTP status is UNCONFIRMED (400 or 403): either reads the same."""
    fake.state.bu_invalid_http_status = status
    pardot = gateway(make_client(oauth_config(fake, business_unit_id="0Uv000000000009CAA")))
    with pytest.raises(PardotError) as caught:
        await pardot.read_by_email("a@example.com")
    assert caught.value.err_code == 201
    assert caught.value.http_status == status
    assert caught.value.code is StatusCode.FAILED_PRECONDITION
    assert "connections.default.business_unit_id" in caught.value.message
    assert len(api_calls(fake)) == 1


async def test_a_missing_business_unit_is_read_from_its_http_400(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake))
    fake.state.inject("err", times=1, err_code=181, path_contains="/api/prospect/")
    with pytest.raises(PardotError) as caught:
        await gateway(client).read_by_email("a@example.com")
    assert (caught.value.err_code, caught.value.http_status) == (181, 400)
    assert caught.value.reason == "BUSINESS_UNIT_MISSING"


async def test_a_v4_read_by_email_that_finds_nobody_is_an_empty_answer(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    """Pardot answers HTTP 400 err 4 (RECORDED): the gateway reads it as "nobody"."""
    pardot = gateway(make_client(oauth_config(fake)))
    assert await pardot.read_by_email("nobody@example.com") == []
    assert [(c.http_status, c.err_code) for c in pardot.calls] == [(400, 4)]


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


@pytest.mark.parametrize(
    ("overrides", "oauth_error", "keys"),
    [
        ({"refresh_token": "revoked-refresh-token"}, "invalid_grant", ["refresh_token"]),
        ({"client_id": "unknown-app"}, "invalid_client_id", ["client_id", "token_url"]),
        ({"client_secret": "wrong-secret"}, "invalid_client", ["client_secret"]),
        (
            {"grant_type": "password", "username": DEMO.username, "password": "wrong-pw"},
            "invalid_grant",
            ["username", "password"],
        ),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type", ["grant_type"]),
    ],
    ids=["refresh-token", "client-id", "client-secret", "password", "grant-type"],
)
async def test_each_oauth_refusal_names_the_keys_to_fix(
    fake: FakePardot,
    make_client: ClientFactory,
    overrides: dict[str, str],
    oauth_error: str,
    keys: list[str],
) -> None:
    fake.state.oauth_grant_types = ["refresh_token", "password"]
    client = make_client(oauth_config(fake, **overrides))

    with pytest.raises(PardotAuthFailed) as caught:
        await gateway(client).read_by_email("a@example.com")
    with pytest.raises(PardotAuthFailed) as cooling:  # within the cooldown: no request
        await gateway(client).read_by_email("a@example.com")

    for error in (caught.value, cooling.value):
        assert error.reason == "PARDOT_AUTH_FAILED"
        assert error.code is StatusCode.FAILED_PRECONDITION
        assert error.metadata == {"oauth_error": oauth_error}
        for key in keys:
            assert f"connections.default.{key}" in error.message
        for value in (*overrides.values(), *ALL_SECRETS):
            if value not in ("password", "client_credentials", DEMO.username):
                assert value not in error.message
    assert len(token_requests(fake)) == 1


async def test_an_unknown_refusal_names_every_key_of_the_grant() -> None:
    def salesforce(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "inactive_user", "error_description": "x"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(salesforce)) as http:
        auth = _authenticator(http, MemoryState().tokens("default"))
        with pytest.raises(PardotAuthFailed) as caught:
            await auth.token(request_timeout_s=1)
    message = caught.value.message
    assert "(inactive_user: x)" in message
    for key in ("client_id", "client_secret", "refresh_token"):
        assert f"connections.default.{key}" in message


def _authenticator(
    http: httpx.AsyncClient, tokens: TokenStore, **overrides: Any
) -> pardot_auth.Authenticator:
    config = ConnectionConfig(
        name="default",
        pardot_url="http://127.0.0.1:9",
        token_url="http://127.0.0.1:9/services/oauth2/token",
        auth="oauth",
        business_unit_id=DEMO.business_unit_v4,
        client_id=DEMO.client_id,
        client_secret=DEMO.client_secret,
        refresh_token=DEMO.refresh_token,
        **({"backoff_base_s": 0.01, "backoff_max_s": 0.04, "timeout_s": 2.0} | overrides),
    )
    return pardot_auth.make_authenticator(config, http, MemoryState().slots("bu", 1), tokens)


BUSY = {"error": "invalid_grant", "error_description": "token request is already being processed"}
# Tokens a test hands out reach the process-wide log redactor (``on_secret_learned``),
# which then masks them in every later message: never a common word.
MOCK_TOKEN = "00Dmock!access-token-from-a-mock-endpoint-7c1f"
OTHER_TOKEN = "00Dmock!access-token-of-another-holder-93ab"


async def test_two_connections_refreshing_one_refresh_token_at_once_both_get_a_token(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    """Two connections (as two processes: nothing shared) with the same credentials:
    Salesforce grants one refresh and answers the other "token request is already being
    processed". That one waits and asks again once the other is done: no cooldown, no
    PARDOT_AUTH_FAILED."""
    first = make_client(oauth_config(fake, name="first"))
    second = make_client(oauth_config(fake, name="second"))
    fake.state.latency_s = 0.2

    found = await asyncio.gather(
        gateway(first).read_by_email("a@example.com"),
        gateway(second).read_by_email("a@example.com"),
    )

    assert found == [[], []]
    grants = token_requests(fake)
    assert [c.http_status for c in grants] == [200, 400, 200]
    assert fake.state.token_grants == 2  # this backend: each connection's own store
    assert grants[2].ts >= grants[0].ts + 0.2  # asked again once the first was done
    fake.state.latency_s = 0.0
    fake.state.expire_tokens()  # both refresh again: neither is cooling down
    assert await gateway(first).read_by_email("a@example.com") == []
    assert await gateway(second).read_by_email("a@example.com") == []
    assert [c.http_status for c in token_requests(fake)][3:] == [200, 200]


async def test_a_refresh_in_progress_elsewhere_is_waited_for_then_its_token_taken() -> None:
    """With a store shared by several holders, the other refresh's token is in the
    store once it is done: the waiting caller takes it without another grant."""
    tokens = MemoryState().tokens("default")
    asked: list[float] = []

    def salesforce(request: httpx.Request) -> httpx.Response:
        asked.append(time.monotonic())
        return httpx.Response(400, json=BUSY)

    async def other_holder() -> str:  # another process sharing the store
        await asyncio.sleep(0.03)
        return OTHER_TOKEN

    async with httpx.AsyncClient(transport=httpx.MockTransport(salesforce)) as http:
        auth = _authenticator(http, tokens)
        fetch = auth.token(request_timeout_s=2)

        async def other_refresh_lands() -> None:
            await asyncio.sleep(0.005)
            while tokens.current() is None:
                try:
                    await tokens.refresh(None, other_holder)
                except pardot_auth.RefreshInProgress:
                    await asyncio.sleep(0.001)

        token, _ = await asyncio.gather(fetch, other_refresh_lands())
    assert token == OTHER_TOKEN
    assert await tokens.rejection() is None
    assert 1 <= len(asked) <= 5


@pytest.mark.parametrize(
    "description", ["token request is already being processed", "expired authorization code"]
)
async def test_a_refresh_in_progress_is_retried_never_cooled_down(description: str) -> None:
    """Both texts Salesforce has given this race (Segment's Pardot destination retries
    both); only for a refresh_token grant."""
    answers = [
        httpx.Response(400, json={"error": "invalid_grant", "error_description": description}),
        httpx.Response(200, json={"access_token": MOCK_TOKEN, "token_type": "Bearer"}),
    ]

    def salesforce(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    async with httpx.AsyncClient(transport=httpx.MockTransport(salesforce)) as http:
        tokens = MemoryState().tokens("default")
        auth = _authenticator(http, tokens)
        assert await auth.token(request_timeout_s=2) == MOCK_TOKEN
    assert answers == [] and await tokens.rejection() is None


async def test_a_refresh_in_progress_that_outlasts_the_caller_is_unavailable_not_auth_failed() -> (
    None
):
    asked: list[float] = []

    def salesforce(request: httpx.Request) -> httpx.Response:
        asked.append(time.monotonic())
        return httpx.Response(400, json=BUSY)

    async with httpx.AsyncClient(transport=httpx.MockTransport(salesforce)) as http:
        tokens = MemoryState().tokens("default")
        auth = _authenticator(http, tokens)
        started = time.monotonic()
        with pytest.raises(PardotUnavailable) as caught:
            await auth.token(request_timeout_s=0.3)
        elapsed = time.monotonic() - started

    # Bounded by the caller's 0.3 s, not by the 30 s cooldown or the next 2 s backoff;
    # the second of slack is for a loaded machine's scheduling, not the rule.
    assert elapsed < 0.3 + 1.0
    assert caught.value.reason == "PARDOT_UNAVAILABLE" and caught.value.retryable
    assert caught.value.retry_after is not None
    assert caught.value.metadata == {"oauth_error": "invalid_grant"}
    assert await tokens.rejection() is None  # no cooldown: the credentials are fine
    waits = [b - a for a, b in itertools.pairwise(asked)]
    assert len(asked) >= 3 and all(w >= 0.005 for w in waits)  # backed off, bounded
    assert waits[-1] >= waits[0]


async def test_a_busy_answer_to_another_grant_is_a_refusal() -> None:
    """ "Already being processed" is the refresh token's single flight: to a password
    grant the same words are Salesforce refusing it (named keys, cooldown)."""

    def salesforce(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=BUSY)

    async with httpx.AsyncClient(transport=httpx.MockTransport(salesforce)) as http:
        tokens = MemoryState().tokens("default")
        auth = _authenticator(
            http, tokens, grant_type="password", username=DEMO.username, password=DEMO.password
        )
        with pytest.raises(PardotAuthFailed):
            await auth.token(request_timeout_s=1)
    assert await tokens.rejection() is not None


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
    await until(lambda: client.transport.auth.next_attempt_in() == 0)  # the backoff ends
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


@pytest.mark.parametrize("mode", ["oauth", "legacy"])
async def test_a_refused_token_endpoint_is_asked_once_per_backoff(
    fake: FakePardot, make_client: ClientFactory, mode: str
) -> None:
    """Connection refused (nothing listens where the token comes from): 200 concurrent
    calls make one token request, and every call fails UNAVAILABLE with a RetryInfo —
    those that arrive during the backoff at once, without a request of their own.
    Counted from the client's own call records (a refused connection reaches no fake).
    A backoff long enough to cover the calls makes the count exact."""
    closed = f"http://127.0.0.1:{unused_port()}"
    slow_backoff = {"backoff_base_s": 60.0, "backoff_max_s": 60.0, "max_retries": 3}
    if mode == "oauth":
        config = oauth_config(fake, token_url=closed + "/services/oauth2/token", **slow_backoff)
    else:
        config = legacy_config(fake, pardot_url=closed, **slow_backoff)
    client = make_client(config)
    deadline = time.monotonic() + 5  # the transport's backoff of 60 s never fits: no sleep

    with capture_logs() as logs:
        results = await asyncio.gather(
            *(
                gateway(client, deadline=deadline).read_by_email(f"p{n}@example.com")
                for n in range(200)
            ),
            return_exceptions=True,
        )

    assert all(isinstance(r, PardotUnavailable) for r in results), results[:3]
    assert all(r.retry_after is not None and r.retry_after > 0 for r in results)
    token_calls = [e for e in logs if e["event"] == "pardot.call" and e.get("purpose") == "auth"]
    assert len(token_calls) == 1
    assert client.transport.auth.next_attempt_in() > 0
    backing_off = [r for r in results if isinstance(r, pardot_auth.TokenEndpointBackingOff)]
    assert backing_off and "asked again in" in backing_off[0].message


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
