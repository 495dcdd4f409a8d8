"""A create that got no answer is never sent twice: the caller hears
PARDOT_WRITE_UNCONFIRMED, and no other create for that email goes out while the first
may still land in Pardot (the caller's retry reads first and finds it)."""

from __future__ import annotations

import time

import pytest
from grpc import StatusCode

from clients.state.holds import MemoryCreateHolds
from fakepardot import FakePardot
from strategies.core.errors import PardotWriteUnconfirmed
from support.waiting import until

from .conftest import ClientFactory, api_calls, gateway, oauth_config, v3_config


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def creates(fake: FakePardot) -> list[str]:
    return [c.path.rsplit("/", 1)[-1] for c in api_calls(fake) if "/do/create/" in c.path]


async def test_an_unanswered_create_holds_back_other_creates_for_that_email(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake, timeout_s=0.2, unconfirmed_create_hold_s=30))
    clock = Clock()
    client.unconfirmed_creates = MemoryCreateHolds(30, clock=clock)
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

    clock.now += 30  # the hold is over: the first create is taken as lost
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
    assert client.unconfirmed_creates.remaining("cut@example.com") > 0


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
    assert v3.unconfirmed_creates.remaining("dropped@example.com") == 0
    assert v4.unconfirmed_creates.remaining("dropped@example.com") > 0
    assert fake.state.prospects("v4") == []  # a drop processes nothing
    assert [p["email"] for p in fake.state.prospects("v3")] == ["dropped@example.com"]
