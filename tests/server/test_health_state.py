"""While the state cannot be written: which calls are refused, which are still served,
and what health says — the servicer's side of issue 12, item 3.

The server runs in this process on 127.0.0.1:0 with its ``state_dir`` on a small tmpfs
the test fills and frees (tests/support/small_disk.py; skipped where mounting is not
permitted), against fakepardot over HTTP. tests/e2e/test_state_full.py runs the same
outage against the real ``prospect-sync serve`` process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from server.app import SERVICE_NAME
from support.service import Service, close_service, config_for, identify, open_service
from support.small_disk import SmallDisk, small_disk

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING
ORG = {"lookup_field": "org_id"}
SIGNED_UP = pb.TrackMapping(fields={"plan": "plan"})


#: A person the service already knows (the identity map holds their lookup value).
KNOWN = {"email": "found@example.com", "org_id": "o-found"}


@pytest.fixture
async def outage(fake: FakePardot, tmp_path: Path) -> AsyncIterator[tuple[Service, SmallDisk]]:
    """A service whose state_dir is on a disk that is then filled. One call has found it:
    an update of a known person, whose identity-map write failed after its Pardot write
    (so that call got its result)."""
    # Room for each SQLite WAL to grow to its 1,000-page checkpoint (about 4 MB) once
    # the disk is freed: a few MB fill up again within one replay.
    with small_disk(tmp_path / "disk", size="48m") as disk:
        service = await open_service(config_for(fake, disk.path / "state"))
        try:
            answered = await service.stub.Identify(
                identify(
                    {"email": "before@example.com"}, create_when_unmatched=True, message_id="m-0"
                )
            )
            assert answered.outcome == pb.OUTCOME_CREATED
            known = await service.stub.Identify(identify(KNOWN, **ORG))
            assert known.outcome == pb.OUTCOME_CREATED
            disk.fill()
            found = await service.stub.Identify(identify({**KNOWN, "first_name": "Fay"}, **ORG))
            assert found.outcome == pb.OUTCOME_UPDATED  # its write happened: its result
            yield service, disk
        finally:
            await close_service(service)


async def health_of(service: Service) -> set[int]:
    stub = health_pb2_grpc.HealthStub(service.channel)
    return {
        (await stub.Check(health_pb2.HealthCheckRequest(service=name))).status
        for name in ("", SERVICE_NAME)
    }


def unpacked(status: status_pb2.Status) -> tuple[str, float | None]:
    """ErrorInfo's reason and RetryInfo's delay in seconds."""
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    delay = None
    for detail in status.details:
        if detail.Unpack(retry):
            delay = retry.retry_delay.ToNanoseconds() / 1e9
        detail.Unpack(info)
    return info.reason, delay


async def refusal(call: Awaitable[object]) -> tuple[grpc.StatusCode, str, float | None]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    status = rpc_status.from_call(caught.value)
    assert status is not None
    return (caught.value.code(), *unpacked(status))


async def test_calls_that_would_write_are_refused_before_any_pardot_call(
    fake: FakePardot, outage: tuple[Service, SmallDisk]
) -> None:
    service, _ = outage
    assert await health_of(service) == {NOT_SERVING}
    calls = len(fake.state.calls)

    by_message = identify({"email": "a@example.com"}, create_when_unmatched=True, message_id="m-1")
    assert await refusal(service.stub.Identify(by_message)) == (
        grpc.StatusCode.UNAVAILABLE,
        "STATE_UNAVAILABLE",
        2.0,
    )
    lookup = identify({"email": "b@example.com", "org_id": "o-b"}, **ORG)
    code, reason, _ = await refusal(service.stub.Identify(lookup))
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "STATE_UNAVAILABLE")

    traits = struct_pb2.Struct()
    traits.update({"traits": {"email": "c@example.com", "org_id": "o-c"}})
    properties = struct_pb2.Struct()
    properties.update({"plan": "pro"})
    track = pb.TrackRequest(
        event="Signed Up",
        context=traits,
        properties=properties,
        settings=pb.PardotSettings(track_mappings={"Signed Up": SIGNED_UP}, **ORG),
    )
    code, reason, _ = await refusal(service.stub.Track(track))
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "STATE_UNAVAILABLE")

    batch = pb.BatchSyncRequest(
        items=[pb.BatchSyncItem(identify=by_message), pb.BatchSyncItem(identify=lookup)]
    )
    answered = await service.stub.BatchSync(batch)
    assert [unpacked(result.error)[0] for result in answered.results] == ["STATE_UNAVAILABLE"] * 2

    assert len(fake.state.calls) == calls  # not one Pardot call, not even a token
    assert [p["email"] for p in fake.state.prospects("v4")] == [
        "before@example.com",
        "found@example.com",
    ]


async def test_calls_that_write_no_state_are_still_served(
    fake: FakePardot, outage: tuple[Service, SmallDisk]
) -> None:
    service, _ = outage
    replay = identify({"email": "before@example.com"}, create_when_unmatched=True, message_id="m-0")
    replayed = await service.stub.Identify(replay)  # answered from the records: a read
    assert replayed.outcome == pb.OUTCOME_DUPLICATE_MESSAGE

    dry = identify({"email": "d@example.com", "org_id": "o-d"}, dry_run=True, **ORG)
    planned = await service.stub.Identify(dry)
    assert planned.outcome == pb.OUTCOME_PLANNED

    snippet = await service.stub.GetTrackingSnippet(
        pb.GetTrackingSnippetRequest(
            page_url="https://www.example.com/",
            settings=pb.PardotSettings(account_id="12345", campaign_id="1001"),
        )
    )
    assert snippet.html

    unknown = identify({"email": "e@example.com"}, connection="nowhere")
    code, reason, _ = await refusal(service.stub.Identify(unknown))  # a mistake stays one
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "UNKNOWN_CONNECTION")
    assert {p["email"] for p in fake.state.prospects("v4")} == {
        "before@example.com",
        "found@example.com",
    }


async def test_health_and_calls_come_back_once_space_is_freed(
    fake: FakePardot, outage: tuple[Service, SmallDisk]
) -> None:
    service, disk = outage
    assert await health_of(service) == {NOT_SERVING}
    disk.free()
    stub = health_pb2_grpc.HealthStub(service.channel)
    async with asyncio.timeout(30.0):  # the probe runs every 2 s
        async for answer in stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME)):
            if answer.status == SERVING:
                break
    assert await health_of(service) == {SERVING}
    again = identify({"email": "a@example.com"}, create_when_unmatched=True, message_id="m-1")
    assert (await service.stub.Identify(again)).outcome == pb.OUTCOME_CREATED
    assert (await service.stub.Identify(again)).outcome == pb.OUTCOME_DUPLICATE_MESSAGE
