"""Issue 12, item 3, end to end: the real ``prospect-sync serve`` process with its
``state_dir`` on a small tmpfs that the test fills and frees (tests/support/small_disk.py;
skipped, saying why, where mounting is not permitted), against fakepardot over HTTP.

While the state cannot be written the service must refuse before writing to Pardot
(UNAVAILABLE, STATE_UNAVAILABLE, RetryInfo; no Pardot call, no prospect), say
NOT_SERVING on both health names, give a caller whose Pardot write already happened its
result rather than INTERNAL, and come back to SERVING by itself once space is freed —
after which replaying every message creates no second prospect.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from bench.processes import Child, free_port, wait_serving, write_server_config
from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.app import SERVICE_NAME
from support.service import identify
from support.small_disk import SmallDisk, small_disk

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING
ORG = {"lookup_field": "org_id"}
#: Each call's deadline: generous, a failure here is an answer, never a timeout.
CALL_TIMEOUT_S = 20.0
#: The service probes a failed state every 2 s: this bounds the wait for SERVING.
RECOVERY_WITHIN_S = 30.0


@dataclass
class Server:
    child: Child
    stub: pb_grpc.ProspectSyncStub
    health: health_pb2_grpc.HealthStub

    async def statuses(self) -> set[int]:
        """The health status for the whole server ("") and for the service."""
        answers = [
            await self.health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5.0)
            for name in ("", SERVICE_NAME)
        ]
        return {answer.status for answer in answers}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    # Room for each SQLite WAL to grow to its 1,000-page checkpoint (about 4 MB) once
    # the disk is freed: a few MB fill up again within one replay.
    with small_disk(tmp_path / "state-disk", size="48m") as mounted:
        yield mounted


@pytest.fixture
async def server(fake: FakePardot, disk: SmallDisk, tmp_path: Path) -> AsyncIterator[Server]:
    """``prospect-sync serve`` with its state on ``disk``, stopped before the disk is
    unmounted (the fixtures unwind in that order)."""
    config = tmp_path / "server.toml"
    write_server_config(config, fake.url, disk.path / "state")
    target = f"127.0.0.1:{free_port()}"
    child = await asyncio.to_thread(_spawn, config, target, tmp_path / "server.log")
    try:
        await asyncio.to_thread(wait_serving, child, target)
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.ProspectSyncStub(channel)
            yield Server(child, stub, health_pb2_grpc.HealthStub(channel))
    finally:
        await asyncio.to_thread(child.stop)


def _spawn(config: Path, target: str, log: Path) -> Child:
    command = Path(sys.executable).parent / "prospect-sync"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [str(command), "serve", "--config", str(config), "--listen", target],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return Child("server", process, log)


def create(n: int, tag: str) -> pb.IdentifyRequest:
    """CreateV4 (the one strategy whose replay would create again), with a message_id."""
    return identify(
        {"email": f"{tag}-{n}@example.com"}, create_when_unmatched=True, message_id=f"{tag}-{n}"
    )


def lookup(n: int, tag: str, *, message_id: bool = True) -> pb.IdentifyRequest:
    traits = {"email": f"{tag}-{n}@example.com", "org_id": f"{tag}-{n}"}
    return identify(traits, message_id=f"{tag}-{n}" if message_id else "", **ORG)


def email_of(request: pb.IdentifyRequest) -> str:
    return str(request.traits["email"])


def reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None, f"no rich status: {error.code()} {error.details()}"
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details), "no ErrorInfo"
    return info.reason


async def send(server: Server, request: pb.IdentifyRequest) -> pb.IdentifyResponse | str:
    """The response, or the failure's "CODE REASON"."""
    try:
        response: pb.IdentifyResponse = await server.stub.Identify(request, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        return f"{error.code().name} {reason(error)}"
    return response


async def send_all(server: Server, requests: list[pb.IdentifyRequest]) -> list[Any]:
    return await asyncio.gather(*(send(server, request) for request in requests))


def prospects_by_email(fake: FakePardot) -> dict[str, int]:
    counts: dict[str, int] = {}
    for prospect in fake.state.prospects(DEMO.account_v4):
        email = str(prospect["email"]).lower()
        counts[email] = counts.get(email, 0) + 1
    return counts


REFUSED = "UNAVAILABLE STATE_UNAVAILABLE"


async def test_a_full_state_disk_refuses_before_any_pardot_write_and_recovers(
    fake: FakePardot, server: Server, disk: SmallDisk
) -> None:
    first = lookup(0, "first", message_id=False)
    warm = [create(n, "warm") for n in range(3)]
    answers = await send_all(server, [*warm, first])
    assert all(isinstance(answer, pb.IdentifyResponse) for answer in answers), answers
    assert await server.statuses() == {SERVING}

    disk.fill()
    # The first write to fail comes after a Pardot write (an update of a person the
    # identity map knows, which it then tries to learn again): that caller gets its result.
    first.traits["first_name"] = "Fay"
    answer = await send(server, first)
    assert isinstance(answer, pb.IdentifyResponse), f"{answer}\n{server.child.tail(5)}"
    assert answer.outcome == pb.OUTCOME_UPDATED
    await health_becomes(server, NOT_SERVING)

    # From then on every call is refused before it costs a Pardot call.
    refused = [
        *(create(n, "create") for n in range(20)),
        *(lookup(n, "lookup") for n in range(10)),
        *(lookup(n, "plain", message_id=False) for n in range(10)),
    ]
    calls_before = len(fake.state.calls)
    answers = await send_all(server, refused)
    assert answers == [REFUSED] * len(refused)
    assert len(fake.state.calls) == calls_before
    have = prospects_by_email(fake)
    assert [email_of(r) for r in refused if email_of(r) in have] == []
    assert await server.statuses() == {NOT_SERVING}

    disk.free()
    await health_becomes(server, SERVING)

    # Every message again: applied once, never a second prospect.
    replayed = await send_all(server, [*warm, first, *refused])
    assert [a for a in replayed if not isinstance(a, pb.IdentifyResponse)] == [], server.child.tail(
        5
    )
    again = await send_all(server, [*warm, *refused[:30]])  # those with a message_id
    assert {a.outcome for a in again} == {pb.OUTCOME_DUPLICATE_MESSAGE}
    have = prospects_by_email(fake)
    every = [email_of(r) for r in [*warm, first, *refused]]
    assert {email: have.get(email) for email in every} == dict.fromkeys(every, 1)


async def test_a_burst_into_a_full_disk_gets_no_internal_error_and_no_twin(
    fake: FakePardot, server: Server, disk: SmallDisk
) -> None:
    """The attack as it was run: calls already in flight when the disk fills."""
    assert isinstance(await send(server, create(0, "warm")), pb.IdentifyResponse)
    disk.fill()
    burst = [
        *(create(n, "create") for n in range(40)),
        *(lookup(n, "lookup") for n in range(20)),
        *(lookup(n, "plain", message_id=False) for n in range(20)),
    ]
    answers = await send_all(server, burst)
    failures = {a for a in answers if not isinstance(a, pb.IdentifyResponse)}
    assert failures <= {REFUSED}, f"{failures}\n{server.child.tail(5)}"
    await health_becomes(server, NOT_SERVING)
    have = prospects_by_email(fake)
    refused = [email_of(r) for r, a in zip(burst, answers, strict=True) if a == REFUSED]
    assert [email for email in refused if email in have] == []

    disk.free()
    await health_becomes(server, SERVING)
    replayed = await send_all(server, burst)
    assert [a for a in replayed if not isinstance(a, pb.IdentifyResponse)] == []
    have = prospects_by_email(fake)
    every = [email_of(r) for r in burst]
    assert {email: have.get(email) for email in every} == dict.fromkeys(every, 1)


async def health_becomes(server: Server, status: int) -> None:
    """Bounded: health's Watch tells each change, so nothing here polls (the service
    probes a failed state by itself, every few seconds)."""
    async with asyncio.timeout(RECOVERY_WITHIN_S):
        for name in ("", SERVICE_NAME):
            watch = server.health.Watch(health_pb2.HealthCheckRequest(service=name))
            async for answer in watch:
                if answer.status == status:
                    watch.cancel()
                    break
