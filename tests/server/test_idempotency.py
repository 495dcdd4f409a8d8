"""server.idempotency: the message_id records, the single flight, and the interceptor
over a real server with stand-in connections (the live version against fakepardot is in
tests/e2e/test_idempotency.py).

The records and the single flight are tested against
``clients.state.protocols.ResponseRecords``: ``store`` comes from the ``state`` fixture
(tests/server/conftest.py), once per backend; what only the SQLite store does (its file,
its purge, its transaction) is tested on ``ResponseStore`` itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from clients.state.attempts import earlier_attempt
from clients.state.local import IDEMPOTENCY_FILE
from clients.state.protocols import IdempotencyKey, ResponseRecords
from clients.state.responses import ResponseStore
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from server.idempotency import Idempotency
from strategies.core.errors import InvalidArgument, PardotUnavailable, StateUnwritable
from strategies.validation import MAX_MESSAGE_ID_LENGTH
from support.service import identify
from support.state import FakeClocks, StateUnderTest

if TYPE_CHECKING:
    from .conftest import LogCapture, Served

IDENTIFY = "/prospectsync.v1.ProspectSync/Identify"
KEY = IdempotencyKey(IDENTIFY, "default", "m-1")
TOM = {"email": "tom@example.com"}


@pytest.fixture
def clock(state: StateUnderTest) -> FakeClocks:
    """The host's clocks every store of the test reads."""
    return state.clocks


@pytest.fixture
def store(state: StateUnderTest) -> ResponseRecords:
    """The ``state`` backend's records, 60 s window, on the test's clocks (closed by
    ``state``)."""
    return state.responses(window_s=60.0)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[ResponseStore]:
    opened = ResponseStore(tmp_path / IDEMPOTENCY_FILE, window_s=60.0, clocks=FakeClocks())
    yield opened
    opened.close()


def created(prospect_id: str = "7") -> pb.IdentifyResponse:
    return pb.IdentifyResponse(
        prospect_id=prospect_id,
        outcome=pb.OUTCOME_CREATED,
        strategy="EmailV3",
        pardot_calls=[pb.PardotCall(method="POST", path="/api/x", http_status=200)],
        warnings=["a warning"],
    )


# --- the records -----------------------------------------------------------------------


async def save_now(store: ResponseRecords, key: IdempotencyKey, response: bytes) -> None:
    """Saves and waits for the commit."""
    await asyncio.wait_for(store.save(key, response, then=lambda: None), 5)


async def test_a_stored_response_is_found_within_the_window_only(
    state: StateUnderTest, store: ResponseRecords, clock: FakeClocks
) -> None:
    state.drives_time()
    assert await store.get(KEY) is None
    await save_now(store, KEY, b"first")
    clock.advance(59.9)
    assert await store.get(KEY) == b"first"
    assert await store.get(IdempotencyKey(IDENTIFY, "v3", "m-1")) is None  # another connection
    assert await store.get(IdempotencyKey("/x/Track", "default", "m-1")) is None  # another method
    clock.advance(0.2)
    assert await store.get(KEY) is None


async def test_records_survive_a_reopen(state: StateUnderTest) -> None:
    first = state.responses()
    await save_now(first, KEY, b"kept")
    first.close()
    assert await state.responses().get(KEY) == b"kept"


async def test_a_step_of_the_wall_clock_never_makes_a_recorded_message_new(
    state: StateUnderTest, store: ResponseRecords, clock: FakeClocks
) -> None:
    """Issue 12, item 11: the window is time that passed, not what the wall clock says."""
    state.drives_time()
    await save_now(store, KEY, b"first")
    clock.step(+3600)  # an hour forward: the window has not passed
    assert await store.get(KEY) == b"first"
    clock.step(-7200)  # and back past where it was
    assert await store.get(KEY) == b"first"
    clock.advance(59.9)
    assert await store.get(KEY) == b"first"
    clock.advance(0.2)  # the window did pass: the record expires all the same
    assert await store.get(KEY) is None


async def test_across_a_restart_the_window_counts_time_that_passed_not_clock_steps(
    state: StateUnderTest, clock: FakeClocks
) -> None:
    state.drives_time()
    first = state.responses()
    await save_now(first, KEY, b"kept")
    first.close()
    clock.step(+3600)  # stepped while the process was down ...
    clock.advance(10)  # ... for 10 s
    second = state.responses()
    assert await second.get(KEY) == b"kept"
    second.close()
    # After a reboot only the wall clock tells how long the process was down; a step
    # back then counts as no time at all, never as time running backwards.
    clock.reboot()
    clock.step(-86_400)
    third = state.responses()
    assert await third.get(KEY) == b"kept"
    clock.advance(49.9)
    assert await third.get(KEY) == b"kept"
    clock.advance(0.2)  # 60 s after it was stored, counted across both restarts
    assert await third.get(KEY) is None


async def test_a_forward_step_while_down_across_a_reboot_counts_as_time_passed(
    state: StateUnderTest, clock: FakeClocks
) -> None:
    """The documented limit: across a reboot nothing but the wall clock tells how long
    the process was down, so a forward step then cannot be told from downtime."""
    state.drives_time()
    first = state.responses()
    await save_now(first, KEY, b"kept")
    first.close()
    clock.reboot()
    clock.step(+61)
    assert await state.responses().get(KEY) is None


# --- the message in progress ---------------------------------------------------------


async def test_a_message_is_in_progress_durably_before_its_call_runs(
    state: StateUnderTest, store: ResponseRecords, clock: FakeClocks
) -> None:
    """Issue 12, item 2: a process that dies mid-call leaves the message in progress,
    so the next one (another store on the same state) knows an attempt began, and when."""
    idempotency = Idempotency(store)
    began = clock.wall()
    seen: list[float | None] = []

    async def respond() -> pb.IdentifyResponse:
        after_a_crash = state.responses()  # as the next process would open it, now
        seen.append(await asyncio.wait_for(after_a_crash.begin(KEY), 5))
        return created()

    await idempotency.once(KEY, pb.IdentifyResponse, respond)
    assert seen == [began]


async def test_an_attempt_after_one_that_failed_is_told_when_the_first_began(
    store: ResponseRecords, clock: FakeClocks
) -> None:
    idempotency = Idempotency(store)
    began = clock.wall()
    told: list[float | None] = []

    async def fails() -> pb.IdentifyResponse:
        told.append(earlier_attempt())
        raise PardotUnavailable("Pardot did not answer")

    async def succeeds() -> pb.IdentifyResponse:
        told.append(earlier_attempt())
        return created()

    with pytest.raises(PardotUnavailable):
        await idempotency.once(KEY, pb.IdentifyResponse, fails)
    clock.advance(5)
    await idempotency.once(KEY, pb.IdentifyResponse, succeeds)
    other = IdempotencyKey(IDENTIFY, "default", "m-2")
    await idempotency.once(other, pb.IdentifyResponse, succeeds)
    assert told == [None, began, None]  # the first attempt of each message is told None
    assert earlier_attempt() is None  # only inside the call


async def test_a_message_that_cannot_be_marked_in_progress_fails_before_it_runs(
    sqlite_store: ResponseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk: UNAVAILABLE (StateUnwritable) before anything reaches Pardot."""

    def full(rows: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(sqlite_store, "_write", full)
    runs = 0

    async def respond() -> pb.IdentifyResponse:
        nonlocal runs
        runs += 1
        return created()

    with pytest.raises(StateUnwritable) as caught:
        await Idempotency(sqlite_store).once(KEY, pb.IdentifyResponse, respond)
    assert runs == 0
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE
    assert caught.value.reason == "STATE_UNAVAILABLE"


async def test_expired_sqlite_records_are_purged_on_open(tmp_path: Path) -> None:
    path = tmp_path / IDEMPOTENCY_FILE
    clock = FakeClocks()
    first = ResponseStore(path, window_s=60.0, clocks=clock)
    await save_now(first, KEY, b"kept")
    await save_now(first, IdempotencyKey(IDENTIFY, "default", "old"), b"old")
    first.close()

    clock.advance(61)
    purged = ResponseStore(path, window_s=60.0, clocks=clock)  # purges on open
    try:
        (rows,) = purged._db.execute("SELECT count(*) FROM responses").fetchone()
        assert rows == 0
    finally:
        purged.close()


async def test_a_saved_record_is_committed_before_its_future_resolves(
    state: StateUnderTest,
) -> None:
    store = state.responses(group_commit_s=0.05)
    other = state.responses()  # another connection: sees commits only
    released: list[str] = []
    keys = [IdempotencyKey(IDENTIFY, "default", f"m-{n}") for n in range(3)]
    saved = [
        store.save(key, key.message_id.encode(), then=lambda k=key: released.append(k))
        for key in keys
    ]
    assert not any(future.done() for future in saved) and released == []
    await asyncio.wait_for(asyncio.gather(*saved), 5)
    # One commit held them all, and each caller learnt of it.
    assert [await other.get(key) for key in keys] == [b"m-0", b"m-1", b"m-2"]
    assert released == keys


async def test_a_record_saved_long_after_the_last_commit_goes_at_once(
    state: StateUnderTest,
) -> None:
    """Only records saved within the window of the last commit wait for the next:
    a quiet service adds no latency, a busy one groups its commits."""
    state.paces_commits()
    store = state.responses(group_commit_s=3600.0)
    await save_now(store, KEY, b"first")  # nothing committed for an hour: at once
    later = IdempotencyKey(IDENTIFY, "default", "later")
    second = store.save(later, b"second", then=lambda: None)
    await asyncio.sleep(0.05)
    assert not second.done() and await store.get(later) is None  # within the hour: waits
    store.commit()
    assert second.done() and await store.get(later) == b"second"


async def test_records_still_waiting_for_their_commit_are_committed_on_close(
    state: StateUnderTest,
) -> None:
    state.paces_commits()
    store = state.responses(group_commit_s=60.0)
    saved = store.save(KEY, b"kept", then=lambda: None)
    store.close()
    assert saved.done() and saved.exception() is None
    assert await state.responses().get(KEY) == b"kept"


# --- the single flight ---------------------------------------------------------------


async def test_concurrent_duplicates_run_once_and_share_the_result(store: ResponseRecords) -> None:
    idempotency = Idempotency(store)
    release = asyncio.Event()
    runs = 0

    async def respond() -> pb.IdentifyResponse:
        nonlocal runs
        runs += 1
        await release.wait()
        return created()

    calls = [
        asyncio.ensure_future(idempotency.once(KEY, pb.IdentifyResponse, respond))
        for _ in range(10)
    ]
    await asyncio.sleep(0.01)
    release.set()
    replies = await asyncio.wait_for(asyncio.gather(*calls), 5)
    assert runs == 1
    assert [r.outcome for r in replies].count(pb.OUTCOME_CREATED) == 1
    assert [r.outcome for r in replies].count(pb.OUTCOME_DUPLICATE_MESSAGE) == 9
    assert {r.prospect_id for r in replies} == {"7"}


async def test_a_replay_is_the_first_result_marked_duplicate_without_calls(
    store: ResponseRecords,
) -> None:
    idempotency = Idempotency(store)

    async def respond() -> pb.IdentifyResponse:
        return created()

    first = await idempotency.once(KEY, pb.IdentifyResponse, respond)
    replay = await idempotency.once(KEY, pb.IdentifyResponse, respond)
    assert first == created()
    assert replay.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert (replay.prospect_id, replay.strategy, list(replay.warnings)) == (
        "7",
        "EmailV3",
        ["a warning"],
    )
    assert list(replay.pardot_calls) == []  # a replay cost no Pardot call


async def test_a_failure_is_not_remembered_and_a_waiter_runs_instead(
    store: ResponseRecords,
) -> None:
    idempotency = Idempotency(store)
    release = asyncio.Event()
    attempts: list[str] = []

    async def respond() -> pb.IdentifyResponse:
        attempts.append("run")
        if len(attempts) == 1:
            await release.wait()
            raise PardotUnavailable("Pardot did not answer")
        return created(prospect_id="8")

    first = asyncio.ensure_future(idempotency.once(KEY, pb.IdentifyResponse, respond))
    await asyncio.sleep(0.01)
    waiters = [
        asyncio.ensure_future(idempotency.once(KEY, pb.IdentifyResponse, respond)) for _ in range(3)
    ]
    await asyncio.sleep(0.01)
    assert attempts == ["run"]  # the waiters wait for the first
    release.set()
    with pytest.raises(PardotUnavailable):
        await asyncio.wait_for(first, 5)
    replies = await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert attempts == ["run", "run"]  # exactly one waiter ran; the others got its result
    assert sorted(r.outcome for r in replies) == sorted(
        [pb.OUTCOME_CREATED, pb.OUTCOME_DUPLICATE_MESSAGE, pb.OUTCOME_DUPLICATE_MESSAGE]
    )
    assert {r.prospect_id for r in replies} == {"8"}


async def test_a_cancelled_first_call_lets_a_waiter_run(store: ResponseRecords) -> None:
    idempotency = Idempotency(store)
    never = asyncio.Event()
    runs = 0

    async def respond() -> pb.IdentifyResponse:
        nonlocal runs
        runs += 1
        if runs == 1:
            await never.wait()
        return created()

    first = asyncio.ensure_future(idempotency.once(KEY, pb.IdentifyResponse, respond))
    await asyncio.sleep(0.01)
    waiter = asyncio.ensure_future(idempotency.once(KEY, pb.IdentifyResponse, respond))
    await asyncio.sleep(0.01)
    first.cancel()  # the caller went away
    reply = await asyncio.wait_for(waiter, 5)
    assert (runs, reply.outcome) == (2, pb.OUTCOME_CREATED)


async def test_a_first_call_that_goes_away_while_its_record_commits_still_answers_waiters(
    state: StateUnderTest,
) -> None:
    state.paces_commits()
    # Commits an hour apart: after the first one, a record waits until commit().
    store = state.responses(group_commit_s=3600.0)
    idempotency = Idempotency(store)
    runs = 0

    async def respond() -> pb.IdentifyResponse:
        nonlocal runs
        runs += 1
        return created()

    other = IdempotencyKey(IDENTIFY, "default", "earlier")
    await save_now(store, other, b"")
    first = asyncio.ensure_future(idempotency.once(KEY, pb.IdentifyResponse, respond))
    await asyncio.sleep(0.01)
    assert runs == 0  # it runs once the message is in progress, committed:
    store.commit()
    await asyncio.sleep(0.01)
    assert runs == 1
    assert await store.get(KEY) is None  # answered by Pardot; its record waits for the commit
    waiter = asyncio.ensure_future(idempotency.once(KEY, pb.IdentifyResponse, respond))
    await asyncio.sleep(0.01)
    first.cancel()  # the caller went away: what it did at Pardot still stands
    await asyncio.sleep(0.01)
    assert not waiter.done()  # it waits for the record, not for the first caller
    store.commit()
    reply = await asyncio.wait_for(waiter, 5)
    assert (runs, reply.outcome) == (1, pb.OUTCOME_DUPLICATE_MESSAGE)


async def test_a_failed_sqlite_commit_fails_the_call_and_lets_a_waiter_run(
    sqlite_store: ResponseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store
    idempotency = Idempotency(store)
    write = store._write
    commits = 0

    def fail_the_response(pending: list) -> None:
        nonlocal commits
        commits += 1
        if commits == 2:  # the first marks the message in progress; the second fails
            raise sqlite3.OperationalError("disk I/O error")
        write(pending)

    monkeypatch.setattr(store, "_write", fail_the_response)
    release = asyncio.Event()
    runs = 0

    async def respond() -> pb.IdentifyResponse:
        nonlocal runs
        runs += 1
        await release.wait()
        return created(prospect_id=str(runs))

    first = asyncio.ensure_future(idempotency.once(KEY, pb.IdentifyResponse, respond))
    await asyncio.sleep(0.01)
    waiter = asyncio.ensure_future(idempotency.once(KEY, pb.IdentifyResponse, respond))
    await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(StateUnwritable):  # UNAVAILABLE: the replay reads what it wrote
        await asyncio.wait_for(first, 5)
    reply = await asyncio.wait_for(waiter, 5)
    assert (runs, reply.outcome, reply.prospect_id) == (2, pb.OUTCOME_CREATED, "2")
    assert await store.get(KEY) is not None


# --- which calls are keyed -----------------------------------------------------------


def test_the_key_is_method_connection_and_message_id(store: ResponseRecords) -> None:
    idempotency = Idempotency(store)
    assert idempotency.key_for(IDENTIFY, identify(TOM, message_id="m-1")) == KEY
    assert idempotency.key_for(
        IDENTIFY, identify(TOM, message_id="m-1", connection="v3")
    ) == IdempotencyKey(IDENTIFY, "v3", "m-1")
    assert idempotency.key_for(IDENTIFY, identify(TOM)) is None  # no message_id
    assert idempotency.key_for(IDENTIFY, identify(TOM, message_id="m-1", dry_run=True)) is None


def test_an_overlong_message_id_is_invalid_argument(store: ResponseRecords) -> None:
    idempotency = Idempotency(store)
    with pytest.raises(InvalidArgument) as caught:
        idempotency.key_for(IDENTIFY, identify(TOM, message_id="m" * (MAX_MESSAGE_ID_LENGTH + 1)))
    assert caught.value.field == "message_id"
    assert idempotency.key_for(IDENTIFY, identify(TOM, message_id="m" * MAX_MESSAGE_ID_LENGTH))


def test_identify_and_track_are_idempotent_the_snippet_is_not(store: ResponseRecords) -> None:
    assert set(Idempotency(store).response_types) == {
        IDENTIFY,
        "/prospectsync.v1.ProspectSync/Track",
        "/prospectsync.v1.ProspectSync/Forget",
    }


# --- through the server --------------------------------------------------------------


async def test_a_replay_through_the_server_reaches_no_connection(
    served: Served, logs: LogCapture
) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    first = await stub.Identify(identify(TOM, message_id="m-1"), timeout=5)
    replay = await stub.Identify(identify(TOM, message_id="m-1"), timeout=5)
    assert first.outcome == pb.OUTCOME_CREATED and len(first.pardot_calls) == 1
    assert replay.outcome == pb.OUTCOME_DUPLICATE_MESSAGE
    assert (replay.prospect_id, replay.strategy) == (first.prospect_id, first.strategy)
    assert list(replay.pardot_calls) == []
    assert len(served.connections.deadlines) == 1  # no gateway was even made for the replay
    _, replayed = logs.named("rpc.done")
    assert (replayed["code"], replayed["outcome"], replayed["pardot_calls"]) == (
        "OK",
        "DUPLICATE_MESSAGE",
        0,
    )
    assert (replayed["message_id"], replayed["connection"]) == ("m-1", "default")


async def test_dry_runs_are_neither_stored_nor_answered_from_the_store(served: Served) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    planned = await stub.Identify(identify(TOM, message_id="m-2", dry_run=True), timeout=5)
    assert planned.outcome == pb.OUTCOME_PLANNED
    real = await stub.Identify(identify(TOM, message_id="m-2"), timeout=5)
    assert real.outcome == pb.OUTCOME_CREATED  # the plan did not make this a duplicate
    again = await stub.Identify(identify(TOM, message_id="m-2", dry_run=True), timeout=5)
    assert again.outcome == pb.OUTCOME_PLANNED  # and a dry run still shows its plan


async def test_a_failed_call_is_not_remembered(served: Served) -> None:
    failures = [PardotUnavailable("Pardot did not answer")]

    async def fail_once(_operation: str) -> None:
        if failures:
            raise failures.pop()

    served.connections.before = fail_once
    stub = pb_grpc.ProspectSyncStub(served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Identify(identify(TOM, message_id="m-3"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    retried = await stub.Identify(identify(TOM, message_id="m-3"), timeout=5)
    assert retried.outcome == pb.OUTCOME_CREATED


async def test_the_records_live_in_the_state_dir(served: Served, tmp_path: Path) -> None:
    stub = pb_grpc.ProspectSyncStub(served.channel)
    await stub.Identify(identify(TOM, message_id="m-4"), timeout=5)
    assert (tmp_path / "state" / IDEMPOTENCY_FILE).is_file()
