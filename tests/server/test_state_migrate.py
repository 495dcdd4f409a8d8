"""``prospect-sync state migrate --from sqlite --to redis``, end to end: an embedded
server leaves its SQLite state under state_dir, the real command copies it into the
session's real redis-server (and, run again, changes nothing), and a Redis-backed
server then answers a replay from the copied record and finds a person in the copied
identity map. fakepardot over HTTP throughout.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from clients.state.local import IDEMPOTENCY_FILE
from clients.state.protocols import IdempotencyKey
from clients.state.responses import ResponseStore
from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.redis_server import fresh_prefix, session_server
from support.service import close_service, config_for, identify, on_redis, open_service

COMMAND = Path(sys.executable).with_name("prospect-sync")
WINDOW_S = 24 * 3600.0
#: Matched by a lookup field: the identity map keeps (org_id value → prospect id).
PERSON = {"email": "moved@example.com", "org_id": "org-moved"}
IN_DOUBT = IdempotencyKey("/prospectsync.v1.ProspectSync/Identify", "default", "in-doubt-1")


def write_config(tmp_path: Path, fake: FakePardot, prefix: str | None, state_dir: Path) -> Path:
    """The operator's file: still on the embedded state, with the [redis] to move to
    (none: ``prefix`` None)."""
    redis = f'[redis]\nurl = "{session_server().url}"\nkey_prefix = "{prefix}"\n'
    path = tmp_path / "service.toml"
    path.write_text(
        f"""
[server]
state_dir = "{state_dir}"

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
