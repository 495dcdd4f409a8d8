"""Issue 4, idempotency end to end: a message_id replayed through the live server costs
no Pardot call — also under concurrency, across a restart, and until the window ends."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import grpc
import pytest

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, close_service, config_for, identify, open_service, struct
from support.waiting import until

ORG = {"lookup_field": "org_id"}


def prospect_calls(fake: FakePardot) -> list[str]:
    return [c.path for c in fake.state.calls if c.path.startswith("/api/prospect/")]


def writes(fake: FakePardot) -> list[str]:
    return [p for p in prospect_calls(fake) if "/do/read/" not in p]


async def test_a_replay_returns_the_first_result_without_calling_pardot(
    service: Service, fake: FakePardot
) -> None:
    request = identify({"email": "ann@example.com", "org_id": "o-1"}, message_id="m-1", **ORG)
    first = await service.stub.Identify(request, timeout=10)
    assert first.outcome == pb.OUTCOME_CREATED
    sent = list(fake.state.calls)

    replay = await service.stub.Identify(request, timeout=10)
    assert replay.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert (replay.prospect_id, replay.strategy) == (first.prospect_id, "LookupFieldV4")
    assert list(replay.pardot_calls) == []
    assert fake.state.calls == sent  # nothing reached Pardot
    assert len(fake.state.prospects("v4")) == 1


async def test_ten_concurrent_duplicates_make_one_pardot_write(
    service: Service, fake: FakePardot
) -> None:
    fake.state.latency_s = 0.05  # every call is still in flight when the others arrive
    request = identify({"email": "bo@example.com"}, message_id="m-10", create_when_unmatched=True)
    replies = await asyncio.gather(*(service.stub.Identify(request, timeout=10) for _ in range(10)))
    assert len(writes(fake)) == 1
    assert len(fake.state.prospects("v4")) == 1  # CreateV4 would make one per call
    outcomes = [r.outcome for r in replies]
    assert outcomes.count(pb.OUTCOME_CREATED) == 1
    assert outcomes.count(pb.OUTCOME_DUPLICATE_MESSAGE) == 9
    assert {r.prospect_id for r in replies} == {str(fake.state.prospects("v4")[0]["id"])}


async def test_a_replay_after_a_restart_is_still_a_duplicate(
    fake: FakePardot, tmp_path: Path
) -> None:
    config = config_for(fake, tmp_path / "state")
    request = identify({"email": "cy@example.com"}, connection="v3", message_id="m-r")
    first_run = await open_service(config)
    try:
        first = await first_run.stub.Identify(request, timeout=10)
    finally:
        await close_service(first_run)
    sent = len(fake.state.calls)

    second_run = await open_service(config)
    try:
        replay = await second_run.stub.Identify(request, timeout=10)
    finally:
        await close_service(second_run)
    assert replay.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert replay.prospect_id == first.prospect_id
    assert len(fake.state.calls) == sent


async def test_after_the_window_the_message_is_sent_again(fake: FakePardot, tmp_path: Path) -> None:
    config = config_for(fake, tmp_path / "state")
    window = 0.05
    config = dataclasses.replace(
        config, server=dataclasses.replace(config.server, idempotency_window_s=window)
    )
    service = await open_service(config)
    try:
        # skip_unchanged off: the repeat's write is sent, so the fake shows it was applied.
        request = identify(
            {"email": "di@example.com"}, connection="v3", message_id="m-w", skip_unchanged=False
        )
        first = await service.stub.Identify(request, timeout=10)
        await asyncio.sleep(window * 2)
        later = await service.stub.Identify(request, timeout=10)
    finally:
        await close_service(service)
    assert first.outcome == pb.OUTCOME_CREATED
    assert later.outcome == pb.OUTCOME_UPDATED  # applied again: the record had expired
    assert len(writes(fake)) == 2


async def test_a_failed_first_call_is_not_remembered(service: Service, fake: FakePardot) -> None:
    fake.state.inject("err", err_code=46, path_contains="/do/upsert/")  # not retryable
    request = identify({"email": "ed@example.com"}, connection="v3", message_id="m-f")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.Identify(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    second = await service.stub.Identify(request, timeout=10)
    assert second.outcome == pb.OUTCOME_CREATED
    assert [p["email"] for p in fake.state.prospects("v3")] == ["ed@example.com"]


async def test_the_same_message_id_on_another_connection_is_another_delivery(
    service: Service, fake: FakePardot
) -> None:
    traits = {"email": "fa@example.com"}
    on_v3 = await service.stub.Identify(
        identify(traits, connection="v3", message_id="m-c"), timeout=10
    )
    on_legacy = await service.stub.Identify(
        identify(traits, connection="legacy", message_id="m-c"), timeout=10
    )
    assert on_v3.outcome == pb.OUTCOME_CREATED
    assert on_legacy.outcome != pb.OUTCOME_DUPLICATE_MESSAGE
    assert len(writes(fake)) == 2


async def test_track_is_idempotent_too(service: Service, fake: FakePardot) -> None:
    request = pb.TrackRequest(
        message_id="m-t",
        event="Signed Up",
        properties=struct({"plan": "pro"}),
        context=struct({"traits": {"email": "gu@example.com"}}),
        settings=pb.PardotSettings(
            connection="v3",
            track_mappings={"Signed Up": pb.TrackMapping(fields={"plan": "plan"})},
        ),
    )
    first = await service.stub.Track(request, timeout=10)
    assert first.outcome in (pb.OUTCOME_CREATED, pb.OUTCOME_UPDATED) and first.pardot_calls
    sent = list(fake.state.calls)
    replay = await service.stub.Track(request, timeout=10)
    assert replay.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert (replay.prospect_id, list(replay.actions)) == (first.prospect_id, list(first.actions))
    assert list(replay.pardot_calls) == [] and fake.state.calls == sent


async def test_a_replay_of_an_unanswered_create_reads_what_it_created_never_creates_again(
    fake: FakePardot, tmp_path: Path
) -> None:
    """Issue 12, item 2: CreateV4 always creates, so its replay after an attempt that got
    no answer must find the prospect that attempt created (see strategies/create_v4.py)."""
    service = await open_service(config_for(fake, tmp_path / "state", default={"timeout_s": 0.3}))
    try:
        fake.state.inject("delay", times=1, delay_s=1.0, path_contains="/do/create/")
        request = identify(
            {"email": "once@example.com"}, message_id="m-once", create_when_unmatched=True
        )
        with pytest.raises(grpc.aio.AioRpcError) as unanswered:
            await service.stub.Identify(request, timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as still_on_its_way:
            await service.stub.Identify(request, timeout=10)
        assert fake.state.prospects("v4") == []  # the replay did read: nothing yet
        await until(lambda: len(fake.state.prospects("v4")) == 1)
        replay = await service.stub.Identify(request, timeout=10)
        again = await service.stub.Identify(request, timeout=10)
    finally:
        await close_service(service)
    assert unanswered.value.code() == grpc.StatusCode.UNAVAILABLE
    assert still_on_its_way.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "may still land" in (still_on_its_way.value.details() or "")
    (prospect,) = fake.state.prospects("v4")
    assert (replay.outcome, replay.prospect_id) == (pb.OUTCOME_CREATED, str(prospect["id"]))
    assert again.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert [c for c in writes(fake) if "/do/create/" in c] == [
        "/api/prospect/version/4/do/create/email/once@example.com"
    ]
