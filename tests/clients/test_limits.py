"""Pardot's limits against fakepardot over HTTP: callers wait for a slot in arrival
order and never past their deadline; the daily budget counts what Pardot counts, and
after err 122 the account gets no request until its next day."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from grpc import StatusCode

from clients.config import check_connection
from clients.connections import PardotConnections
from fakepardot import FakePardot
from strategies.core.errors import (
    DailyLimitReached,
    DeadlineExceeded,
    FailedPrecondition,
    PardotError,
    PardotUnavailable,
)
from support.waiting import until

from .conftest import ClientFactory, api_calls, gateway, oauth_config


def read_email(call: object) -> str:
    return str(getattr(call, "path", "")).rsplit("/", 1)[-1]


async def test_callers_get_a_slot_in_the_order_they_asked(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake, max_concurrency=1))
    await gateway(client).read_by_email("warm@example.com")  # the token, before timing
    fake.state.calls.clear()
    fake.state.latency_s = 0.005
    emails = [f"q{i}@example.com" for i in range(8)]

    tasks = []
    for email in emails:
        tasks.append(asyncio.create_task(gateway(client).read_by_email(email)))
        await asyncio.sleep(0)  # this caller is queued before the next one asks
    await asyncio.gather(*tasks)

    assert [read_email(c) for c in api_calls(fake)] == emails


async def test_a_caller_whose_deadline_passes_in_the_queue_sends_nothing(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake, max_concurrency=1))
    await gateway(client).read_by_email("warm@example.com")
    fake.state.calls.clear()
    fake.state.latency_s = 0.3
    first = asyncio.create_task(gateway(client).read_by_email("first@example.com"))
    await until(lambda: fake.state.in_flight("v4") == 1)
    hurried = gateway(client, deadline=time.monotonic() + 0.1)
    queued = asyncio.create_task(hurried.read_by_email("hurried@example.com"))
    await asyncio.sleep(0)
    after = asyncio.create_task(gateway(client).read_by_email("after@example.com"))

    with pytest.raises(DeadlineExceeded) as caught:
        await queued
    assert await first == [] and await after == []

    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    assert hurried.calls == []
    assert [read_email(c) for c in api_calls(fake)] == ["first@example.com", "after@example.com"]


async def test_the_budget_counts_what_pardot_counts(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    seeded = fake.state.add_prospect("v4", email="counted@example.com")
    client = make_client(oauth_config(fake, max_retries=1))
    pardot = gateway(client)
    await pardot.read_by_email("counted@example.com")
    await pardot.read_by_email("nobody@example.com")  # err 4: an answer, so a call
    await pardot.update_by_id(seeded["id"], {"first_name": "C"})
    fake.state.max_concurrency = 0  # every call is refused with err 66, and charged
    with pytest.raises(PardotError):
        await pardot.create("new@example.com", {})  # the first try and one retry
    fake.state.max_concurrency = 5
    await pardot.create("new@example.com", {})
    fake.state.expire_tokens()
    await pardot.read_by_email("counted@example.com")  # err 184 is not charged; retry is

    assert [c.err_code for c in api_calls(fake)] == [0, 4, 0, 66, 66, 0, 184, 0]
    budget = await client.budget()
    assert budget.used == fake.state.daily_calls("v4") == 7
    assert budget.limit == 25_000 and budget.remaining == 25_000 - 7
    assert not budget.exhausted


async def test_a_request_that_never_left_is_not_counted(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket is closed
    client = make_client(oauth_config(fake, pardot_url=f"http://127.0.0.1:{closed}"))
    pardot = gateway(client)
    with pytest.raises(PardotUnavailable):
        await pardot.read_by_email("a@example.com")
    assert [c.http_status for c in pardot.calls] == [0, 0, 0, 0]  # tried, never arrived
    assert (await client.budget()).used == 0


async def test_after_err_122_no_request_is_sent_until_the_accounts_next_day(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    client = make_client(oauth_config(fake, timezone="America/New_York"))
    await gateway(client).read_by_email("a@example.com")
    fake.state.daily_limit = 1  # spent: the next call gets err 122

    with pytest.raises(DailyLimitReached) as first:
        await gateway(client).create("a@example.com", {})
    calls_so_far = len(fake.state.calls)
    later = gateway(client)
    with pytest.raises(DailyLimitReached) as second:
        await later.read_by_email("a@example.com")

    for error in (first.value, second.value):
        assert error.code is StatusCode.RESOURCE_EXHAUSTED
        assert error.reason == "PARDOT_DAILY_LIMIT"
        assert error.metadata["err_code"] == "122"
        assert 0 < (error.retry_after or 0) <= 25 * 3600
        assert "America/New_York" in error.message
    assert later.calls == [] and len(fake.state.calls) == calls_so_far
    assert [c.err_code for c in api_calls(fake)] == [4, 122]  # err 122 was not retried
    budget = await client.budget()
    assert budget.exhausted and budget.remaining == 0
    assert budget.used == 1 == fake.state.daily_calls("v4")  # the refused call is not charged
    assert budget.exhausted_until == budget.resets_at
    assert str(budget.resets_at.tzinfo) == "America/New_York"


async def test_connections_to_one_account_share_its_budget(fake: FakePardot) -> None:
    connections = PardotConnections(
        {
            "default": oauth_config(fake),
            "second": oauth_config(fake, "second", daily_call_limit=1000),
        }
    )
    try:
        await (
            connections.get("default")
            .gateway(api_version=4, dry_run=False, deadline=None)
            .read_by_email("a@example.com")
        )
        await (
            connections.get("second")
            .gateway(api_version=4, dry_run=False, deadline=None)
            .read_by_email("a@example.com")
        )
        for name in ("default", "second"):
            budget = await connections.get(name).budget()
            assert (budget.used, budget.limit, budget.remaining) == (2, 1000, 998)
            assert budget.account == oauth_config(fake).business_unit_id
    finally:
        await connections.aclose()


def test_connections_to_one_account_must_agree_on_its_time_zone(fake: FakePardot) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        PardotConnections(
            {
                "default": oauth_config(fake, timezone="Europe/Paris"),
                "second": oauth_config(fake, "second"),
            }
        )
    assert "connections.second.timezone" in caught.value.message
    assert "connections.default.timezone" in caught.value.message


@pytest.mark.parametrize(
    ("setting", "value", "complaint"),
    [
        ("timezone", "Mars/Olympus", "IANA time zone name"),
        ("daily_call_limit", 0, "at least 1"),
        ("unconfirmed_create_hold_s", -1.0, "must not be negative"),
    ],
)
def test_budget_settings_are_checked_at_start(
    fake: FakePardot, setting: str, value: object, complaint: str
) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_connection(oauth_config(fake, **{setting: value}))
    assert f"connections.default.{setting}" in caught.value.message
    assert complaint in caught.value.message
    assert caught.value.reason == "CONNECTION_MISCONFIGURED"
