"""Issue 6 end to end: concurrent unary calls through the live server are coalesced into
Pardot batch calls at fakepardot over HTTP — and an idle call is not; responses say only
what a batch answer tells; calls that need Pardot's own answer are never batched; a
full queue is RESOURCE_EXHAUSTED with RetryInfo."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, close_service, config_for, identify, open_service, struct
from support.waiting import until

V3 = {"connection": "v3"}
ORG = {"lookup_field": "org_id"}


def writes(fake: FakePardot) -> list[Any]:
    return [c for c in fake.state.calls if c.path.startswith("/api/") and c.method == "POST"]


def batches(fake: FakePardot) -> list[Any]:
    return [c for c in writes(fake) if "/do/batch" in c.path]


def batch_size(call: Any) -> int:
    return len(json.loads(call.form["prospects"])["prospects"])


def queued_writes(service: Service, connection: str) -> int:
    """Writes waiting in the queue of the connection's Pardot account."""
    return service.running.connections.get(connection).account.writes.queued


def person(n: int, **traits: Any) -> dict[str, Any]:
    return {"email": f"p{n}@example.com", "first_name": f"P{n}", **traits}


@pytest.fixture
async def queue_of_two(fake: FakePardot, tmp_path: Path) -> AsyncIterator[Service]:
    config = config_for(fake, tmp_path / "state", v3={"max_queued_writes": 2})
    service = await open_service(config)
    yield service
    await close_service(service)


async def test_an_idle_identify_costs_one_single_call(service: Service, fake: FakePardot) -> None:
    reply = await service.stub.Identify(identify(person(1), **V3), timeout=10)

    assert [c.path for c in writes(fake)] == [
        "/api/prospect/version/3/do/upsert/email/p1@example.com"
    ]
    assert reply.outcome == pb.OUTCOME_CREATED and reply.prospect_id != ""
    assert [c.path.rsplit("/do/", 1)[1] for c in reply.pardot_calls] == [
        "upsert/email/p1%40example.com"
    ]


async def test_two_hundred_concurrent_identifies_cost_a_tenth_of_a_call_each(
    service: Service, fake: FakePardot
) -> None:
    await service.stub.Identify(identify(person(0), **V3), timeout=10)  # token, warm
    fake.state.calls.clear()
    # Pardot answers only once all 200 are in the service: 5 go alone (every slot),
    # 195 wait in the account's queue. Held, not timed, so a slow machine (whose
    # calls arrive over a longer spell) sees the same burst as a fast one.
    fake.state.answers_held = True

    calls = [
        asyncio.ensure_future(service.stub.Identify(identify(person(n), **V3), timeout=30))
        for n in range(1, 201)
    ]
    await until(lambda: fake.state.in_flight("v3") == 5 and queued_writes(service, "v3") == 195)
    fake.state.answers_held = False
    replies = await asyncio.gather(*calls)

    assert len(writes(fake)) <= 20  # ≤ 0.1 Pardot calls per event
    assert max(batch_size(c) for c in batches(fake)) > 10
    assert [c for c in fake.state.calls if c.err_code == 66] == []
    assert {r.outcome for r in replies} <= {pb.OUTCOME_CREATED, pb.OUTCOME_UPSERTED}
    batched = [r for r in replies if r.outcome == pb.OUTCOME_UPSERTED]
    assert len(batched) > 100
    for reply in batched:  # the batch answer carries no id: none is invented
        assert reply.prospect_id == ""
        assert reply.pardot_calls[-1].path.endswith("/do/batchUpsert")
    stored = {p["email"]: p["first_name"] for p in fake.state.prospects("v3")}
    assert stored == {f"p{n}@example.com": f"P{n}" for n in range(201)}


async def test_batched_creates_teach_the_identity_map_nothing_and_duplicate_no_one(
    service: Service, fake: FakePardot
) -> None:
    await service.stub.Identify(identify(person(0, org_id="o-0"), **ORG), timeout=10)
    fake.state.latency_s = 0.02
    people = [identify(person(n, org_id=f"o-{n}"), **ORG) for n in range(1, 61)]

    first = await asyncio.gather(*(service.stub.Identify(r, timeout=30) for r in people))
    again = await asyncio.gather(*(service.stub.Identify(r, timeout=30) for r in people))

    assert {r.outcome for r in first} == {pb.OUTCOME_CREATED}
    assert any(c.path.endswith("/do/batchCreate") for c in batches(fake))
    unknown = [r for r in first if r.prospect_id == ""]
    assert unknown, "some creates were batched"
    # The second round finds the batched ones by reading (the map learned no guessed
    # id) and updates each by its real id; those whose create answered with an id are
    # known, and their identical repeat is not sent (skip_unchanged): one prospect per
    # person, every reply an id.
    for created, repeated in zip(first, again, strict=True):
        expected = pb.OUTCOME_UPDATED if created.prospect_id == "" else pb.OUTCOME_UNCHANGED
        assert repeated.outcome == expected
    assert all(r.prospect_id for r in again)
    orgs = sorted(p["org_id"] for p in fake.state.prospects("v4"))
    assert orgs == sorted(f"o-{n}" for n in range(61))


async def test_an_identify_that_needs_the_upserts_answer_is_never_batched(
    service: Service, fake: FakePardot
) -> None:
    """EmailV3 sets settings.campaign_id on new prospects only, so it must know what
    the upsert created: with a campaign its upsert always goes alone. (The follow-up
    update by id may be batched: its id is known.)"""
    await service.stub.Identify(identify(person(0), **V3), timeout=10)
    fake.state.latency_s = 0.02

    replies = await asyncio.gather(
        *(
            service.stub.Identify(identify(person(n), campaign_id="1002", **V3), timeout=30)
            for n in range(1, 31)
        )
    )

    assert {r.outcome for r in replies} == {pb.OUTCOME_CREATED}
    assert all(r.prospect_id for r in replies)
    assert [c for c in batches(fake) if c.path.endswith("/do/batchUpsert")] == []
    campaigns = {p["email"]: p["campaign_id"] for p in fake.state.prospects("v3")}
    assert all(campaigns[f"p{n}@example.com"] == 1002 for n in range(1, 31))


async def test_a_track_that_adds_to_a_list_is_never_batched(
    service: Service, fake: FakePardot
) -> None:
    await service.stub.Identify(identify(person(0), **V3), timeout=10)
    fake.state.latency_s = 0.02
    mapping = {"Joined": pb.TrackMapping(add_to_list_ids=[501])}

    def joined(n: int) -> pb.TrackRequest:
        return pb.TrackRequest(
            event="Joined",
            context=struct({"traits": {"email": f"p{n}@example.com"}}),
            settings=pb.PardotSettings(connection="v3", track_mappings=mapping),
        )

    replies = await asyncio.gather(
        *(service.stub.Track(joined(n), timeout=30) for n in range(1, 31))
    )

    assert all(r.prospect_id for r in replies)
    assert batches(fake) == []
    emails = {p["id"]: p["email"] for p in fake.state.prospects("v3")}
    members = {emails[i] for i in fake.state.list_members("v3", 501)}
    assert members == {f"p{n}@example.com" for n in range(1, 31)}


async def test_a_full_queue_is_resource_exhausted_with_retry_info(
    queue_of_two: Service, fake: FakePardot
) -> None:
    await queue_of_two.stub.Identify(identify(person(0), **V3), timeout=10)
    fake.state.latency_s = 0.3

    results = await asyncio.gather(
        *(queue_of_two.stub.Identify(identify(person(n), **V3), timeout=30) for n in range(1, 21)),
        return_exceptions=True,
    )

    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert refused and len(refused) < 20
    for error in refused:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = rpc_status.from_call(error)
        assert status is not None
        info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
        assert any(d.Unpack(info) for d in status.details) and info.reason == "PARDOT_QUEUE_FULL"
        assert any(d.Unpack(retry) for d in status.details)
        assert retry.retry_delay.ToNanoseconds() > 0
    answered = [r for r in results if not isinstance(r, BaseException)]
    stored = {p["email"] for p in fake.state.prospects("v3")}
    assert len(stored) == 1 + len(answered)  # the refused were never sent
