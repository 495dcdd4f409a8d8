"""Issue 11 end to end: a batch call where Pardot refused some entries is a partial
success. Real Pardot answers it ``stat="fail"`` with no err_code, HTTP 200, the refused
entries under ``errors`` by index, having applied every other entry (PARDOT_API.md,
"Batch", RECORDED); fakepardot answers the same. Through the live server, over real
sockets: only the refused caller fails, with its own error; every other caller succeeds
once; nothing is resent and no v4 create is made twice (counted in the fake's call log);
a deleted prospect inside a batched update reaches its caller as the err 3 a single call
gives, and LookupFieldV4 resolves it afresh.

Every test makes its burst batch exactly, not by timing: Pardot holds its answers
(``answers_held``) while five writes fill the account's five slots, then the writes
under test wait in the account's queue until Pardot answers again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fakepardot import FakePardot
from prospectsync.v1 import prospect_sync_pb2 as pb
from support.service import Service, identify
from support.waiting import until

V3 = {"connection": "v3"}
CREATE = {"create_when_unmatched": True}
ORG = {"lookup_field": "org_id"}
#: Our own check lets it through; this Pardot refuses it, as a real one may (the fault).
REFUSED = "refused@example.com"
INVALID_EMAIL = "Invalid prospect email address"

Reply = pb.IdentifyResponse


def writes(fake: FakePardot) -> list[Any]:
    return [c for c in fake.state.calls if c.path.startswith("/api/") and c.method == "POST"]


def batch_calls(fake: FakePardot) -> list[Any]:
    return [c for c in writes(fake) if "/do/batch" in c.path]


def entries(call: Any) -> Any:
    return json.loads(call.form["prospects"])["prospects"]


def times_sent(fake: FakePardot, key: str) -> int:
    """How many prospect writes named ``key`` (an email or an id): batch entries and
    single calls together."""
    sent = 0
    for call in writes(fake):
        if "/do/batch" in call.path:
            found = entries(call)
            values = found.keys() if isinstance(found, dict) else found
            for entry in values:
                named = [entry] if isinstance(entry, str) else list(map(str, entry.values()))
                sent += key in named
        elif call.path.endswith(f"/{key}"):
            sent += 1
    return sent


def queued_writes(service: Service, connection: str) -> int:
    return service.running.connections.get(connection).account.writes.queued


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in status.details)
    return info


async def burst(
    service: Service,
    fake: FakePardot,
    *,
    connection: str,
    account: str,
    fillers: list[pb.IdentifyRequest],
    requests: list[pb.IdentifyRequest],
) -> list[Reply | BaseException]:
    """``fillers`` take the account's five slots (Pardot holds its answers); then every
    one of ``requests`` waits in the account's queue; then Pardot answers. The replies
    (or errors) to ``requests``, in order."""
    assert len(fillers) == 5
    fake.state.answers_held = True
    try:
        held = [asyncio.ensure_future(service.stub.Identify(r, timeout=30)) for r in fillers]
        await until(lambda: fake.state.in_flight(account) == 5)
        calls = [asyncio.ensure_future(service.stub.Identify(r, timeout=30)) for r in requests]
        await until(lambda: queued_writes(service, connection) == len(requests))
    finally:
        fake.state.answers_held = False
    await asyncio.gather(*held)
    return list(await asyncio.gather(*calls, return_exceptions=True))


async def warm(service: Service, request: pb.IdentifyRequest) -> None:
    """One call first: the token, so the burst's writes all reach the queue."""
    await service.stub.Identify(request, timeout=10)


def refused_alone(results: list[Reply | BaseException], index: int) -> grpc.aio.AioRpcError:
    """The one error of ``results``, at ``index``; every other result a reply."""
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert failed == [index], results
    error = results[index]
    assert isinstance(error, grpc.aio.AioRpcError)
    return error


Make = Callable[[int], pb.IdentifyRequest]


def people(make: Make, count: int, start: int = 0) -> list[pb.IdentifyRequest]:
    return [make(n) for n in range(start, start + count)]


async def test_v4_batch_create_with_one_refused_entry_fails_only_its_caller(
    service: Service, fake: FakePardot
) -> None:
    def create(n: int) -> pb.IdentifyRequest:
        return identify({"email": f"c{n}@example.com", "first_name": f"C{n}"}, **CREATE)

    await warm(service, create(99))
    fake.state.inject("refuse", err_code=4, match=REFUSED, path_contains="/do/batch")
    requests = people(create, 9)
    requests.insert(4, identify({"email": REFUSED}, **CREATE))

    results = await burst(
        service, fake, connection="default", account="v4",
        fillers=people(create, 5, start=10), requests=requests,
    )  # fmt: skip

    error = refused_alone(results, 4)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error)
    assert (info.reason, info.metadata["err_code"]) == ("INVALID_EMAIL", "4")
    assert INVALID_EMAIL in (error.details() or "")
    creates = [c for c in batch_calls(fake) if c.path.endswith("/do/batchCreate")]
    assert len(creates) == 1 and len(entries(creates[0])) == 10
    assert (creates[0].http_status, creates[0].err_code) == (200, 0)  # stat=fail, no err_code
    for reply in (r for r in results if isinstance(r, Reply)):
        assert reply.outcome == pb.OUTCOME_CREATED
        assert reply.pardot_calls[-1].path.endswith("/do/batchCreate")
    # Each person was sent once and exists once: no resend, no twin.
    for n in range(9):
        assert times_sent(fake, f"c{n}@example.com") == 1
    assert times_sent(fake, REFUSED) == 1
    stored = sorted(p["email"] for p in fake.state.prospects("v4"))
    assert stored == sorted(f"c{n}@example.com" for n in [*range(9), *range(10, 15), 99])


@pytest.mark.parametrize("error_keys", ["index", "identifier"])
async def test_v3_batch_upsert_with_one_refused_entry_fails_only_its_caller(
    service: Service, fake: FakePardot, error_keys: str
) -> None:
    """Both sides of the UNCONFIRMED v3 question: Pardot names the refused entry by its
    index, or by the email it was sent under. The client reads either."""

    def upsert(n: int) -> pb.IdentifyRequest:
        return identify({"email": f"u{n}@example.com", "company": f"Co{n}"}, **V3)

    await warm(service, upsert(99))
    fake.state.v3_batch_error_keys = error_keys
    fake.state.inject("refuse", err_code=4, match=REFUSED, path_contains="/do/batch")
    requests = people(upsert, 7)
    requests.insert(0, identify({"email": REFUSED}, **V3))

    results = await burst(
        service, fake, connection="v3", account="v3",
        fillers=people(upsert, 5, start=10), requests=requests,
    )  # fmt: skip

    error = refused_alone(results, 0)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error).reason == "INVALID_EMAIL"
    (batch,) = batch_calls(fake)
    assert batch.path.endswith("/do/batchUpsert") and len(entries(batch)) == 8
    for reply in (r for r in results if isinstance(r, Reply)):
        assert reply.outcome == pb.OUTCOME_UPSERTED
    for n in range(7):
        assert times_sent(fake, f"u{n}@example.com") == 1
    assert times_sent(fake, REFUSED) == 1
    companies = {p["email"]: p["company"] for p in fake.state.prospects("v3")}
    assert REFUSED not in companies
    assert all(companies[f"u{n}@example.com"] == f"Co{n}" for n in range(7))


async def test_v4_batch_upsert_by_id_fails_only_the_refused_and_the_deleted(
    service: Service, fake: FakePardot
) -> None:
    """IdFidV4: one caller's new email is refused by Pardot, another names a prospect
    deleted meanwhile (NOT_FOUND, err 3, exactly as its single call would be); the other
    updates are applied, once."""
    ids = [fake.state.add_prospect("v4", email=f"i{n}@example.com")["id"] for n in range(16)]

    def by_id(n: int, **traits: Any) -> pb.IdentifyRequest:
        return identify({"city": f"City{n}", **traits}, pardot_id=str(ids[n]))

    await warm(service, by_id(15))
    fake.state.inject("refuse", err_code=4, match=REFUSED, path_contains="/do/batch")
    fake.state.delete_prospect("v4", ids[3])
    requests = people(by_id, 8)
    requests[1] = by_id(1, email=REFUSED)

    results = await burst(
        service, fake, connection="default", account="v4",
        fillers=people(by_id, 5, start=10), requests=requests,
    )  # fmt: skip

    failed = {i: r for i, r in enumerate(results) if isinstance(r, grpc.aio.AioRpcError)}
    assert set(failed) == {1, 3}, results
    assert failed[1].code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(failed[1]).reason == "INVALID_EMAIL"
    assert failed[3].code() == grpc.StatusCode.NOT_FOUND
    assert error_info(failed[3]).metadata["err_code"] == "3"
    (batch,) = batch_calls(fake)
    assert batch.path.endswith("/do/batchUpsert") and len(entries(batch)) == 8
    for n in (0, 2, 4, 5, 6, 7):
        reply = results[n]
        assert isinstance(reply, Reply) and reply.outcome == pb.OUTCOME_UPDATED
        assert reply.prospect_id == str(ids[n])
        assert times_sent(fake, str(ids[n])) == 1
        assert fake.state.get_prospect("v4", ids[n])["city"] == f"City{n}"
    assert times_sent(fake, str(ids[1])) == 1 and times_sent(fake, str(ids[3])) == 1
    assert fake.state.get_prospect("v4", ids[1])["email"] == "i1@example.com"
    assert len(fake.state.prospects("v4")) == 15  # no prospect was created


async def test_a_deleted_prospect_in_a_batched_update_is_resolved_afresh(
    service: Service, fake: FakePardot
) -> None:
    """Warm LookupFieldV4: every person's id comes from the identity map, so the burst
    is a batchUpdate. One prospect was deleted behind the service's back: Pardot
    refuses only that entry ("Invalid prospect ID"), and its caller — exactly as after a
    single update's err 3 — drops the stale entry, finds nobody by email and creates the
    person again. Everyone else is updated once."""

    def person(n: int, city: str = "") -> pb.IdentifyRequest:
        traits = {"email": f"w{n}@example.com", "org_id": f"o-{n}"}
        return identify({**traits, "city": city} if city else traits, **ORG)

    fake.state.latency_s = 0.02  # one at a time, slowly: writes are not "crowded" yet
    first = [await service.stub.Identify(person(n), timeout=10) for n in range(16)]
    fake.state.latency_s = 0.0
    assert {r.outcome for r in first} == {pb.OUTCOME_CREATED}
    gone = int(first[2].prospect_id)
    fake.state.delete_prospect("v4", gone)
    fake.state.calls.clear()

    results = await burst(
        service, fake, connection="default", account="v4",
        fillers=[person(n, "Filler") for n in range(10, 15)],
        requests=[person(n, f"City{n}") for n in range(6)],
    )  # fmt: skip

    assert all(isinstance(r, Reply) for r in results), results
    replies: list[Reply] = [r for r in results if isinstance(r, Reply)]
    updates = [c for c in batch_calls(fake) if c.path.endswith("/do/batchUpdate")]
    assert len(updates) == 1 and len(entries(updates[0])) == 6
    for n, reply in enumerate(replies):
        if n == 2:
            continue
        assert reply.outcome == pb.OUTCOME_UPDATED and reply.prospect_id == first[n].prospect_id
        assert times_sent(fake, first[n].prospect_id) == 1
    again = replies[2]
    assert again.outcome == pb.OUTCOME_CREATED
    assert again.prospect_id not in ("", str(gone))
    assert any("is gone from Pardot" in w for w in again.warnings)
    paths = [c.path.split("/do/", 1)[1] for c in again.pardot_calls]
    assert paths[0] == "batchUpdate" and paths[1] == "read/email/w2%40example.com"
    cities = {p["org_id"]: (p["city"], p["id"]) for p in fake.state.prospects("v4")}
    assert cities["o-2"] == ("City2", int(again.prospect_id))
    assert [p["org_id"] for p in fake.state.prospects("v4")].count("o-2") == 1
