"""Contract: per-account limits (PARDOT_API.md, "Limits") — at most 5 requests in
flight (err 66) and a daily call budget (err 122)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx

from fakepardot import FakePardot
from support.waiting import until

if TYPE_CHECKING:
    from tests.fakepardot.conftest import Pardot

CONCURRENCY_TEXT = (
    "You have exceeded your concurrent request limit.  Please wait, before trying again"
)


async def _burst(fake: FakePardot, requests: list[Pardot]) -> list[dict[str, Any]]:
    """Send every request at once (one connection each) and return the JSON answers."""
    async with httpx.AsyncClient(base_url=fake.url, timeout=5.0) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"/api/prospect/version/{p.version}/do/query",
                    data={"format": "json"},
                    headers=p.headers,
                )
                for p in requests
            )
        )
    return [r.json() for r in responses]


def _err_codes(documents: list[dict[str, Any]]) -> list[int]:
    return sorted(d["@attributes"].get("err_code", 0) for d in documents)


async def test_sixth_request_in_flight_gets_err_66(v4: Pardot, fake: FakePardot) -> None:
    fake.state.latency_s = 0.2
    documents = await _burst(fake, [v4] * 8)
    assert _err_codes(documents) == [0] * 5 + [66] * 3
    refused = [d for d in documents if d["@attributes"]["stat"] == "fail"]
    assert {d["err"] for d in refused} == {CONCURRENCY_TEXT}
    assert fake.state.in_flight("v4") == 0


async def test_max_concurrency_switch(v4: Pardot, fake: FakePardot) -> None:
    fake.state.latency_s = 0.2
    fake.state.max_concurrency = 1
    assert _err_codes(await _burst(fake, [v4] * 3)) == [0, 66, 66]


async def test_concurrency_limit_is_per_account(v4: Pardot, v3: Pardot, fake: FakePardot) -> None:
    fake.state.latency_s = 0.2
    documents = await _burst(fake, [v4] * 5 + [v3] * 5)
    assert _err_codes(documents) == [0] * 10


async def test_requests_after_the_burst_are_served_again(v4: Pardot, fake: FakePardot) -> None:
    fake.state.latency_s = 0.1
    await _burst(fake, [v4] * 7)
    assert _err_codes(await _burst(fake, [v4] * 5)) == [0] * 5


def test_daily_limit_answers_err_122(v4: Pardot, v3: Pardot, fake: FakePardot) -> None:
    fake.state.daily_limit = 3
    for _ in range(3):
        v4.ok("query")
    assert v4.fails(122, "query") == "Daily API rate limit met"
    assert fake.state.daily_calls("v4") == 3
    v3.ok("query")  # another account has its own budget


def test_daily_limit_is_unlimited_by_default(v4: Pardot, fake: FakePardot) -> None:
    for _ in range(30):
        v4.ok("query")
    assert fake.state.daily_calls("v4") == 30


async def test_held_answers_keep_their_slot_until_let_go(v4: Pardot, fake: FakePardot) -> None:
    """``answers_held``: a test decides when the fake answers (no timing in the test)."""
    fake.state.answers_held = True
    burst = asyncio.ensure_future(_burst(fake, [v4] * 6))
    await until(lambda: fake.state.in_flight("v4") == 5)
    await asyncio.sleep(0.05)  # a held answer never comes by itself…
    assert not burst.done() and fake.state.in_flight("v4") == 5
    fake.state.answers_held = False  # …and comes once let go
    assert _err_codes(await burst) == [0] * 5 + [66]
    assert fake.state.in_flight("v4") == 0
