"""A create that got no answer is never sent twice: the caller hears
PARDOT_WRITE_UNCONFIRMED, and no other create for that email goes out while the first
may still land in Pardot (the caller's retry reads first and finds it). With the
embedded backend the hold is on disk before the create is sent (issue 12, item 2)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from grpc import StatusCode

from clients.connections import PardotConnection, PardotConnections
from clients.state.holds import MemoryCreateHolds
from clients.state.local import LocalState
from fakepardot import FakePardot
from strategies.core.errors import PardotWriteUnconfirmed, StateUnwritable
from support.state import FakeClocks
from support.waiting import until

from .conftest import ClientFactory, api_calls, gateway, oauth_config, v3_config


def creates(fake: FakePardot) -> list[str]:
    return [c.path.rsplit("/", 1)[-1] for c in api_calls(fake) if "/do/create/" in c.path]


async def test_an_unanswered_create_holds_back_other_creates_for_that_email(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake, timeout_s=0.2, unconfirmed_create_hold_s=30))
    clock = FakeClocks()
    client.unconfirmed_creates = MemoryCreateHolds(30, clocks=clock)
    await gateway(client).read_by_email("warm@example.com")
    fake.state.inject("delay", times=1, delay_s=0.5, path_contains="/do/create/")

    with pytest.raises(PardotWriteUnconfirmed) as first:
        await gateway(client).create("slow@example.com", {"org_id": "42"})
    await until(lambda: len(fake.state.prospects("v4")) == 1)  # it did land, later

    again = gateway(client)
    with pytest.raises(PardotWriteUnconfirmed) as held:
        await again.create("SLOW@example.com", {"org_id": "42"})
    other = await gateway(client).create("other@example.com", {})

    assert first.value.code is StatusCode.UNAVAILABLE
    assert not first.value.settled
    assert first.value.retry_after == pytest.approx(0.2)  # about a request's time
    assert held.value.code is StatusCode.UNAVAILABLE
    assert held.value.reason == "PARDOT_WRITE_UNCONFIRMED"
    assert 0 < (held.value.retry_after or 0) <= 0.2
    assert again.calls == []  # refused before anything was sent
    assert other.created
    assert creates(fake) == ["slow@example.com", "other@example.com"]

    clock.advance(30)  # the hold is over: the first create is taken as lost
    await gateway(client).create("slow@example.com", {"org_id": "42"})
    assert creates(fake)[-1] == "slow@example.com"


async def test_a_create_cut_off_by_the_deadline_is_unconfirmed_and_held(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake))
    await gateway(client).read_by_email("warm@example.com")
    fake.state.inject("delay", times=1, delay_s=0.5, path_contains="/do/create/")

    with pytest.raises(PardotWriteUnconfirmed) as caught:
        await gateway(client, deadline=time.monotonic() + 0.2).create("cut@example.com", {})

    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    assert caught.value.reason == "PARDOT_WRITE_UNCONFIRMED"
    assert await client.unconfirmed_creates.remaining("cut@example.com") > 0


async def test_a_create_pardot_answered_with_an_error_is_not_held(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    """err 85: Pardot's work on the request is over, so a read now tells the truth and
    holding back the caller's retry would only delay it."""
    client = make_client(oauth_config(fake))
    fake.state.inject("err", times=1, err_code=85, path_contains="/do/create/")

    with pytest.raises(PardotWriteUnconfirmed) as caught:
        await gateway(client).create("saved@example.com", {})
    created = await gateway(client).create("saved@example.com", {})

    assert caught.value.settled and caught.value.metadata["err_code"] == "85"
    assert created.created
    assert creates(fake) == ["saved@example.com", "saved@example.com"]
    assert [p["email"] for p in fake.state.prospects("v4")] == ["saved@example.com"]


async def test_v3_and_dry_runs_are_not_held(fake: FakePardot, make_client: ClientFactory) -> None:
    """v3 refuses a second prospect with one email (err 9) by itself; a dry run sends
    nothing."""
    v3 = make_client(v3_config(fake, timeout_s=0.2))
    v4 = make_client(oauth_config(fake, timeout_s=0.2))
    for client in (v3, v4):
        await gateway(client).read_by_email("warm@example.com")
    fake.state.inject("drop", times=2, path_contains="/do/create/")
    for client in (v3, v4):
        with pytest.raises(PardotWriteUnconfirmed):
            await gateway(client).create("dropped@example.com", {})

    planned = await gateway(v4, dry_run=True).create("dropped@example.com", {})
    await gateway(v3).create("dropped@example.com", {})  # sent: the drop lost the first

    assert planned.planned
    assert await v3.unconfirmed_creates.remaining("dropped@example.com") == 0
    assert await v4.unconfirmed_creates.remaining("dropped@example.com") > 0
    assert fake.state.prospects("v4") == []  # a drop processes nothing
    assert [p["email"] for p in fake.state.prospects("v3")] == ["dropped@example.com"]


@pytest.fixture
async def on_disk(fake: FakePardot, tmp_path: Path) -> AsyncIterator[PardotConnection]:
    """The default connection over the embedded backend in ``tmp_path/state``."""
    connections = PardotConnections(
        {"default": oauth_config(fake, unconfirmed_create_hold_s=30)},
        state=LocalState(tmp_path / "state"),
    )
    yield connections.get("default")
    await connections.aclose()


async def test_a_create_is_held_on_disk_from_before_it_is_sent_until_pardot_answers(
    fake: FakePardot, on_disk: PardotConnection, tmp_path: Path
) -> None:
    """What the next process (after a kill -9) or another one on the same state_dir
    sees while the create is on its way: a hold, so it sends no second create."""
    elsewhere = LocalState(tmp_path / "state").create_holds("default", hold_s=30)
    await gateway(on_disk).read_by_email("warm@example.com")
    fake.state.answers_held = True
    sending = asyncio.ensure_future(gateway(on_disk).create("ann@example.com", {}))
    try:
        await until(lambda: fake.state.in_flight("v4") == 1)
        assert await elsewhere.remaining("ann@example.com") > 30  # its time in flight, then 30 s
        assert await on_disk.unconfirmed_creates.remaining("ann@example.com") == 0  # its own
    finally:
        fake.state.answers_held = False
    assert (await asyncio.wait_for(sending, 5)).created
    assert await elsewhere.remaining("ann@example.com") == 0.0  # answered: the hold is over
    elsewhere.close()


async def test_a_create_whose_hold_cannot_be_written_is_not_sent(
    fake: FakePardot, on_disk: PardotConnection
) -> None:
    """A full disk: UNAVAILABLE (StateUnwritable) and nothing reaches Pardot."""
    await gateway(on_disk).read_by_email("warm@example.com")
    on_disk.unconfirmed_creates.close()  # every write to it fails from now on
    with pytest.raises(StateUnwritable) as caught:
        await gateway(on_disk).create("ann@example.com", {})
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert creates(fake) == []
