"""``prospect-sync state migrate --from sqlite --to redis``, end to end: an embedded
server leaves its SQLite state under state_dir, the real command copies it into the
session's real redis-server (and, run again, changes nothing), and a Redis-backed
server then answers a replay from the copied record and finds a person in the copied
identity map. fakepardot over HTTP throughout.

Since issue 15 it copies Forget's suppressions too, with their key (docs/erasure.md): a
person forgotten on the embedded state is refused by a Redis-backed server; a
configured ``server.suppression_key`` is checked against the SQLite key check and never
reaches Redis; a generated key becomes Redis's (SET NX), and a Redis holding another
key or key check refuses the migration (exit 2) before anything is copied, naming the
problem and never a key.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.state.local import (
    IDEMPOTENCY_FILE,
    SUPPRESSION_KEY_FILE,
    SUPPRESSIONS_FILE,
)
from clients.state.protocols import IdempotencyKey
from clients.state.redis.state import RedisState
from clients.state.responses import ResponseStore
from clients.state.suppressions import SqliteSuppressions, digest, existing_file_key
from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.redis_server import fresh_prefix, session_server
from support.service import close_service, config_for, identify, on_redis, open_service

COMMAND = Path(sys.executable).with_name("prospect-sync")
WINDOW_S = 24 * 3600.0
#: Matched by a lookup field: the identity map keeps (org_id value → prospect id).
PERSON = {"email": "moved@example.com", "org_id": "org-moved"}
IN_DOUBT = IdempotencyKey("/prospectsync.v1.ProspectSync/Identify", "default", "in-doubt-1")


#: A configured ``server.suppression_key`` (hex), and another one.
KEY = "c3" * 32
OTHER_KEY = "f6" * 32
FORGOTTEN = "forgotten.mover@example.com"
#: The scope the tests' own suppressions are recorded in (server.forget's is the account).
SCOPE = "0Uv000000000001CAA"


def write_config(
    tmp_path: Path,
    fake: FakePardot,
    prefix: str | None,
    state_dir: Path,
    *,
    suppression_key: str = "",
) -> Path:
    """The operator's file: still on the embedded state, with the [redis] to move to
    (none: ``prefix`` None) and ``server.suppression_key`` when given."""
    redis = f'[redis]\nurl = "{session_server().url}"\nkey_prefix = "{prefix}"\n'
    key = f'suppression_key = "{suppression_key}"\n' if suppression_key else ""
    path = tmp_path / "service.toml"
    path.write_text(
        f"""
[server]
state_dir = "{state_dir}"
{key}

{redis if prefix is not None else ""}
[connections.default]
pardot_url = "{fake.url}"
api_version = 4
business_unit_id = "{DEMO.business_unit_v4}"
auth = "oauth"
token_url = "{fake.token_url}"
grant_type = "refresh_token"
client_id = "{DEMO.client_id}"
client_secret = "{DEMO.client_secret}"
refresh_token = "{DEMO.refresh_token}"
"""
    )
    path.chmod(0o600)
    return path


def migrate(config: Path) -> subprocess.CompletedProcess[str]:
    assert COMMAND.exists(), f"{COMMAND} is missing: run `make venv`"
    argv = [str(COMMAND), "state", "migrate", "--from", "sqlite", "--to", "redis"]
    return subprocess.run(
        [*argv, "--config", str(config)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def mark_in_progress(state_dir: Path) -> None:
    """A message whose attempt began and got no answer (a process killed mid-call)."""
    records = ResponseStore(state_dir / IDEMPOTENCY_FILE, window_s=WINDOW_S)
    try:
        assert await records.begin(IN_DOUBT) is None
    finally:
        records.close()


async def test_the_embedded_state_moves_to_redis_and_a_redis_server_uses_it(
    fake: FakePardot, tmp_path: Path
) -> None:
    state_dir = tmp_path / "sqlite-state"
    embedded = await open_service(config_for(fake, state_dir))
    try:
        first = identify(PERSON, lookup_field="org_id", message_id="mv-1")
        assert (await embedded.stub.Identify(first)).outcome == pb.OUTCOME_CREATED
    finally:
        await close_service(embedded)
    await mark_in_progress(state_dir)

    prefix = fresh_prefix()
    config = write_config(tmp_path, fake, prefix, state_dir)
    done = await asyncio.to_thread(migrate, config)
    assert done.returncode == 0, done.stderr
    # The lookup value and the email, each mapped to the prospect.
    assert "identity map: 2 copied, 0 already in Redis" in done.stdout
    assert "message_id responses: 1 copied, 0 already" in done.stdout
    assert "message_id in progress: 1 copied, 0 already" in done.stdout

    again = await asyncio.to_thread(migrate, config)  # idempotent: nothing new to write
    assert again.returncode == 0, again.stderr
    assert "identity map: 0 copied, 2 already in Redis" in again.stdout
    assert "message_id responses: 0 copied, 1 already" in again.stdout
    assert "message_id in progress: 0 copied, 1 already" in again.stdout
    assert DEMO.client_secret not in done.stdout + done.stderr + again.stdout + again.stderr

    # A Redis-backed server, with an empty state_dir of its own: all it knows is in Redis.
    url = session_server().url
    replica = await open_service(on_redis(config_for(fake, tmp_path / "empty"), url, prefix))
    try:
        calls = len(fake.state.calls)
        replay = await replica.stub.Identify(first)
        assert replay.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
        assert len(fake.state.calls) == calls  # the copied record answered: no Pardot call

        change = identify({**PERSON, "first_name": "Mo"}, lookup_field="org_id", message_id="mv-2")
        changed = await replica.stub.Identify(change)
        assert changed.outcome == pb.OUTCOME_UPDATED
        assert len(changed.pardot_calls) == 1  # the copied identity map: no read first
    finally:
        await close_service(replica)
    assert [p["email"] for p in fake.state.prospects("v4")] == ["moved@example.com"]


def test_migrating_without_a_redis_table_is_a_usage_error(fake: FakePardot, tmp_path: Path) -> None:
    done = migrate(write_config(tmp_path, fake, None, tmp_path / "state"))
    assert done.returncode == 2
    assert done.stderr.startswith("prospect-sync: ") and "[redis]" in done.stderr


def redis_state(prefix: str) -> RedisState:
    return RedisState(session_server().url, key_prefix=prefix, timeout_s=5.0)


def sqlite_suppressions(state_dir: Path, key: str = "") -> SqliteSuppressions:
    """The embedded suppressions, as the service opens them (``key``: configured)."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # as the service makes it
    configured = bytes.fromhex(key) if key else None
    return SqliteSuppressions(
        state_dir / SUPPRESSIONS_FILE, state_dir / SUPPRESSION_KEY_FILE, key=configured
    )


async def record_suppression(state_dir: Path, key: str = "") -> str:
    """A person forgotten on the embedded state (under ``key`` when configured): the
    digest recorded."""
    store = sqlite_suppressions(state_dir, key)
    try:
        recorded = digest(await store.hash_key(), SCOPE, f"email:{FORGOTTEN}")
        await store.add(SCOPE, (recorded,))
        return recorded
    finally:
        store.close()


async def redis_has(prefix: str, recorded: str, key: str = "") -> bool:
    """Whether Redis's suppressions (under ``key`` when configured) hold ``recorded``."""
    redis = redis_state(prefix)
    try:
        store = redis.suppressions(bytes.fromhex(key) if key else None)
        await store.hash_key()
        return await store.any_of(SCOPE, (recorded,))
    finally:
        await redis.aclose()


async def redis_names(prefix: str) -> list[bytes]:
    redis = redis_state(prefix)
    try:
        client = redis.context.client
        return sorted([name async for name in client.scan_iter(match=f"{prefix}*")])
    finally:
        await redis.aclose()


def reason_of(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in status.details)
    return info.reason


def no_key_in(done: subprocess.CompletedProcess[str], *keys: bytes | str) -> None:
    output = done.stdout + done.stderr
    for key in keys:
        text = key.hex() if isinstance(key, bytes) else key
        assert text not in output


async def test_a_person_forgotten_on_the_embedded_state_stays_forgotten_on_redis(
    fake: FakePardot, tmp_path: Path
) -> None:
    state_dir = tmp_path / "sqlite-state"
    embedded = await open_service(config_for(fake, state_dir))
    try:
        fake.state.add_prospect(DEMO.account_v4, email=FORGOTTEN)
        request = pb.ForgetRequest(settings=pb.PardotSettings(), email=FORGOTTEN)
        assert (await embedded.stub.Forget(request)).suppression_recorded
    finally:
        await close_service(embedded)

    prefix = fresh_prefix()
    config = write_config(tmp_path, fake, prefix, state_dir)
    done = await asyncio.to_thread(migrate, config)
    assert done.returncode == 0, done.stderr
    assert "suppressions: " in done.stdout and "suppressions: 0 copied" not in done.stdout
    copied = done.stdout.split("suppressions: ")[1].split(" copied")[0]
    assert "suppression key: the generated one, now Redis's" in done.stdout

    again = await asyncio.to_thread(migrate, config)  # idempotent: nothing new to write
    assert again.returncode == 0, again.stderr
    assert f"suppressions: 0 copied, {copied} already in Redis" in again.stdout
    assert "suppression key: the generated one, already Redis's" in again.stdout
    generated = existing_file_key(state_dir / SUPPRESSION_KEY_FILE)
    assert generated is not None
    no_key_in(done, generated)
    no_key_in(again, generated)

    url = session_server().url
    replica = await open_service(on_redis(config_for(fake, tmp_path / "empty"), url, prefix))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            traits = {"email": FORGOTTEN.upper(), "org_id": "org-gone"}  # v4: a lookup field
            await replica.stub.Identify(identify(traits, lookup_field="org_id"))
    finally:
        await close_service(replica)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(caught.value) == "PERSON_FORGOTTEN"
    account = DEMO.account_v4
    assert len(fake.state.prospects(account)) == 1  # nobody re-created
    assert all(fake.state.in_recycle_bin(account, p["id"]) for p in fake.state.prospects(account))


async def test_with_a_configured_key_the_suppressions_move_and_no_key_reaches_redis(
    fake: FakePardot, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    recorded = await record_suppression(state_dir, KEY)
    prefix = fresh_prefix()
    config = write_config(tmp_path, fake, prefix, state_dir, suppression_key=KEY)

    done = await asyncio.to_thread(migrate, config)
    assert done.returncode == 0, done.stderr
    assert "suppressions: 1 copied, 0 already in Redis" in done.stdout
    assert "suppression key: server.suppression_key" in done.stdout
    assert await redis_has(prefix, recorded, KEY)
    assert f"{prefix}suppression-key".encode() not in await redis_names(prefix)
    no_key_in(done, KEY)

    again = await asyncio.to_thread(migrate, config)
    assert again.returncode == 0, again.stderr
    assert "suppressions: 0 copied, 1 already in Redis" in again.stdout


async def test_a_configured_key_the_sqlite_suppressions_were_not_recorded_under_is_refused(
    fake: FakePardot, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    await record_suppression(state_dir)  # under the generated key
    prefix = fresh_prefix()
    config = write_config(tmp_path, fake, prefix, state_dir, suppression_key=KEY)

    done = await asyncio.to_thread(migrate, config)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("prospect-sync: server.suppression_key: ")
    assert SUPPRESSIONS_FILE in done.stderr
    generated = existing_file_key(state_dir / SUPPRESSION_KEY_FILE)
    assert generated is not None
    no_key_in(done, KEY, generated)
    assert await redis_names(prefix) == []  # refused before anything was copied


async def test_a_configured_key_redis_holds_other_suppressions_under_is_refused(
    fake: FakePardot, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    await record_suppression(state_dir, KEY)
    prefix = fresh_prefix()
    redis = redis_state(prefix)
    try:
        await redis.suppressions(bytes.fromhex(OTHER_KEY)).hash_key()  # a replica's check
    finally:
        await redis.aclose()
    config = write_config(tmp_path, fake, prefix, state_dir, suppression_key=KEY)

    done = await asyncio.to_thread(migrate, config)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("prospect-sync: server.suppression_key: ")
    assert "Redis" in done.stderr
    no_key_in(done, KEY, OTHER_KEY)
    assert await redis_names(prefix) == [f"{prefix}suppression-key-check".encode()]


@pytest.mark.parametrize("redis_had", ["a generated key", "a configured key's check"])
async def test_a_generated_key_is_refused_where_redis_has_another(
    fake: FakePardot, tmp_path: Path, redis_had: str
) -> None:
    state_dir = tmp_path / "state"
    recorded = await record_suppression(state_dir)
    prefix = fresh_prefix()
    redis = redis_state(prefix)
    try:
        configured = bytes.fromhex(OTHER_KEY) if redis_had != "a generated key" else None
        theirs = await redis.suppressions(configured).hash_key()  # replicas started first
    finally:
        await redis.aclose()
    before = await redis_names(prefix)
    config = write_config(tmp_path, fake, prefix, state_dir)

    done = await asyncio.to_thread(migrate, config)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("prospect-sync: ")
    assert "cannot be merged" in done.stderr and "key_prefix" in done.stderr
    generated = existing_file_key(state_dir / SUPPRESSION_KEY_FILE)
    assert generated is not None
    no_key_in(done, generated, theirs)
    assert await redis_names(prefix) == before  # nothing written: no key, no digest
    assert not await redis_has(prefix, recorded, OTHER_KEY if configured else "")
