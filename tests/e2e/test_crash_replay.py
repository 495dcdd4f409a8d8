"""Issue 12, item 2: no twin after a crash, despite message_ids.

The REAL server process (``prospect-sync serve``, a file-based state_dir) takes a load
of Identify calls with message_ids for every strategy against fakepardot over HTTP,
whose creates take seconds; it is killed with SIGKILL while creates are in flight,
restarted on the same state_dir, and every message that did not get OK is replayed
(UNAVAILABLE retried) until each does. The creates the dead process sent still land
in the fake, some while the replays run — so a replay that created blindly, or read
too early and then created, would leave a twin. Afterwards every message has exactly
one prospect holding what it sent: no twin, nothing lost. A few trials kill at
different moments; none of it is timed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from bench.processes import free_port, wait_serving
from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from support.service import identify
from support.waiting import until

TRIALS = 3
#: Messages per strategy and trial.
PER_STRATEGY = 4
#: Every call's time at the fake; a create (single or batch) takes this much longer,
#: so the dead process's creates are still in flight while the replays read.
LATENCY_S = 0.1
CREATE_DELAY_S = 2.0
#: After the first create of a trial is answered, the kill comes this much later
#: (trial by trial): a moment with creates in flight, each trial another one.
KILL_AFTER_S = (0.2, 0.9, 1.6)
#: The calls' deadline. A create's hold lasts its call's deadline (it may wait for a
#: slot, then be sent) plus unconfirmed_create_hold_s: what a replay of a create the
#: dead process had queued but never sent waits for, at most.
DEADLINE_S = 5.0
#: The bound on replaying one trial's messages until each gets OK.
REPLAY_BOUND_S = 30.0
RETRIED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@dataclass(frozen=True)
class Message:
    """One Identify, and how its prospect is found in the fake afterwards."""

    strategy: str
    request: pb.IdentifyRequest
    account: str  # the fake's account its prospect lives in
    match_field: str  # the field that names its prospect ...
    match_value: str  # ... and its value
    tag: str  # first_name it sends: what "nothing lost" checks

    @property
    def message_id(self) -> str:
        return self.request.message_id


def messages_for(trial: int, fake: FakePardot) -> list[Message]:
    made: list[Message] = []
    for i in range(PER_STRATEGY):
        tag = f"T{trial}n{i}"
        email = f"{tag.lower()}-%s@example.com"

        def add(
            strategy: str,
            traits: dict[str, Any],
            match: tuple[str, str],
            account: str = "v4",
            *,
            tag: str = tag,
            **options: Any,
        ) -> None:
            request = identify(
                {**traits, "first_name": tag},
                message_id=f"crash-{tag}-{strategy}",
                **options,
            )
            made.append(Message(strategy, request, account, *match, tag))

        add(
            "LookupFieldV4",
            {"email": email % "lf", "org_id": f"org-{tag}"},
            ("org_id", f"org-{tag}"),
            lookup_field="org_id",
        )
        add(
            "UserIdLookupV4",
            {"email": email % "uid"},
            ("external_id", f"user-{tag}"),
            lookup_field="external_id",
            use_user_id_as_lookup_value=True,
            user_id=f"user-{tag}",
        )
        add(
            "CreateV4",
            {"email": email % "cr"},
            ("email", email % "cr"),
            create_when_unmatched=True,
        )
        add("EmailV3", {"email": email % "v3"}, ("email", email % "v3"), "v3", connection="v3")
        add("EmailV5", {"email": email % "v5"}, ("email", email % "v5"), connection="v5")
        seeded = fake.state.add_prospect("v4", email=email % "id", first_name="before")
        add(
            "IdFidV4",
            {"email": email % "id"},
            ("email", email % "id"),
            pardot_id=str(seeded["id"]),
        )
    return made


def write_config(path: Path, fake: FakePardot, state_dir: Path) -> None:
    oauth = f"""pardot_url = "{fake.url}"
auth = "oauth"
token_url = "{fake.token_url}"
client_id = "{DEMO.client_id}"
client_secret = "{DEMO.client_secret}"
timeout_s = 8.0
backoff_base_s = 0.01
backoff_max_s = 0.05
unconfirmed_create_hold_s = 1.0
"""
    path.write_text(f"""[server]
listen = "127.0.0.1:0"
state_dir = "{state_dir}"
log_level = "warning"
shutdown_grace_s = 1.0

[connections.default]
api_version = 4
business_unit_id = "{DEMO.business_unit_v4}"
grant_type = "refresh_token"
refresh_token = "{DEMO.refresh_token}"
{oauth}
[connections.v3]
api_version = 3
business_unit_id = "{DEMO.business_unit_v3}"
grant_type = "password"
username = "{DEMO.username}"
password = "{DEMO.password}"
{oauth}
[connections.v5]
api_version = 5
business_unit_id = "{DEMO.business_unit_v4}"
grant_type = "client_credentials"
{oauth}""")
    path.chmod(0o600)


class ServerProcess:
    """``prospect-sync serve`` on ``config``, started and killed by its own pid."""

    def __init__(self, config: Path, log: Path) -> None:
        self.target = f"127.0.0.1:{free_port()}"
        script = Path(sys.executable).parent / "prospect-sync"
        command = [str(script)] if script.exists() else [sys.executable, "-m", "server"]
        with open(log, "ab") as sink:
            self.process = subprocess.Popen(
                [*command, "serve", "--config", str(config), "--listen", self.target],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def wait_serving(self) -> None:
        from bench.processes import Child

        wait_serving(Child("server", self.process, Path(os.devnull)), self.target)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last commit, no answer to anyone."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.kill()


async def send(
    stub: pb_grpc.ProspectSyncStub, message: Message
) -> pb.IdentifyResponse | grpc.aio.AioRpcError:
    try:
        response: pb.IdentifyResponse = await stub.Identify(message.request, timeout=DEADLINE_S)
        return response
    except grpc.aio.AioRpcError as error:
        return error


def create_calls_before(fake: FakePardot, moment: float) -> list[str]:
    """The emails of the creates (single or in a batch) that reached the fake before
    ``moment``."""
    emails: list[str] = []
    for call in list(fake.state.calls):
        if call.ts >= moment:
            continue
        if "/do/create/email/" in call.path:
            emails.append(call.path.rsplit("/", 1)[-1])
        elif call.path.endswith("/do/batchCreate"):
            batch = json.loads(call.form.get("prospects", "{}") or "{}")
            emails.extend(entry.get("email", "") for entry in batch.get("prospects", []))
    return emails


async def test_no_twin_and_nothing_lost_after_kill_9_mid_load(
    fake: FakePardot, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    fake.state.latency_s = LATENCY_S
    fake.state.inject("delay", times=10_000, delay_s=CREATE_DELAY_S, path_contains="/do/create/")
    fake.state.inject("delay", times=10_000, delay_s=CREATE_DELAY_S, path_contains="batchCreate")
    fake.state.inject(
        "delay", times=10_000, delay_s=CREATE_DELAY_S, path_contains="/do/upsert/email"
    )
    orphans = 0
    replayed = 0
    for trial, kill_after in enumerate(KILL_AFTER_S[:TRIALS]):
        state_dir = tmp_path / f"state-{trial}"
        config = tmp_path / f"server-{trial}.toml"
        write_config(config, fake, state_dir)
        messages = messages_for(trial, fake)
        log = tmp_path / f"server-{trial}.log"

        first = ServerProcess(config, log)
        servers.append(first)
        await asyncio.to_thread(first.wait_serving)
        started_at = time.time()
        ok: set[str] = set()
        async with grpc.aio.insecure_channel(first.target) as channel:
            stub = pb_grpc.ProspectSyncStub(channel)
            calls = [asyncio.ensure_future(send(stub, m)) for m in messages]
            await until(lambda: create_calls_before(fake, time.time()) != [], within_s=20)
            await asyncio.sleep(kill_after)
            first.kill()
            killed_at = time.time()
            for message, reply in zip(messages, await asyncio.gather(*calls), strict=True):
                if isinstance(reply, pb.IdentifyResponse):
                    ok.add(message.message_id)
        unanswered = [m for m in messages if m.message_id not in ok]
        answered_emails = {
            m.match_value for m in messages if m.message_id in ok and m.match_field == "email"
        }
        sent = [e for e in create_calls_before(fake, killed_at) if e not in answered_emails]
        orphans += len(sent)
        replayed += len(unanswered)
        assert started_at < killed_at

        second = ServerProcess(config, log)
        servers.append(second)
        await asyncio.to_thread(second.wait_serving)
        async with grpc.aio.insecure_channel(second.target) as channel:
            stub = pb_grpc.ProspectSyncStub(channel)
            async with asyncio.timeout(REPLAY_BOUND_S):
                while unanswered:
                    replies = await asyncio.gather(*(send(stub, m) for m in unanswered))
                    still: list[Message] = []
                    for message, reply in zip(unanswered, replies, strict=True):
                        if isinstance(reply, pb.IdentifyResponse):
                            continue
                        assert reply.code() in RETRIED, (message.strategy, reply.details())
                        still.append(message)
                    unanswered = still
                    if unanswered:
                        await asyncio.sleep(0.2)
        second.kill()
        # What the dead process sent has landed (or never will) before anything is counted.
        await until(
            lambda: fake.state.in_flight("v4") == 0 and fake.state.in_flight("v3") == 0,
            within_s=15,
        )

        prospects = {"v4": fake.state.prospects("v4"), "v3": fake.state.prospects("v3")}
        twins: list[str] = []
        lost: list[str] = []
        for message in messages:
            found = [
                p
                for p in prospects[message.account]
                if str(p.get(message.match_field)) == message.match_value
            ]
            if len(found) > 1:
                twins.append(f"{message.strategy}: {len(found)} x {message.match_value}")
            if not any(p.get("first_name") == message.tag for p in found):
                lost.append(f"{message.strategy}: {message.match_value}")
        assert twins == [], f"trial {trial}: twins {twins}"
        assert lost == [], f"trial {trial}: lost {lost}"
    # The kills came with work in flight: messages to replay, creates sent and unanswered.
    assert replayed > 0
    assert orphans > 0
