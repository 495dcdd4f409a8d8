"""The transport against fakepardot: retries only what is safe to retry, never more than
max_concurrency in flight, never past the deadline, and paths that cannot escape."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest
from grpc import StatusCode

from clients.connections import PardotConnections
from fakepardot import FakePardot
from strategies.core.errors import (
    DeadlineExceeded,
    PardotError,
    PardotUnavailable,
    PardotWriteUnconfirmed,
)

from .conftest import ClientFactory, api_calls, gateway, oauth_config, v3_config


def api_records(calls: list) -> list[tuple[int, int, int]]:  # (attempt, status, err_code)
    return [(c.attempt, c.http_status, c.err_code) for c in calls if c.path.startswith("/api/")]


@pytest.mark.parametrize(
    ("kind", "err_code", "failed_status"),
    [("html_502", None, 502), ("http_500", None, 500), ("err", 66, 200), ("empty_200", None, 200)],
)
async def test_transient_failures_are_retried_then_succeed(
    fake: FakePardot,
    make_client: ClientFactory,
    kind: str,
    err_code: int | None,
    failed_status: int,
) -> None:
    fake.state.add_prospect("v4", email="retry@example.com")
    pardot = gateway(make_client(oauth_config(fake)))
    fake.state.inject(kind, times=2, err_code=err_code, path_contains="/do/read/")

    found = await pardot.read_by_email("retry@example.com")

    assert [p.email for p in found] == ["retry@example.com"]
    assert api_records(pardot.calls) == [
        (1, failed_status, err_code or 0),
        (2, failed_status, err_code or 0),
        (3, 200, 0),
    ]


async def test_a_dropped_connection_is_retried_for_a_read(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake)))
    fake.state.inject("drop", times=1, path_contains="/do/read/")
    assert await pardot.read_by_email("a@example.com") == []
    assert api_records(pardot.calls) == [(1, 0, 0), (2, 400, 4)]  # nobody: HTTP 400 err 4


async def test_a_502_on_every_attempt_is_unavailable_after_max_retries(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake, max_retries=3)))
    fake.state.inject("html_502", times=50, path_contains="/do/read/")

    with pytest.raises(PardotUnavailable) as caught:
        await pardot.read_by_email("a@example.com")

    assert caught.value.code is StatusCode.UNAVAILABLE
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert [c[0] for c in api_records(pardot.calls)] == [1, 2, 3, 4]
    assert len(api_calls(fake)) == 4


async def test_an_empty_200_is_never_success(fake: FakePardot, make_client: ClientFactory) -> None:
    pardot = gateway(make_client(v3_config(fake, max_retries=1)))
    fake.state.inject("empty_200", times=50, path_contains="/do/upsert/")
    with pytest.raises(PardotUnavailable):
        await pardot.upsert_by_email("a@example.com", {"first_name": "A"})
    assert [c[1] for c in api_records(pardot.calls)] == [200, 200]


async def test_the_daily_limit_is_not_retried(fake: FakePardot, make_client: ClientFactory) -> None:
    pardot = gateway(make_client(oauth_config(fake)))
    fake.state.daily_limit = 0
    with pytest.raises(PardotError) as caught:
        await pardot.read_by_email("a@example.com")
    assert caught.value.err_code == 122
    assert caught.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert len(api_calls(fake)) == 1


async def test_a_create_is_not_resent_when_pardot_may_have_applied_it(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake)))
    fake.state.inject("html_502", times=1, path_contains="/do/create/")
    with pytest.raises(PardotWriteUnconfirmed) as caught:
        await pardot.create("once@example.com", {"first_name": "O"})
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert caught.value.reason == "PARDOT_WRITE_UNCONFIRMED"
    assert not caught.value.settled  # a proxy's page: Pardot's work may not be over
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert "not resent" in caught.value.message
    assert len(api_calls(fake)) == 1


async def test_a_create_refused_with_err_66_is_resent(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake)))
    fake.state.inject("err", times=1, err_code=66, path_contains="/do/create/")
    created = await pardot.create("busy@example.com", {"first_name": "B"})
    assert created.created and created.id is not None
    assert [p["email"] for p in fake.state.prospects("v4")] == ["busy@example.com"]
    assert api_records(pardot.calls) == [(1, 200, 66), (2, 200, 0)]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_create_that_never_left_is_resent(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    """Connection refused: the request provably did not reach Pardot."""
    config = oauth_config(fake, pardot_url=f"http://127.0.0.1:{closed_port()}", max_retries=2)
    pardot = gateway(make_client(config))
    with pytest.raises(PardotUnavailable):
        await pardot.create("a@example.com", {})
    assert api_records(pardot.calls) == [(1, 0, 0), (2, 0, 0), (3, 0, 0)]


async def test_plus_and_slashes_in_emails_are_encoded(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(v3_config(fake)))

    created = await pardot.upsert_by_email("a+b@example.com", {"first_name": "Plus"})
    found = await pardot.read_by_email("a+b@example.com")
    escaped = await pardot.read_by_email("x@example.com/../../login")

    assert created.email == "a+b@example.com"
    assert [p.id for p in found] == [created.id]
    assert [p["email"] for p in fake.state.prospects("v3")] == ["a+b@example.com"]
    assert escaped == []
    raw = [c.raw_path for c in api_calls(fake)]
    assert raw[0] == "/api/prospect/version/3/do/upsert/email/a%2Bb%40example.com"
    assert raw[2] == "/api/prospect/version/3/do/read/email/x%40example.com%2F..%2F..%2Flogin"
    assert fake.state.logins == 0


async def test_never_more_than_five_in_flight(fake: FakePardot, make_client: ClientFactory) -> None:
    client = make_client(oauth_config(fake))
    fake.state.latency_s = 0.02

    results = await asyncio.gather(
        *(gateway(client).read_by_email("a@example.com") for _ in range(30))
    )

    assert results == [[]] * 30
    assert len(api_calls(fake)) == 30
    assert [c for c in api_calls(fake) if c.err_code == 66] == []


async def test_the_concurrency_check_can_fail(fake: FakePardot, make_client: ClientFactory) -> None:
    """Control for the test above: a client allowed 8 in flight does trip the fake."""
    client = make_client(oauth_config(fake, max_concurrency=8))
    fake.state.latency_s = 0.05
    reads = (gateway(client).read_by_email("a@example.com") for _ in range(30))
    await asyncio.gather(*reads, return_exceptions=True)  # some may run out of retries
    assert [c for c in api_calls(fake) if c.err_code == 66] != []


async def test_a_slow_answer_stops_at_the_deadline(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot_client = make_client(oauth_config(fake))
    await gateway(pardot_client).read_by_email("warm@example.com")  # token fetched
    fake.state.inject("delay", times=1, delay_s=3.0, path_contains="/do/read/")
    pardot = gateway(pardot_client, deadline=time.monotonic() + 0.3)

    async with asyncio.timeout(2.5):  # far less than the 3 s delay: the deadline ended it
        with pytest.raises(DeadlineExceeded) as caught:
            await pardot.read_by_email("slow@example.com")

    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    assert api_records(pardot.calls) == [(1, 0, 0)]  # one attempt, no retry past it


async def test_no_request_starts_after_the_deadline(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake)), deadline=time.monotonic() - 1)
    with pytest.raises(DeadlineExceeded):
        await pardot.read_by_email("a@example.com")
    assert pardot.calls == [] and fake.state.calls == []


class _LongestBackoff(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


async def test_a_backoff_that_would_end_past_the_deadline_is_not_slept(
    fake: FakePardot,
) -> None:
    config = oauth_config(fake, backoff_base_s=30.0, backoff_max_s=30.0)
    connections = PardotConnections({"default": config}, rng=_LongestBackoff())
    client = connections.get("default")
    try:
        fake.state.inject("http_500", times=5, path_contains="/do/read/")
        pardot = gateway(client, deadline=time.monotonic() + 5)
        async with asyncio.timeout(4):
            with pytest.raises(PardotUnavailable):
                await pardot.read_by_email("a@example.com")
        assert api_records(pardot.calls) == [(1, 500, 0)]
    finally:
        await connections.aclose()


async def test_a_request_timeout_is_retried_for_a_read(
    fake: FakePardot, make_client: ClientFactory
) -> None:
    pardot = gateway(make_client(oauth_config(fake, timeout_s=0.1)))
    await pardot.read_by_email("warm@example.com")
    fake.state.inject("delay", times=1, delay_s=0.5, path_contains="/do/read/")
    assert await pardot.read_by_email("a@example.com") == []
    assert [c[:2] for c in api_records(pardot.calls)] == [(1, 400), (1, 0), (2, 400)]
