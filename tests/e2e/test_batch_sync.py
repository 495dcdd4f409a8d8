"""Issue 6, BatchSync end to end: the live server over real sockets against fakepardot —
partial success, index alignment, per-item errors and idempotency, dry runs, order per
person, and docs/batch-sync.md's grpcurl example run for real."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from fakepardot import DEMO, FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.grpcurl import grpcurl, needs_grpcurl
from support.service import (
    Service,
    close_service,
    config_for,
    identify,
    open_service,
    struct,
)
from support.waiting import until

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "batch-sync.md"

T = TypeVar("T", bound=Message)

PLAN = {"Signed Up": pb.TrackMapping(fields={"plan": "plan"})}


def track(
    email: str = "",
    *,
    plan: str = "pro",
    connection: str = "v3",
    pardot_id: str = "",
    message_id: str = "",
    **settings: Any,
) -> pb.TrackRequest:
    return pb.TrackRequest(
        message_id=message_id,
        event="Signed Up",
        properties=struct({"plan": plan}),
        context=struct({"traits": {"email": email}} if email else {}),
        pardot=pb.PardotOptions(id=pardot_id),
        settings=pb.PardotSettings(connection=connection, track_mappings=PLAN, **settings),
    )


def item(request: pb.IdentifyRequest | pb.TrackRequest) -> pb.BatchSyncItem:
    if isinstance(request, pb.IdentifyRequest):
        return pb.BatchSyncItem(identify=request)
    return pb.BatchSyncItem(track=request)


async def batch(service: Service, *requests: pb.IdentifyRequest | pb.TrackRequest) -> list[Any]:
    """The results, as the response message of each item or its google.rpc.Status."""
    reply = await service.stub.BatchSync(
        pb.BatchSyncRequest(items=[item(r) for r in requests]), timeout=30
    )
    assert len(reply.results) == len(requests)
    return [getattr(result, result.WhichOneof("result")) for result in reply.results]


def detail(status: status_pb2.Status, kind: type[T]) -> T | None:
    message = kind()
    return message if any(d.Unpack(message) for d in status.details) else None


def violations(status: status_pb2.Status) -> list[str]:
    bad = detail(status, error_details_pb2.BadRequest)
    return [] if bad is None else [v.field for v in bad.field_violations]


def writes(fake: FakePardot) -> list[str]:
    return [
        c.path for c in fake.state.calls if c.path.startswith("/api/") and "/do/read/" not in c.path
    ]


def by_email(fake: FakePardot, account: str) -> dict[str, dict[str, Any]]:
    return {p["email"]: p for p in fake.state.prospects(account)}


async def test_one_invalid_item_fails_alone_and_the_others_are_applied(
    service: Service, fake: FakePardot
) -> None:
    ann, bob, no_email, bad_track = await batch(
        service,
        identify({"email": "ann@example.com", "first_name": "Ann"}, connection="v3"),
        track("bob@example.com", plan="pro"),
        identify({"first_name": "Cy"}, connection="v3"),
        track("not-an-email"),
    )
    assert isinstance(ann, pb.IdentifyResponse) and isinstance(bob, pb.TrackResponse)
    assert (ann.outcome, ann.strategy) == (pb.OUTCOME_CREATED, "EmailV3")
    assert bob.outcome == pb.OUTCOME_CREATED and bob.actions[0].fields == ["plan"]

    assert isinstance(no_email, status_pb2.Status)
    assert no_email.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert no_email.message == "traits.email is required for API v3 (EmailV3)"
    assert violations(no_email) == ["items[2].identify.traits.email"]
    info = detail(no_email, error_details_pb2.ErrorInfo)
    assert info is not None and (info.reason, info.domain) == (
        "INVALID_ARGUMENT",
        "prospectsync.pardot",
    )
    assert isinstance(bad_track, status_pb2.Status)
    assert violations(bad_track) == ["items[3].track.context.traits.email"]

    people = by_email(fake, "v3")
    assert set(people) == {"ann@example.com", "bob@example.com"}
    assert people["bob@example.com"]["plan"] == "pro"
    assert ann.prospect_id == str(people["ann@example.com"]["id"])


async def test_results_are_in_the_order_of_the_items(service: Service, fake: FakePardot) -> None:
    """100 people, identify and track interleaved, each named by its Pardot id: the ids
    are known whatever the gateway batches, so result i must name item i's prospect,
    and that prospect must hold what item i sent."""
    fake.state.latency_s = 0.01  # the items overlap at Pardot
    ids = [
        str(fake.state.add_prospect("v4", email=f"old-{n}@example.com")["id"]) for n in range(100)
    ]
    order = list(range(100))
    order = order[::2] + order[1::2][::-1]  # ids out of step with positions
    requests: list[pb.IdentifyRequest | pb.TrackRequest] = [
        identify({"email": f"person-{n}@example.com"}, pardot_id=ids[n])
        if n % 2 == 0
        else track(plan=f"plan-{n}", connection="", pardot_id=ids[n])
        for n in order
    ]
    results = await batch(service, *requests)

    for position, (n, result) in enumerate(zip(order, results, strict=True)):
        expected = pb.IdentifyResponse if n % 2 == 0 else pb.TrackResponse
        assert isinstance(result, expected), f"results[{position}] is {type(result).__name__}"
        assert result.prospect_id == ids[n], f"results[{position}] names another prospect"
        prospect = fake.state.get_prospect("v4", int(ids[n]))
        assert prospect is not None
        if n % 2 == 0:
            assert prospect["email"] == f"person-{n}@example.com"
        else:
            assert prospect["plan"] == f"plan-{n}"


@pytest.mark.parametrize("count", [0, 1001])
async def test_no_item_or_too_many_is_invalid_argument_before_any_call(
    service: Service, fake: FakePardot, count: int
) -> None:
    request = identify({"email": "x@example.com"}, connection="v3")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.BatchSync(pb.BatchSyncRequest(items=[item(request)] * count), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"items holds {count} items: send 1 to 1,000")
    assert fake.state.calls == []


async def test_a_replayed_batch_is_all_duplicates_and_writes_nothing(
    service: Service, fake: FakePardot
) -> None:
    requests = [
        identify({"email": "ann@example.com"}, connection="v3", message_id="m-1"),
        track("bob@example.com", message_id="m-2"),
        identify({"email": "cy@example.com"}, connection="v3", message_id="m-3"),
    ]
    first = await batch(service, *requests)
    assert [r.outcome for r in first] == [pb.OUTCOME_CREATED] * 3
    sent = list(fake.state.calls)

    replay = await batch(service, *requests)
    assert [r.outcome for r in replay] == [pb.OUTCOME_DUPLICATE_MESSAGE] * 3
    assert [r.prospect_id for r in replay] == [r.prospect_id for r in first]
    assert all(list(r.pardot_calls) == [] for r in replay)
    assert replay[1].actions == first[1].actions
    # The items are keyed like their unary calls: a unary replay is a duplicate too.
    unary = await service.stub.Track(requests[1], timeout=10)
    assert unary.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert fake.state.calls == sent


async def test_an_item_already_sent_as_a_unary_call_is_a_duplicate(
    service: Service, fake: FakePardot
) -> None:
    sent_before = identify({"email": "ann@example.com"}, connection="v3", message_id="m-u")
    unary = await service.stub.Identify(sent_before, timeout=10)
    new = identify({"email": "bob@example.com"}, connection="v3", message_id="m-new")
    again, fresh = await batch(service, sent_before, new)
    assert again.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert again.prospect_id == unary.prospect_id
    assert fresh.outcome == pb.OUTCOME_CREATED
    assert len(writes(fake)) == 2


async def test_a_failed_item_is_not_remembered(service: Service, fake: FakePardot) -> None:
    requests = [
        identify({"email": "ann@example.com"}, connection="v3", message_id="m-a"),
        identify({"first_name": "No Email"}, connection="v3", message_id="m-b"),
    ]
    ok, failed = await batch(service, *requests)
    assert ok.outcome == pb.OUTCOME_CREATED and isinstance(failed, status_pb2.Status)
    requests[1].traits.update({"email": "bea@example.com"})  # fixed, same message_id
    replay_ok, now_ok = await batch(service, *requests)
    assert replay_ok.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert now_ok.outcome == pb.OUTCOME_CREATED


async def test_a_pardot_error_stays_in_its_item(service: Service, fake: FakePardot) -> None:
    known = fake.state.add_prospect("v4", email="known@example.com")
    results = await batch(
        service,
        identify({"first_name": "Kay"}, pardot_id=str(known["id"])),
        identify({"first_name": "Nobody"}, pardot_id="999999"),
        identify({"email": "ann@example.com"}, connection="v3"),
    )
    updated, missing, created = results
    assert updated.outcome == pb.OUTCOME_UPDATED and updated.prospect_id == str(known["id"])
    assert created.outcome == pb.OUTCOME_CREATED
    assert isinstance(missing, status_pb2.Status)
    assert missing.code == grpc.StatusCode.NOT_FOUND.value[0]
    info = detail(missing, error_details_pb2.ErrorInfo)
    assert info is not None and info.reason == "PROSPECT_NOT_FOUND"
    assert info.metadata["err_code"] == "3"
    assert fake.state.get_prospect("v4", int(known["id"]))["first_name"] == "Kay"


async def test_dry_run_items_plan_and_are_never_stored(service: Service, fake: FakePardot) -> None:
    planned = [
        identify({"email": "ann@example.com"}, connection="v3", message_id="m-d", dry_run=True),
        track("bob@example.com", dry_run=True),
    ]
    ann, bob = await batch(service, *planned)
    assert (ann.outcome, bob.outcome) == (pb.OUTCOME_PLANNED, pb.OUTCOME_PLANNED)
    assert ann.pardot_calls and all(call.planned for call in ann.pardot_calls)
    assert writes(fake) == [] and fake.state.prospects("v3") == []

    real = identify({"email": "ann@example.com"}, connection="v3", message_id="m-d")
    [sent] = await batch(service, real)
    assert sent.outcome == pb.OUTCOME_CREATED  # the plan did not make it a duplicate


async def test_items_about_one_person_apply_in_request_order(
    service: Service, fake: FakePardot
) -> None:
    """The first write is held back at Pardot: run at once, the later items would land
    first and the first one would win. In order, the last item sent wins."""
    fake.state.inject("delay", delay_s=0.2, path_contains="/do/upsert/email/ann")
    names = [f"Ann-{n}" for n in range(5)]
    results = await batch(
        service,
        *(identify({"email": "ann@example.com", "first_name": n}, connection="v3") for n in names),
        identify({"email": "bob@example.com"}, connection="v3"),
    )
    assert all(isinstance(r, pb.IdentifyResponse) for r in results)
    assert [r.outcome for r in results[:5]] == [pb.OUTCOME_CREATED] + [pb.OUTCOME_UPDATED] * 4
    assert by_email(fake, "v3")["ann@example.com"]["first_name"] == "Ann-4"


async def test_the_calls_deadline_bounds_every_item(service: Service, fake: FakePardot) -> None:
    """Pardot answers after the caller's deadline: each item gives up in time, in its
    own result, and the call still answers (the items that finished would keep theirs)."""
    await batch(service, identify({"email": "warm@example.com"}, connection="v3"))  # token
    fake.state.latency_s = 1.0
    requests = [identify({"email": f"p{n}@example.com"}, connection="v3") for n in range(3)]
    reply = await service.stub.BatchSync(
        pb.BatchSyncRequest(items=[item(r) for r in requests]), timeout=0.4
    )
    codes = [result.error.code for result in reply.results]
    assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED.value[0]] * 3


# --- docs/batch-sync.md ---------------------------------------------------------------


def doc_example() -> tuple[dict[str, Any], dict[str, Any]]:
    """The page's request (batch.json) and response: its first two JSON blocks."""
    request, response, *_ = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.DOTALL)
    return json.loads(request), json.loads(response)


def comparable(response: dict[str, Any]) -> dict[str, Any]:
    """The response without what differs from run to run: prospect ids and durations."""
    text = json.dumps(response, sort_keys=True)
    text = re.sub(r'"prospect_id": "\d+"', '"prospect_id": "<id>"', text)
    text = re.sub(r"prospect_id/\d+", "prospect_id/<id>", text)
    text = re.sub(r'"duration": "[0-9.]+s"', '"duration": "<duration>"', text)
    return json.loads(text)


@needs_grpcurl
async def test_the_documented_example_answers_as_documented(
    service: Service, fake: FakePardot
) -> None:
    request, documented = doc_example()
    code, out, err = await grpcurl(
        service.port, "prospectsync.v1.ProspectSync/BatchSync", data=request
    )
    assert code == 0, err
    answered = json.loads(out)
    assert comparable(answered) == comparable(documented)
    # The ids the page shows are placeholders; the real ones are the fake's.
    people = by_email(fake, "v3")
    assert answered["results"][0]["identify"]["prospect_id"] == str(people["ann@example.com"]["id"])


async def test_the_in_flight_cap_counts_batch_items(fake: FakePardot, tmp_path: Path) -> None:
    """server.max_in_flight = 10 on the live server: 3 identify calls held at Pardot
    take 3 units, so a BatchSync of 8 items is refused at once (SERVER_BUSY, RetryInfo)
    and sends nothing, while one of 7 fits; once Pardot answers, everything admitted
    succeeds. A BatchSync of 11 items can never fit: FAILED_PRECONDITION naming it."""
    config = config_for(fake, tmp_path / "state")
    config = dataclasses.replace(
        config, server=dataclasses.replace(config.server, max_in_flight=10)
    )
    service = await open_service(config)
    try:
        people = [f"held{n}@example.com" for n in range(3)]
        fake.state.answers_held = True
        held = [
            asyncio.ensure_future(
                service.stub.Identify(identify({"email": e}, connection="v3"), timeout=30)
            )
            for e in people
        ]
        await until(lambda: fake.state.in_flight(DEMO.account_v3) == 3)
        calls_before = len(fake.state.calls)

        eight = [identify({"email": f"b{n}@example.com"}, connection="v3") for n in range(8)]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await service.stub.BatchSync(
                pb.BatchSyncRequest(items=[item(r) for r in eight]), timeout=30
            )
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = rpc_status.from_call(refused.value)
        assert status is not None
        info = detail(status, error_details_pb2.ErrorInfo)
        assert info is not None and info.reason == "SERVER_BUSY"
        assert detail(status, error_details_pb2.RetryInfo) is not None
        assert len(fake.state.calls) == calls_before  # refused before any Pardot call

        seven = pb.BatchSyncRequest(items=[item(r) for r in eight[:7]])
        fits = asyncio.ensure_future(service.stub.BatchSync(seven, timeout=30))
        await until(lambda: fake.state.in_flight(DEMO.account_v3) >= 5)
        fake.state.answers_held = False
        assert [r.outcome for r in await asyncio.gather(*held)] == [pb.OUTCOME_CREATED] * 3
        reply = await fits
        assert [r.WhichOneof("result") for r in reply.results] == ["identify"] * 7

        eleven = [identify({"email": f"c{n}@example.com"}, connection="v3") for n in range(11)]
        with pytest.raises(grpc.aio.AioRpcError) as too_big:
            await service.stub.BatchSync(
                pb.BatchSyncRequest(items=[item(r) for r in eleven]), timeout=30
            )
        assert too_big.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "server.max_in_flight = 10" in too_big.value.details()
    finally:
        fake.state.answers_held = False
        await close_service(service)
