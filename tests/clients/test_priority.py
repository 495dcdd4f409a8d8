"""Issue 12, item 1: calls under way before calls that have not started, and no first
request for a call that cannot finish before its deadline — against fakepardot over
HTTP and the real slots of the state seam.

What is waiting is made exact, not timed: Pardot holds its answers (``answers_held``)
while the account's one slot is taken, so every request queues before any is let in;
the order the fake then records is the order the slots let them in. A refusal is
judged on evidence the account really observed (a request that took the fake's
latency), or on one answer this test reports to the account's pace, never on a
measured time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest
from grpc import StatusCode

from clients.connections import PardotConnection
from clients.pace import DeadlineUnreachable
from clients.state.protocols import ConcurrencySlots
from fakepardot import FakePardot
from strategies.core.errors import DeadlineExceeded
from support.state import BACKENDS, StateUnderTest, state_fixture
from support.waiting import until

from .conftest import ClientFactory, api_calls, gateway, oauth_config

T = TypeVar("T")


state = state_fixture(BACKENDS)


def start(*calls: Awaitable[T]) -> list[asyncio.Future[T]]:
    return [asyncio.ensure_future(call) for call in calls]


def emails(fake: FakePardot) -> list[str]:
    """Whom each API call the fake recorded was about, in order (reads and single
    writes name the email last in their path)."""
    return [c.path.rsplit("/", 1)[-1] for c in api_calls(fake)]


@pytest.fixture
async def one_slot(fake: FakePardot, make_client: ClientFactory) -> AsyncIterator[PardotConnection]:
    """A v4 connection whose account has one slot, its token fetched."""
    client = make_client(oauth_config(fake, max_concurrency=1))
    await gateway(client).read_by_email("warm@example.com")
    fake.state.calls.clear()
    yield client
    fake.state.answers_held = False


async def hold_the_slot(fake: FakePardot, client: PardotConnection) -> asyncio.Future[Any]:
    """A first read that Pardot does not answer until ``answers_held`` is let go."""
    fake.state.answers_held = True
    [held] = start(gateway(client).read_by_email("holder@example.com"))
    await until(lambda: fake.state.in_flight("v4") == 1)
    return held


# --- calls under way first ---------------------------------------------------------------


async def test_a_started_calls_write_goes_before_first_reads_queued_earlier(
    fake: FakePardot, one_slot: PardotConnection
) -> None:
    """A cold LookupFieldV4 call has read; its create must not wait for every read that
    arrived meanwhile (issue 12: 200 cold calls, 0 OK)."""
    client = one_slot
    started = gateway(client)
    assert await started.read_by_email("started@example.com") == []  # its first request
    held = await hold_the_slot(fake, client)
    firsts = start(*(gateway(client).read_by_email(f"new{n}@example.com") for n in range(3)))
    await until(lambda: client.account.slots.waiting() == 3)
    [create] = start(started.create("started@example.com", {"first_name": "S"}))
    await until(lambda: client.account.slots.waiting() == 4)  # the create's sender too

    fake.state.answers_held = False
    await asyncio.gather(held, create, *firsts)

    assert emails(fake) == [
        "started@example.com",
        "holder@example.com",
        "started@example.com",  # the create, ahead of the three reads queued before it
        "new0@example.com",
        "new1@example.com",
        "new2@example.com",
    ]
    assert api_calls(fake)[2].path.endswith("/do/create/email/started@example.com")


async def test_a_started_calls_second_read_goes_ahead_too_and_keeps_arrival_order(
    fake: FakePardot, one_slot: PardotConnection
) -> None:
    """Not only queued writes: any request of a call under way (sent by the transport
    itself) goes first, and calls under way keep the order they asked in."""
    client = one_slot
    first, second = gateway(client), gateway(client)
    await first.read_by_email("one@example.com")
    await second.read_by_email("two@example.com")
    held = await hold_the_slot(fake, client)
    news = start(*(gateway(client).read_by_email(f"new{n}@example.com") for n in range(2)))
    await until(lambda: client.account.slots.waiting() == 2)
    again = start(first.read_by_email("one-again@example.com"))
    await until(lambda: client.account.slots.waiting() == 3)
    again += start(second.read_by_email("two-again@example.com"))
    await until(lambda: client.account.slots.waiting() == 4)

    fake.state.answers_held = False
    await asyncio.gather(held, *news, *again)

    assert emails(fake)[3:] == [
        "one-again@example.com",
        "two-again@example.com",
        "new0@example.com",
        "new1@example.com",
    ]


async def test_follow_ups_go_first_in_arrival_order_and_a_cancelled_one_takes_no_slot(
    state: StateUnderTest,
) -> None:
    """The slots of every backend: the protocol's two entrances."""
    slots: ConcurrencySlots = state.slots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with slots:
            await release.wait()

    async def first(name: str) -> None:
        async with slots:
            order.append(name)
            await asyncio.sleep(0)

    async def follow_up(name: str) -> None:
        async with slots.follow_up:
            order.append(name)
            await asyncio.sleep(0)

    [held] = start(holder())
    await until(slots.locked)
    waiters: dict[str, asyncio.Future[None]] = {}
    for name in ("f1", "u1", "f2", "u2", "u3", "f3"):
        waiters[name] = asyncio.ensure_future((follow_up if name[0] == "u" else first)(name))
        await asyncio.sleep(0)  # each in its queue before the next arrives
    assert (slots.waiting(), slots.waiting(follow_up=True)) == (6, 3)
    for gone in ("u2", "f1"):  # their deadlines passed while they waited
        waiters[gone].cancel()
    await asyncio.sleep(0)
    assert (slots.waiting(), slots.waiting(follow_up=True)) == (4, 2)
    await state.queued(4)

    release.set()
    await asyncio.wait_for(asyncio.gather(held, *(waiters[n] for n in ("u1", "u3", "f2", "f3"))), 5)

    assert order == ["u1", "u3", "f2", "f3"]
    assert not slots.locked() and slots.waiting() == 0
    async with asyncio.timeout(1), slots.follow_up:  # the cancelled took no slot with them
        pass


# --- no first request for a call that cannot finish ---------------------------------------


def paced(fake: FakePardot, make_client: ClientFactory) -> PardotConnection:
    """A v4 connection whose account has one slot; its first requests are answered after
    the fake's 0.2 s (then the fake answers at once: only what waits is judged)."""
    fake.state.latency_s = 0.2
    return make_client(oauth_config(fake, max_concurrency=1))


async def test_a_call_that_cannot_finish_in_time_is_refused_before_any_pardot_call(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = paced(fake, make_client)
    await gateway(client).read_by_email("paced@example.com")  # the account sees ≥ 0.2 s
    fake.state.latency_s = 0.0
    held = await hold_the_slot(fake, client)
    queued = start(*(gateway(client).read_by_email(f"q{n}@example.com") for n in range(4)))
    await until(lambda: client.account.slots.waiting() == 4)
    fake.state.calls.clear()

    # Four requests of ≥ 0.2 s each before it, one at a time, and its own: ≥ 1 s.
    hurried = gateway(client, deadline=time.monotonic() + 0.6)
    with pytest.raises(DeadlineUnreachable) as caught:
        await hurried.read_by_email("hurried@example.com")

    error = caught.value
    assert error.code is StatusCode.UNAVAILABLE and error.reason == "DEADLINE_UNREACHABLE"
    assert error.retry_after is not None and error.retry_after >= 0.8
    assert "4 request(s) ahead" in error.message and "nothing was sent" in error.message
    assert hurried.calls == []
    fake.state.answers_held = False
    await asyncio.gather(held, *queued)
    assert "hurried@example.com" not in emails(fake)


async def test_the_estimate_counts_every_request_a_call_of_the_account_makes(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    """Its calls read, then write: a deadline that leaves time for one request of a
    call is refused, since its read would be spent for nothing."""
    client = paced(fake, make_client)
    lookup = gateway(client)  # a cold LookupFieldV4 call, as the account saw it
    await lookup.read_by_email("cold@example.com")
    await lookup.create("cold@example.com", {})
    fake.state.latency_s = 0.0
    held = await hold_the_slot(fake, client)
    fake.state.calls.clear()

    # Nobody waits ahead; one request (≥ 0.2 s) fits in what is left, two do not.
    hurried = gateway(client, deadline=time.monotonic() + 0.4)
    with pytest.raises(DeadlineUnreachable) as caught:
        await hurried.read_by_email("hurried@example.com")

    assert "2.0 request(s) a call" in caught.value.message
    assert hurried.calls == []
    fake.state.answers_held = False
    await held
    assert emails(fake) == ["holder@example.com"]


async def test_a_call_whose_wait_outlasted_its_deadline_budget_gives_its_slot_back_unused(
    fake: FakePardot, one_slot: PardotConnection
) -> None:
    """Asked again once it holds the slot: Pardot slowed down while it waited."""
    client = one_slot  # fast so far (its warm-up answered at once): a call may queue
    held = await hold_the_slot(fake, client)
    patient = gateway(client, deadline=time.monotonic() + 30)
    [waiting] = start(patient.read_by_email("patient@example.com"))
    await until(lambda: client.account.slots.waiting() == 1)
    [behind] = start(gateway(client).read_by_email("behind@example.com"))
    await until(lambda: client.account.slots.waiting() == 2)
    for _ in range(30):  # then every answer took a minute (as one would report it)
        client.account.pace.answered(60.0, first=False)

    fake.state.answers_held = False
    with pytest.raises(DeadlineUnreachable):
        await waiting
    await asyncio.gather(held, behind)

    assert patient.calls == []
    assert emails(fake) == ["holder@example.com", "behind@example.com"]  # the slot went on


async def test_no_refusal_without_evidence(fake: FakePardot, make_client: ClientFactory) -> None:
    """Nothing observed yet: a first request waits, and its deadline, not a guess,
    ends it."""
    client = make_client(oauth_config(fake, max_concurrency=1))
    held = await hold_the_slot(fake, client)  # the token, then a request unanswered
    assert client.account.pace.latency_s is None
    queued = start(*(gateway(client).read_by_email(f"q{n}@example.com") for n in range(3)))
    await until(lambda: client.account.slots.waiting() == 3)

    unknown = gateway(client, deadline=time.monotonic() + 0.3)
    with pytest.raises(DeadlineExceeded):
        await unknown.read_by_email("unknown@example.com")

    assert unknown.calls == []
    fake.state.answers_held = False
    await asyncio.gather(held, *queued)


async def test_a_call_under_way_is_never_refused(
    fake: FakePardot, one_slot: PardotConnection
) -> None:
    """It has spent a request already: it waits for its slot (ahead of first requests)
    until its deadline, where a new call with the same deadline is refused at once."""
    client = one_slot
    under_way = gateway(client)
    await under_way.read_by_email("under-way@example.com")
    held = await hold_the_slot(fake, client)
    queued = start(*(gateway(client).read_by_email(f"q{n}@example.com") for n in range(3)))
    await until(lambda: client.account.slots.waiting() == 3)
    for _ in range(30):  # every answer takes a minute now
        client.account.pace.answered(60.0, first=False)

    new = gateway(client, deadline=time.monotonic() + 0.3)
    with pytest.raises(DeadlineUnreachable):
        await new.read_by_email("new@example.com")
    under_way.deadline = time.monotonic() + 0.3
    with pytest.raises(DeadlineExceeded):
        await under_way.read_by_email("under-way-again@example.com")

    fake.state.answers_held = False
    await asyncio.gather(held, *queued)
