"""clients.state.redis.tokens: one connection's token shared by every replica, fetched
once for all of them (issue 13). Three ``RedisState`` on one key prefix stand for three
replicas; a refresher that dies is a real process killed with SIGKILL. The protocol's
own tests (tests/clients/test_state.py) run on Redis through the ``state`` fixture."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients.config import ConnectionConfig
from clients.connections import PardotConnections
from clients.state.redis.state import RedisState
from fakepardot import FakePardot
from strategies.core.errors import PardotAuthFailed, StateUnwritable
from support.redis_server import RedisServer, fresh_prefix, redis_server_binary, session_server
from support.waiting import until

from .conftest import gateway, legacy_config, oauth_config

ROOT = Path(__file__).resolve().parents[2]

#: A replica that starts a refresh (short lease) whose fetch never answers, and says so.
REFRESHER = """
import asyncio, sys
from clients.state.health import StateHealth
from clients.state.redis.context import RedisContext, open_client
from clients.state.redis.tokens import RedisTokenStore

async def main() -> None:
    url, prefix, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ctx = RedisContext(
        open_client(url, timeout_s=2.0), prefix, StateHealth(lambda: None), timeout_s=2.0
    )
    tokens = RedisTokenStore(ctx, "default", lease_s=lease)

    async def fetch() -> str:
        print("fetching", flush=True)
        await asyncio.Event().wait()
        return "never"

    await tokens.refresh(None, fetch)

asyncio.run(main())
"""


@pytest.fixture
async def replicas() -> AsyncIterator[list[RedisState]]:
    """Three replicas' backends on one Redis and one key prefix."""
    prefix = fresh_prefix()
    opened = [RedisState(session_server().url, key_prefix=prefix) for _ in range(3)]
    yield opened
    for state in opened:
        await state.aclose()


async def test_twenty_refreshes_over_three_replicas_make_one_fetch(
    replicas: list[RedisState],
) -> None:
    stores = [state.tokens("default") for state in replicas]
    fetches = 0
    answer = asyncio.Event()

    async def fetch() -> str:
        nonlocal fetches
        fetches += 1
        await answer.wait()
        return f"token-{fetches}"

    waiting = [asyncio.ensure_future(stores[n % 3].refresh(None, fetch)) for n in range(20)]
    await until(lambda: fetches == 1)
    await asyncio.sleep(0.05)  # the other replicas look at Redis meanwhile, and wait
    answer.set()
    assert await asyncio.wait_for(asyncio.gather(*waiting), 10) == ["token-1"] * 20
    assert fetches == 1
    assert [store.current() for store in stores] == ["token-1"] * 3


async def test_a_replica_takes_anothers_new_token_when_its_own_is_refused(
    replicas: list[RedisState],
) -> None:
    one, two = replicas[0].tokens("default"), replicas[1].tokens("default")
    fetches: list[str] = []

    async def fetch() -> str:
        fetches.append(f"token-{len(fetches) + 1}")
        return fetches[-1]

    assert await one.refresh(None, fetch) == "token-1"
    assert await two.refresh(None, fetch) == "token-1"  # taken from Redis
    assert await two.refresh("token-1", fetch) == "token-2"  # refused on two: one fetch
    assert one.current() == "token-1"  # one learns of it only when it asks
    assert await one.refresh("token-1", fetch) == "token-2"
    assert fetches == ["token-1", "token-2"]

    await one.forget("token-2")  # refused even fresh: gone for every replica
    assert await replicas[2].tokens("default").refresh(None, fetch) == "token-3"
    assert fetches == ["token-1", "token-2", "token-3"]


async def redis_ms(state: RedisState) -> int:
    """Redis's clock, in milliseconds: the one the leases are judged by."""
    seconds, micros = await state.context.client.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_a_refresher_killed_while_fetching_lets_another_fetch_after_its_lease(
    replicas: list[RedisState],
) -> None:
    prefix = replicas[0].context.prefix
    refresher = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        REFRESHER,
        session_server().url,
        prefix,
        "0.3",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert refresher.stdout is not None
        line = await asyncio.wait_for(refresher.stdout.readline(), 30)
        assert line.strip() == b"fetching"  # it holds the lock
        stores = [state.tokens("default") for state in replicas]
        fetches = 0

        async def fetch() -> str:
            nonlocal fetches
            fetches += 1
            return "after"

        waiting = [asyncio.ensure_future(stores[n % 3].refresh(None, fetch)) for n in range(9)]

        # While it lives it renews its lease: Redis's clock passes the lease's first end
        # and the lock is still there, and nobody else fetched.
        ctx = replicas[0].context
        lock = ctx.key("token", "default", "refresh")
        first_end = await redis_ms(replicas[0]) + await ctx.client.pttl(lock)
        while await redis_ms(replicas[0]) <= first_end:  # noqa: ASYNC110 - polling Redis
            await asyncio.sleep(0.02)
        assert await ctx.client.exists(lock)
        assert fetches == 0 and not any(w.done() for w in waiting)

        refresher.send_signal(signal.SIGKILL)
        await refresher.wait()
        assert await asyncio.wait_for(asyncio.gather(*waiting), 10) == ["after"] * 9
        assert fetches == 1
    finally:
        if refresher.returncode is None:
            refresher.kill()
            await refresher.wait()


async def test_a_rejection_is_every_replicas_for_its_cooldown(replicas: list[RedisState]) -> None:
    one, two = replicas[0].tokens("default"), replicas[1].tokens("default")
    refused = PardotAuthFailed(
        "Salesforce refused the grant of connection 'default': check CLIENT_ID",
        metadata={"oauth_error": "invalid_grant"},
    )
    await one.reject(refused, for_s=30)
    seen = await two.rejection()
    assert seen is not None and isinstance(seen, PardotAuthFailed)
    assert (seen.message, seen.reason, seen.metadata) == (
        refused.message,
        "PARDOT_AUTH_FAILED",
        {"oauth_error": "invalid_grant"},
    )
    ctx = replicas[0].context
    ttl_ms = await ctx.client.pttl(ctx.key("token", "default", "rejection"))
    assert 0 < ttl_ms <= 30_000  # Redis ends it: one clock for every replica
    await one.reject(refused, for_s=0.05)
    async with asyncio.timeout(5):
        while await two.rejection() is not None:  # noqa: ASYNC110 - Redis expires it
            await asyncio.sleep(0.01)


async def test_redis_stopped_fails_the_refresh_and_it_works_again_after(tmp_path: Path) -> None:
    server = RedisServer(redis_server_binary(), tmp_path / "redis")
    server.start()
    state = RedisState(server.url, key_prefix=fresh_prefix(), timeout_s=0.5)
    try:
        tokens = state.tokens("default")
        fetches = 0

        async def fetch() -> str:
            nonlocal fetches
            fetches += 1
            return f"token-{fetches}"

        assert await tokens.refresh(None, fetch) == "token-1"
        server.stop()
        with pytest.raises(StateUnwritable, match="the API token"):
            await tokens.refresh("token-1", fetch)
        with pytest.raises(StateUnwritable, match="the API token"):
            await tokens.rejection()
        assert not state.health.writable and fetches == 1  # no fetch without the lock
        server.start()
        assert await tokens.refresh("token-1", fetch) == "token-2"
    finally:
        state.health.close()
        await state.aclose()
        server.stop()


# --- through clients.auth, against fakepardot over HTTP ----------------------------------


async def replica_connections(
    fake: FakePardot, config: ConnectionConfig, prefix: str, n: int
) -> list[tuple[PardotConnections, RedisState]]:
    """``n`` replicas' connections to one configuration, their state on one prefix."""
    made = []
    for _ in range(n):
        state = RedisState(session_server().url, key_prefix=prefix)
        made.append((PardotConnections({config.name: config}, state=state), state))
    return made


@pytest.mark.parametrize("auth", ["oauth", "legacy"])
async def test_a_token_refused_under_load_is_granted_once_for_every_replica(
    fake: FakePardot, auth: str
) -> None:
    """Issue 13: a token expiry under load on 3 replicas → exactly 1 token grant (the
    legacy api_key likewise: exactly 1 login)."""
    config = oauth_config(fake) if auth == "oauth" else legacy_config(fake)
    replicas = await replica_connections(fake, config, fresh_prefix(), 3)

    def granted() -> int:
        return fake.state.token_grants if auth == "oauth" else fake.state.logins

    try:
        clients = [connections.get(config.name) for connections, _ in replicas]
        await asyncio.gather(*(gateway(c).read_by_email("warm@example.com") for c in clients))
        assert granted() == 1  # the first token, shared

        fake.state.expire_tokens()  # every replica's token stops working at once
        reads = [gateway(clients[n % 3]).read_by_email(f"p{n}@example.com") for n in range(30)]
        await asyncio.wait_for(asyncio.gather(*reads), 30)
        assert granted() == 2
    finally:
        for connections, state in replicas:
            await connections.aclose()
            await state.aclose()
