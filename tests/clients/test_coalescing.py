"""Coalescing concurrent writes into Pardot batch calls (issue 6), against fakepardot over
HTTP: an idle write goes alone; writes that find every slot taken leave together in
batch calls of Pardot's shape; each caller gets its own entry's result; whole-call
failures are retried without duplicating anyone (and creates are never resent in
doubt); a malformed-batch answer falls back to single calls; the queue is bounded;
deadlines are each caller's own. Plus the batch wire format itself (clients.wire.batching).

"Every slot taken" is made exact, not timed: the test holds all the account's slots
(``busy``) while the writes under test queue, and waits until they are queued.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote

import pytest
from grpc import StatusCode
from structlog.testing import capture_logs

from clients.coalescer import MAX_QUEUED_WRITE_BYTES, PardotQueueFull, WriteCoalescer
from clients.config import check_connection
from clients.connections import PardotConnection, PardotConnections
from clients.wire.batching import (
    BatchEntry,
    BatchKind,
    UnreadableBatchAnswer,
    batch_kind,
    encode,
    entry_errors,
    err_code_of,
)
from fakepardot import FakePardot
from fakepardot import constants as fake_constants
from strategies.core import pardot_facts as facts
from strategies.core.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    PardotError,
    PardotUnavailable,
    PardotWriteUnconfirmed,
)
from strategies.core.model import Outcome, Prospect, SyncResult
from support.waiting import until

from .conftest import ClientFactory, api_calls, gateway, oauth_config, v3_config

T = TypeVar("T")
FID = "00Q5e00000AbCdEFGH"


class Slots:
    """Every slot of an account's limiter, taken as other requests in flight would
    take them: exact, where slow requests at the fake would be a matter of timing."""

    def __init__(self, client: PardotConnection) -> None:
        self._client = client
        self._gate = asyncio.Event()
        self._holders: list[asyncio.Task[None]] = []

    async def take_all(self) -> None:
        slots = self._client.account.slots

        async def hold() -> None:
            async with slots:
                await self._gate.wait()

        self._holders = [asyncio.create_task(hold()) for _ in range(slots.limit)]
        await until(slots.locked)  # every holder is in (none waited: the slots were free)

    def release(self) -> None:
        """Give every slot back (the holders leave at the loop's next turn)."""
        self._gate.set()


async def busy(client: PardotConnection) -> Slots:
    """The account busy: writes from now on queue (until ``release()``)."""
    await gateway(client).read_by_email("warm@example.com")  # the token first
    slots = Slots(client)
    await slots.take_all()
    return slots


def start(*calls: Awaitable[T]) -> list[asyncio.Future[T]]:
    return [asyncio.ensure_future(call) for call in calls]


async def queued(client: PardotConnection, count: int) -> None:
    await until(lambda: client.account.writes.queued == count)


def batch_calls(fake: FakePardot) -> list[Any]:
    return [c for c in api_calls(fake) if "/do/batch" in c.path]


def entries_of(call: Any) -> Any:
    return json.loads(call.form["prospects"])["prospects"]


def write_calls(fake: FakePardot) -> list[Any]:
    return [c for c in api_calls(fake) if c.method == "POST"]


# --- when batching happens -----------------------------------------------------------------


async def test_an_idle_write_goes_alone_through_the_single_call_endpoint(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(v3_config(fake)))

    prospect = await pardot.upsert_by_email("idle@example.com", {"first_name": "Ida"})

    assert [c.path for c in api_calls(fake)] == [
        "/api/prospect/version/3/do/upsert/email/idle@example.com"
    ]
    assert prospect.id is not None and prospect.created is True
    assert [c.batch_size for c in pardot.calls] == [0]


async def test_writes_that_find_every_slot_taken_leave_in_one_batch_call(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    gateways = [gateway(client) for _ in range(20)]
    writes = start(
        *(
            g.upsert_by_email(f"b{n}@example.com", {"first_name": f"B{n}"})
            for n, g in enumerate(gateways)
        )
    )
    await queued(client, 20)
    slots.release()

    prospects = await asyncio.gather(*writes)

    [call] = batch_calls(fake)
    assert call.path == "/api/prospect/version/3/do/batchUpsert"
    assert entries_of(call) == {f"b{n}@example.com": {"first_name": f"B{n}"} for n in range(20)}
    assert {p["email"]: p["first_name"] for p in fake.state.prospects("v3")} == {
        f"b{n}@example.com": f"B{n}" for n in range(20)
    }
    # The answer holds no ids and does not say created or updated: nothing is invented.
    assert {(p.id, p.created) for p in prospects} == {(None, None)}
    assert [p.email for p in prospects] == [f"b{n}@example.com" for n in range(20)]
    assert {SyncResult.of(p).outcome for p in prospects} == {Outcome.UPSERTED}
    for g in gateways:
        [record] = g.calls
        assert record.path.endswith("/do/batchUpsert") and record.batch_size == 20
    assert client.account.writes.queued == 0


async def test_under_concurrency_two_hundred_writes_take_few_full_calls(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    await gateway(client).read_by_email("warm@example.com")
    fake.state.calls.clear()
    fake.state.latency_s = 0.05

    await asyncio.gather(
        *(gateway(client).upsert_by_email(f"c{n}@example.com", {}) for n in range(200))
    )

    calls = write_calls(fake)
    assert len(calls) < 30
    assert max(len(entries_of(c)) for c in batch_calls(fake)) > 10
    assert [c for c in fake.state.calls if c.err_code == 66] == []
    assert len(fake.state.prospects("v3")) == 200


async def test_a_lone_queued_write_is_sent_alone_with_pardots_answer(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    [write] = start(gateway(client).upsert_by_email("lone@example.com", {}))
    await queued(client, 1)
    slots.release()

    prospect = await write

    assert batch_calls(fake) == []
    assert write_calls(fake)[-1].path.endswith("/do/upsert/email/lone@example.com")
    assert prospect.id is not None and prospect.created is True


def crowded(client: PardotConnection, *, linger_s: float) -> WriteCoalescer:
    """``client`` with writes crowded from its second on (as if ≥ 200 a second came,
    without depending on how fast this machine makes them): a coalescer whose
    threshold no gap can miss."""
    client.account.writes = WriteCoalescer(
        client.account.slots,
        max_concurrency=client.config.max_concurrency,
        max_queued=client.config.max_queued_writes,
        crowded_gap_s=3600.0,
        linger_s=linger_s,
    )
    return client.account.writes


async def test_a_lone_caller_never_waits_even_when_its_writes_are_crowded(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    coalescer = crowded(client, linger_s=3600.0)  # a write that lingered would hang

    async with asyncio.timeout(10):  # bounds the hang a lingering write would be
        for n in range(5):
            await gateway(client).upsert_by_email(f"solo{n}@example.com", {})

    assert coalescer.crowded
    assert batch_calls(fake) == []
    assert len(write_calls(fake)) == 5


async def test_crowded_writes_ride_along_while_another_call_is_on_its_way(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    """Every slot is free; the batch forms only because the writes are crowded."""
    client = make_client(v3_config(fake))
    coalescer = crowded(client, linger_s=0.005)
    await gateway(client).read_by_email("warm@example.com")  # the token first
    fake.state.latency_s = 0.2
    [first] = start(gateway(client).upsert_by_email("first@example.com", {}))
    await until(lambda: coalescer.calls_on_their_way == 1)

    riders = start(*(gateway(client).upsert_by_email(f"r{n}@example.com", {}) for n in range(10)))
    prospects = await asyncio.gather(first, *riders)

    assert not client.account.slots.locked()
    [call] = batch_calls(fake)
    assert set(entries_of(call)) == {f"r{n}@example.com" for n in range(10)}
    assert prospects[0].id is not None  # the first went alone: its answer has the id
    assert {p.id for p in prospects[1:]} == {None}
    assert len(write_calls(fake)) == 2


async def test_a_crowded_batch_stops_lingering_once_it_is_full(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    coalescer = crowded(client, linger_s=3600.0)  # only a full batch can leave
    await gateway(client).read_by_email("warm@example.com")
    fake.state.latency_s = 0.2
    [first] = start(gateway(client).upsert_by_email("first@example.com", {}))
    await until(lambda: coalescer.calls_on_their_way == 1)

    full = facts.MAX_BATCH_PROSPECTS
    riders = start(
        *(gateway(client).upsert_by_email(f"f{n}@example.com", {}) for n in range(full - 1))
    )
    await until(lambda: coalescer.lingering == 1)
    riders += start(gateway(client).upsert_by_email("last@example.com", {}))
    async with asyncio.timeout(10):  # bounds the wait a batch that lingered on would be
        await asyncio.gather(first, *riders)

    [call] = batch_calls(fake)
    assert len(entries_of(call)) == full


async def test_a_linger_ends_only_for_a_full_batch_of_its_own_connection(
    fake: FakePardot,
) -> None:
    """Two connections to one account share the queue; a batch of one filling does not
    send the other's half-empty batch early."""
    connections = PardotConnections({"a": v3_config(fake, "a"), "b": v3_config(fake, "b")})
    a, b = connections.get("a"), connections.get("b")
    shared = crowded(a, linger_s=3600.0)
    b.account.writes = shared
    waiting: list[asyncio.Future[Prospect]] = []
    try:
        for client in (a, b):
            await gateway(client).read_by_email("warm@example.com")  # the tokens first
        fake.state.latency_s = 0.2
        [first] = start(gateway(a).upsert_by_email("first@example.com", {}))
        await until(lambda: shared.calls_on_their_way == 1)
        waiting += start(*(gateway(a).upsert_by_email(f"a{n}@example.com", {}) for n in range(3)))
        await until(lambda: shared.lingering == 1)

        full = facts.MAX_BATCH_PROSPECTS
        others = start(*(gateway(b).upsert_by_email(f"b{n}@example.com", {}) for n in range(full)))
        async with asyncio.timeout(10):
            await asyncio.gather(first, *others)

        [call] = batch_calls(fake)
        assert len(entries_of(call)) == full
        assert shared.queued == 3 and shared.lingering == 1  # a's batch still waits
    finally:
        await shared.aclose()
        await asyncio.gather(*waiting, return_exceptions=True)
        await connections.aclose()


async def test_v4_batches_are_lists_and_say_only_what_is_known(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake))
    ids = [fake.state.add_prospect("v4", email=f"u{n}@example.com")["id"] for n in range(4)]
    fake.state.add_prospect("v4", email="f@example.com", crm_lead_fid=FID)
    slots = await busy(client)
    pardot = gateway(client)
    writes = start(
        pardot.update_by_id(ids[0], {"city": "Turku"}),
        pardot.update_by_id(ids[1], {"city": "Espoo"}),
        pardot.update_by_fid(FID, {"city": "Oulu"}),
        pardot.upsert_by_id(ids[2], {"city": "Vaasa"}),
        pardot.upsert_by_id(ids[3], {"city": "Pori"}),
        pardot.create("new1@example.com", {"city": "Kemi"}),
        pardot.create("new2@example.com", {"city": "Lahti"}),
    )
    await queued(client, 7)
    slots.release()

    updated0, updated1, by_fid, upserted2, upserted3, new1, new2 = await asyncio.gather(*writes)

    paths = sorted(c.path.rsplit("/", 1)[-1] for c in batch_calls(fake))
    assert paths == ["batchCreate", "batchUpdate", "batchUpsert"]
    update = next(c for c in batch_calls(fake) if c.path.endswith("batchUpdate"))
    assert entries_of(update) == [
        {"city": "Turku", "id": str(ids[0])},
        {"city": "Espoo", "id": str(ids[1])},
        {"city": "Oulu", "fid": FID},
    ]
    create = next(c for c in batch_calls(fake) if c.path.endswith("batchCreate"))
    assert entries_of(create) == [
        {"city": "Kemi", "email": "new1@example.com"},
        {"city": "Lahti", "email": "new2@example.com"},
    ]
    # Named by id: the id is known. By fid: it is not. A create created, id unknown.
    assert (updated0.id, updated0.created) == (ids[0], False)
    assert (upserted3.id, upserted3.created) == (ids[3], False)
    assert (by_fid.id, by_fid.created) == (None, False)
    assert (new1.id, new1.created, new1.email) == (None, True, "new1@example.com")
    assert SyncResult.of(updated1).outcome is Outcome.UPDATED
    assert SyncResult.of(upserted2).outcome is Outcome.UPDATED
    assert SyncResult.of(new2).outcome is Outcome.CREATED
    cities = sorted(p["city"] for p in fake.state.prospects("v4"))
    assert cities == sorted(["Turku", "Espoo", "Oulu", "Vaasa", "Pori", "Kemi", "Lahti"])


async def test_two_writes_for_one_key_never_share_a_batch(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    writes = start(
        *(
            gateway(client).upsert_by_email(f"{case}{n}@example.com", {"first_name": case})
            for case in ("k", "K")
            for n in range(10)
        )
    )
    await queued(client, 20)
    slots.release()

    await asyncio.gather(*writes)

    batches = [list(entries_of(c)) for c in batch_calls(fake)]
    assert len(batches) == 2
    for keys in batches:
        assert len({k.lower() for k in keys}) == len(keys) == 10
    assert len(fake.state.prospects("v3")) == 10


async def test_a_dry_run_write_is_planned_at_once_never_queued(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    planning = gateway(client, dry_run=True)

    planned = await planning.upsert_by_email("dry@example.com", {"first_name": "D"})

    assert planned.planned and client.account.writes.queued == 0
    assert [c.planned for c in planning.calls] == [True]
    slots.release()
    assert write_calls(fake) == []


async def test_a_write_that_needs_its_answer_is_never_batched(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    answered = start(
        *(
            gateway(client).upsert_by_email(f"need{n}@example.com", {}, need_answer=True)
            for n in range(3)
        )
    )
    batched = start(*(gateway(client).upsert_by_email(f"any{n}@example.com", {}) for n in range(3)))
    await queued(client, 3)
    slots.release()

    assert all(p.id is not None and p.created for p in await asyncio.gather(*answered))
    assert all(p.id is None for p in await asyncio.gather(*batched))
    [batch] = batch_calls(fake)
    assert sorted(entries_of(batch)) == [f"any{n}@example.com" for n in range(3)]


async def test_a_write_too_large_to_hold_is_not_queued_but_sent_alone(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    notes = "n" * (MAX_QUEUED_WRITE_BYTES + 1)
    [large] = start(gateway(client).upsert_by_email("large@example.com", {"notes": notes}))
    await asyncio.sleep(0.01)
    assert client.account.writes.queued == 0
    slots.release()

    prospect = await large

    assert prospect.id is not None
    assert batch_calls(fake) == []


# --- each caller its own result ------------------------------------------------------------


async def test_an_entry_pardot_refuses_fails_only_its_own_caller(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake))
    ids = [fake.state.add_prospect("v4", email=f"e{n}@example.com")["id"] for n in range(3)]
    slots = await busy(client)
    creates = start(
        gateway(client).create("fine1@example.com", {}),
        gateway(client).create("not-an-email", {}),
        gateway(client).create("fine2@example.com", {}),
    )
    updates = start(
        gateway(client).update_by_id(ids[0], {"city": "A"}),
        gateway(client).update_by_id(999_999, {"city": "Ghost"}),
        gateway(client).update_by_id(ids[2], {"city": "C"}),
    )
    await queued(client, 6)
    slots.release()

    fine1, bad_email, fine2 = await asyncio.gather(*creates, return_exceptions=True)
    first, ghost, third = await asyncio.gather(*updates, return_exceptions=True)

    assert len(batch_calls(fake)) == 2
    assert isinstance(bad_email, PardotError) and bad_email.err_code == 4
    assert bad_email.code is StatusCode.INVALID_ARGUMENT and bad_email.reason == "INVALID_EMAIL"
    assert isinstance(ghost, PardotError) and ghost.err_code == 3
    assert ghost.code is StatusCode.NOT_FOUND
    assert isinstance(fine1, Prospect) and fine1.created
    assert isinstance(fine2, Prospect) and fine2.created
    assert isinstance(first, Prospect) and first.id == ids[0]
    assert isinstance(third, Prospect) and third.id == ids[2]
    emails = sorted(p["email"] for p in fake.state.prospects("v4"))
    assert emails == sorted(
        [
            "e0@example.com",
            "e1@example.com",
            "e2@example.com",
            "fine1@example.com",
            "fine2@example.com",
        ]
    )


async def test_a_batch_answered_502_is_retried_whole_without_duplicates(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    fake.state.inject("html_502", times=1, path_contains="/do/batch")
    gateways = [gateway(client) for _ in range(10)]
    writes = start(*(g.upsert_by_email(f"r{n}@example.com", {}) for n, g in enumerate(gateways)))
    await queued(client, 10)
    slots.release()

    await asyncio.gather(*writes)

    # 201: the batch created prospects (PARDOT_API.md, Batch, RECORDED).
    assert [c.http_status for c in batch_calls(fake)] == [502, 201]
    assert entries_of(batch_calls(fake)[0]) == entries_of(batch_calls(fake)[1])
    assert len(fake.state.prospects("v3")) == 10
    for g in gateways:
        assert [(c.attempt, c.http_status, c.batch_size) for c in g.calls] == [
            (1, 502, 10),
            (2, 201, 10),
        ]


async def test_a_batch_of_creates_is_never_resent_once_pardot_may_have_it(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake))
    slots = await busy(client)
    fake.state.inject("html_502", times=1, path_contains="/do/batch")
    emails = [f"doubt{n}@example.com" for n in range(4)]
    writes = start(*(gateway(client).create(email, {}) for email in emails))
    await queued(client, 4)
    slots.release()

    failures = await asyncio.gather(*writes, return_exceptions=True)

    assert len(batch_calls(fake)) == 1
    for failure in failures:
        assert isinstance(failure, PardotWriteUnconfirmed)
        assert failure.code is StatusCode.UNAVAILABLE and not failure.settled
    assert len({id(f) for f in failures}) == 4  # each caller its own error object
    # Each email is held, exactly as after a single create that got no answer.
    assert all([await client.unconfirmed_creates.remaining(email) > 0 for email in emails])
    with pytest.raises(PardotWriteUnconfirmed):
        await gateway(client).create(emails[0], {})


async def test_a_batch_of_creates_refused_with_err_66_is_resent(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake))
    slots = await busy(client)
    fake.state.inject("err", times=1, err_code=66, path_contains="/do/batch")
    writes = start(*(gateway(client).create(f"again{n}@example.com", {}) for n in range(4)))
    await queued(client, 4)
    slots.release()

    created = await asyncio.gather(*writes)

    assert [c.err_code for c in batch_calls(fake)] == [66, 0]
    assert all(p.created for p in created)
    assert len(fake.state.prospects("v4")) == 4


async def test_a_malformed_batch_answer_falls_back_to_single_calls_loudly(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    fake.state.inject("err", times=1, err_code=71, path_contains="/do/batch")
    writes = start(*(gateway(client).upsert_by_email(f"m{n}@example.com", {}) for n in range(5)))
    await queued(client, 5)
    with capture_logs() as logs:
        slots.release()
        prospects = await asyncio.gather(*writes)

    assert [c.err_code for c in batch_calls(fake)] == [71]
    singles = [c.path for c in write_calls(fake) if "/do/upsert/email/" in c.path]
    assert sorted(singles) == sorted(
        f"/api/prospect/version/3/do/upsert/email/m{n}@example.com" for n in range(5)
    )
    assert all(p.id is not None and p.created for p in prospects)  # real answers
    [rejected] = [e for e in logs if e["event"] == "pardot.batch_rejected"]
    assert rejected["log_level"] == "error" and rejected["err_code"] == 71
    assert rejected["batch_size"] == 5


# --- limits: the queue and the deadlines ---------------------------------------------------


async def test_a_full_queue_refuses_with_resource_exhausted_and_a_retry_delay(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake, max_queued_writes=3))
    slots = await busy(client)
    writes = start(*(gateway(client).upsert_by_email(f"q{n}@example.com", {}) for n in range(5)))
    await queued(client, 3)
    refused = [w for w in writes if w.done()]

    assert len(refused) == 2
    for future in refused:
        error = future.exception()
        assert isinstance(error, PardotQueueFull)
        assert error.code is StatusCode.RESOURCE_EXHAUSTED
        assert error.reason == "PARDOT_QUEUE_FULL"
        assert error.retry_after is not None and error.retry_after > 0
        assert "connections.v3.max_queued_writes" in error.message
    slots.release()
    await asyncio.gather(*(w for w in writes if w not in refused))
    [batch] = batch_calls(fake)
    assert sorted(entries_of(batch)) == [f"q{n}@example.com" for n in range(3)]


async def test_a_caller_whose_deadline_passes_while_queued_sends_nothing(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    hurried = gateway(client, deadline=time.monotonic() + 0.15)
    writes = start(
        gateway(client).upsert_by_email("patient1@example.com", {}),
        hurried.upsert_by_email("hurried@example.com", {}),
        gateway(client).upsert_by_email("patient2@example.com", {}),
    )
    await queued(client, 3)

    with pytest.raises(DeadlineExceeded) as caught:
        await writes[1]
    assert client.account.writes.queued == 2
    slots.release()
    await asyncio.gather(writes[0], writes[2])

    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    assert hurried.calls == []
    [batch] = batch_calls(fake)
    assert sorted(entries_of(batch)) == ["patient1@example.com", "patient2@example.com"]


async def test_a_batch_runs_to_its_latest_deadline_but_each_caller_stops_at_its_own(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake))
    seeded = [fake.state.add_prospect("v4", email=f"d{n}@example.com")["id"] for n in range(2)]
    slots = await busy(client)
    fake.state.inject("delay", times=2, delay_s=0.4, path_contains="/do/batch")
    soon = time.monotonic() + 0.25
    writes = start(
        gateway(client, deadline=soon).update_by_id(seeded[0], {"city": "Soon"}),
        gateway(client, deadline=time.monotonic() + 5).update_by_id(seeded[1], {"city": "Late"}),
        gateway(client, deadline=soon).create("soon@example.com", {}),
        gateway(client, deadline=time.monotonic() + 5).create("late@example.com", {}),
    )
    await queued(client, 4)
    slots.release()

    soon_update, late_update, soon_create, late_create = await asyncio.gather(
        *writes, return_exceptions=True
    )

    assert isinstance(soon_update, DeadlineExceeded)
    # A create cut off after it left may still land: held, never sent again blindly.
    assert isinstance(soon_create, PardotWriteUnconfirmed) and not soon_create.settled
    assert await client.unconfirmed_creates.remaining("soon@example.com") > 0
    assert isinstance(late_update, Prospect) and late_update.id == seeded[1]
    assert isinstance(late_create, Prospect) and late_create.created
    # The batch was not cut short for the hurried callers: all of it landed.
    assert sorted(p["city"] or "" for p in fake.state.prospects("v4"))[-2:] == ["Late", "Soon"]
    assert len(fake.state.prospects("v4")) == 4


async def test_closing_fails_queued_writes_instead_of_leaving_them_waiting(
    fake: FakePardot,
) -> None:
    connections = PardotConnections({"v3": v3_config(fake)})
    client = connections.get("v3")
    slots = await busy(client)
    writes = start(*(gateway(client).upsert_by_email(f"z{n}@example.com", {}) for n in range(3)))
    await queued(client, 3)

    await asyncio.wait_for(connections.aclose(), 5)

    for failure in await asyncio.gather(*writes, return_exceptions=True):
        assert isinstance(failure, PardotUnavailable)
    slots.release()
    assert batch_calls(fake) == []


async def test_connections_to_one_account_share_one_queue(fake: FakePardot) -> None:
    connections = PardotConnections(
        {
            "a": oauth_config(fake, "a", max_queued_writes=100),
            "b": oauth_config(fake, "b", max_queued_writes=40),
            "other": v3_config(fake, "other"),
        }
    )
    try:
        a, b, other = (connections.get(n) for n in ("a", "b", "other"))
        assert a.account.writes is b.account.writes is not other.account.writes
        assert a.account.writes.max_queued == 40  # the smallest configured for the account
    finally:
        await connections.aclose()


def test_max_queued_writes_must_be_positive(fake: FakePardot) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_connection(oauth_config(fake, max_queued_writes=0))
    assert "connections.default.max_queued_writes" in caught.value.message


# --- the wire format (clients.wire.batching) -----------------------------------------------


def test_which_writes_have_a_batch_form() -> None:
    assert batch_kind(3, "upsert", "email") == BatchKind(3, "batchUpsert")
    assert batch_kind(3, "update", "id") == BatchKind(3, "batchUpdate")
    assert batch_kind(4, "update", "fid") == BatchKind(4, "batchUpdate")
    assert batch_kind(4, "upsert", "id") == BatchKind(4, "batchUpsert")
    assert batch_kind(4, "create", "email") == BatchKind(4, "batchCreate")
    assert batch_kind(4, "upsert", "email") is None  # always creates: never sent
    assert batch_kind(4, "read", "email") is None


def test_v3_entries_are_keyed_and_v4_entries_are_listed() -> None:
    entries = [
        BatchEntry("upsert", "email", "a@example.com", {"first_name": "A"}),
        BatchEntry("upsert", "id", "42", {"email": "b@example.com"}),
    ]
    assert json.loads(encode(BatchKind(3, "batchUpsert"), entries)) == {
        "prospects": {"a@example.com": {"first_name": "A"}, "42": {"email": "b@example.com"}}
    }
    v4 = [
        BatchEntry("update", "id", "7", {"id": "not this", "city": "X"}),
        BatchEntry("update", "fid", FID, {}),
    ]
    assert json.loads(encode(BatchKind(4, "batchUpdate"), v4)) == {
        "prospects": [{"id": "7", "city": "X"}, {"fid": FID}]
    }
    with pytest.raises(ValueError):
        encode(BatchKind(3, "batchUpsert"), [entries[0], entries[0]])
    with pytest.raises(ValueError):
        encode(BatchKind(4, "batchCreate"), [BatchEntry("create", "email", "x", {})] * 51)


def test_entry_keys_ignore_the_case_of_emails() -> None:
    lower = BatchEntry("upsert", "email", "a@example.com", {})
    upper = BatchEntry("upsert", "email", "A@Example.com", {})
    assert lower.key == upper.key != BatchEntry("upsert", "id", "a@example.com", {}).key


def test_entry_errors_are_read_back_to_their_err_code() -> None:
    envelope = {
        "errors": {
            "1": "Invalid prospect email address",
            "3": "Invalid prospect ID",
            "4": "Something Pardot never documented",
        }
    }
    failed = entry_errors(envelope, 5)
    assert {i: e.err_code for i, e in failed.items()} == {1: 4, 3: 3, 4: 0}
    assert failed[4].text == "Something Pardot never documented"
    assert entry_errors({"errors": {}}, 2) == {}
    assert entry_errors({"errors": []}, 2) == {}  # PHP's empty map
    assert entry_errors({}, 2) == {}
    assert err_code_of("Invalid prospect fid: 00Qxyz") == 77  # Pardot's suffixes
    assert err_code_of("invalid  prospect ID.") == 3


@pytest.mark.parametrize(
    "errors",
    [{"5": "Invalid prospect ID"}, {"-1": "x"}, {"one": "x"}, ["Invalid prospect ID"], "oops"],
)
def test_an_errors_value_that_names_no_entry_is_unreadable(errors: Any) -> None:
    with pytest.raises(UnreadableBatchAnswer):
        entry_errors({"errors": errors}, 5)


def test_a_partial_answer_that_names_no_entry_is_unreadable() -> None:
    """stat="fail" without err_code says some entry failed: one that names none cannot
    be settled entry by entry."""
    for errors in ({}, [], None):
        envelope = {"@attributes": {"stat": "fail", "version": 1}, "errors": errors}
        with pytest.raises(UnreadableBatchAnswer):
            entry_errors(envelope, 2)
    assert entry_errors({"@attributes": {"stat": "ok", "version": 1}, "errors": {}}, 2) == {}


def test_v3_entries_may_be_named_by_their_keys() -> None:
    """UNCONFIRMED (PARDOT_API.md, Batch): a v3 answer may name an entry by its index or
    by the key it was sent under (emails without regard to case); a name that is an
    index and another entry's key is ambiguous, never guessed."""
    keys = ["a@example.com", "100200", "b@example.com"]
    named = {"B@Example.com": "Invalid prospect email address", "100200": "Invalid prospect ID"}
    failed = entry_errors({"errors": named}, 3, keys=keys)
    assert {i: e.err_code for i, e in failed.items()} == {2: 4, 1: 3}
    assert list(entry_errors({"errors": {"0": "Invalid prospect ID"}}, 3, keys=keys)) == [0]
    with pytest.raises(UnreadableBatchAnswer, match="both an index"):
        entry_errors({"errors": {"1": "x"}}, 2, keys=["1", "2"])
    with pytest.raises(UnreadableBatchAnswer):
        entry_errors({"errors": {"c@example.com": "x"}}, 3, keys=keys)


def test_the_entry_error_texts_are_the_ones_the_fake_sends() -> None:
    """Two readings of one spec: the client's table and the fake's must agree."""
    for code, text in facts.ENTRY_ERROR_TEXTS.items():
        assert fake_constants.ERROR_TEXTS[code] == text, code
    assert facts.MAX_BATCH_PROSPECTS == fake_constants.MAX_BATCH_PROSPECTS


async def test_a_spent_daily_budget_reaches_every_caller_of_the_batch(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(v3_config(fake))
    slots = await busy(client)
    fake.state.daily_limit = 1  # the read above was the day's only call
    writes = start(*(gateway(client).upsert_by_email(f"day{n}@example.com", {}) for n in range(3)))
    await queued(client, 3)
    slots.release()

    for failure in await asyncio.gather(*writes, return_exceptions=True):
        assert isinstance(failure, PardotError)
        assert failure.code is StatusCode.RESOURCE_EXHAUSTED
        assert failure.reason == "PARDOT_DAILY_LIMIT"
    assert [c.err_code for c in batch_calls(fake)] == [122]
    assert fake.state.prospects("v3") == []


# --- answers fakepardot never gives: a stand-in Pardot on a real socket -------------------


class CannedPardot:
    """A minimal HTTP/1.1 server on 127.0.0.1 that grants any token, answers reads
    "not found", and answers each prospect write with ``answer(path, form)`` in Pardot's
    envelope (a batch answer naming failed entries is ``stat="fail"`` without err_code,
    as Pardot's): for the batch answers fakepardot has no switch for (an ``errors``
    value that names no entry, a ``stat="fail"`` that names none)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.paths: list[str] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> CannedPardot:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        # Since Python 3.12 wait_closed() waits for every connection to end: end the
        # client's keep-alive ones, or this waits for the client that is still open.
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while request_line := await reader.readline():
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                path = request_line.decode().split()[1].split("?")[0]
                document = self._document(path, dict(parse_qsl(body.decode())))
                payload = json.dumps(document).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()

    def _document(self, path: str, form: dict[str, str]) -> Any:
        if path.endswith("/oauth2/token"):
            return {"access_token": "canned", "token_type": "Bearer", "issued_at": "1"}
        self.paths.append(unquote(path))
        if "/do/read/" in path:
            return {
                "@attributes": {"stat": "fail", "version": 1, "err_code": 4},
                "err": "Invalid prospect email address",
            }
        answer = self.answer(path, form)
        # Real Pardot: any failed entry makes a batch answer stat="fail", no err_code.
        stat = "fail" if "/do/batch" in path and answer.get("errors") else "ok"
        return {"@attributes": {"stat": stat, "version": 1}, **answer}


def single_answer(path: str) -> dict[str, Any]:
    email = unquote(path.rsplit("/", 1)[1])
    now = "2026-01-01 00:00:00"
    return {"prospect": {"id": 7, "email": email, "created_at": now, "updated_at": now}}


def canned_config(pardot: CannedPardot, version: int) -> Any:
    return oauth_config(
        cast(FakePardot, SimpleNamespace(url=pardot.url, token_url=f"{pardot.url}/oauth2/token")),
        api_version=version,
    )


async def test_an_entry_refused_with_a_retryable_err_is_sent_again_alone(
    make_client: ClientFactory,
) -> None:
    def answer(path: str, form: dict[str, str]) -> dict[str, Any]:
        if path.endswith("/do/batchUpsert"):
            return {"errors": {"1": "Unable to save the prospect"}}
        return single_answer(path)

    async with CannedPardot(answer) as pardot:
        client = make_client(canned_config(pardot, 3))
        slots = await busy(client)
        writes = start(
            *(gateway(client).upsert_by_email(f"s{n}@example.com", {}) for n in range(3))
        )
        await queued(client, 3)
        slots.release()
        first, second, third = await asyncio.gather(*writes)

    assert pardot.paths[-2:] == [
        "/api/prospect/version/3/do/batchUpsert",
        "/api/prospect/version/3/do/upsert/email/s1@example.com",
    ]
    assert (first.id, third.id) == (None, None)
    assert (second.id, second.email) == (7, "s1@example.com")  # its own answer


async def test_a_create_refused_with_a_retryable_err_is_unconfirmed_not_resent(
    make_client: ClientFactory,
) -> None:
    async with CannedPardot(
        lambda path, form: {"errors": {"0": "Unable to save the prospect"}}
    ) as pardot:
        client = make_client(canned_config(pardot, 4))
        slots = await busy(client)
        writes = start(*(gateway(client).create(f"n{n}@example.com", {}) for n in range(2)))
        await queued(client, 2)
        slots.release()
        refused, created = await asyncio.gather(*writes, return_exceptions=True)

    assert [p for p in pardot.paths if "/do/read/" not in p] == [
        "/api/prospect/version/4/do/batchCreate"
    ]
    assert isinstance(refused, PardotWriteUnconfirmed) and refused.settled
    assert refused.metadata["err_code"] == "85"
    assert isinstance(created, Prospect) and created.created


async def test_an_answer_whose_errors_name_no_entry_is_never_guessed_at(
    make_client: ClientFactory,
) -> None:
    def answer(path: str, form: dict[str, str]) -> dict[str, Any]:
        if "/do/batch" in path:
            return {"errors": ["Invalid prospect ID"]}
        return single_answer(path)

    async with CannedPardot(answer) as pardot:
        v3 = make_client(canned_config(pardot, 3))
        slots = await busy(v3)
        upserts = start(*(gateway(v3).upsert_by_email(f"u{n}@example.com", {}) for n in range(2)))
        await queued(v3, 2)
        with capture_logs() as logs:
            slots.release()
            answered = await asyncio.gather(*upserts)
        v4 = make_client(canned_config(pardot, 4))
        slots = await busy(v4)
        creates = start(*(gateway(v4).create(f"c{n}@example.com", {}) for n in range(2)))
        await queued(v4, 2)
        slots.release()
        unconfirmed = await asyncio.gather(*creates, return_exceptions=True)

    # Idempotent writes are simply sent again alone; creates are never resent blindly.
    assert [p.id for p in answered] == [7, 7]
    assert [e["log_level"] for e in logs if e["event"] == "pardot.batch_unreadable"] == ["error"]
    for failure in unconfirmed:
        assert isinstance(failure, PardotWriteUnconfirmed) and failure.settled
    assert [p for p in pardot.paths if "/do/create/" in p] == []
