"""The daily budget on its own, with a clock the test moves: the account's day ends at
midnight in its time zone, err 122 makes the account fail fast until then, and the
count starts again with the new day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from grpc import StatusCode
from structlog.testing import capture_logs

from clients.budget import DailyBudget, account_zone, next_midnight
from clients.state.budget import MemoryBudgetMark
from strategies.core.errors import DailyLimitReached, PardotError

LA = ZoneInfo("America/Los_Angeles")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def refused() -> PardotError:
    return PardotError(122, "Daily API rate limit met")


def test_the_next_midnight_is_the_account_zones() -> None:
    now = datetime(2024, 6, 1, 22, 30, tzinfo=UTC)  # 15:30 in Los Angeles (PDT, UTC-7)
    assert next_midnight(now, UTC) == datetime(2024, 6, 2, tzinfo=UTC)
    la = next_midnight(now, LA)
    assert la == datetime(2024, 6, 2, tzinfo=LA)
    assert la.astimezone(UTC) == datetime(2024, 6, 2, 7, tzinfo=UTC)
    # 06:30 UTC is still the evening before in Los Angeles: midnight is ~30 min away.
    assert next_midnight(datetime(2024, 6, 2, 6, 30, tzinfo=UTC), LA) == la


async def test_the_wait_until_midnight_counts_real_seconds_across_a_dst_change() -> None:
    # 2024-03-10 is 23 hours long in Los Angeles (clocks jump from 02:00 to 03:00).
    clock = Clock(datetime(2024, 3, 10, 0, 0, tzinfo=LA).astimezone(UTC))
    budget = DailyBudget(
        MemoryBudgetMark(), account="bu", limit=10, timezone="America/Los_Angeles", clock=clock
    )

    error = await budget.exhaust("default", refused())

    assert error.retry_after == pytest.approx(23 * 3600)
    assert error.code is StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "PARDOT_DAILY_LIMIT"
    assert error.metadata == {"err_code": "122"}
    assert "America/Los_Angeles" in error.message


async def test_err_122_makes_the_account_fail_fast_until_its_midnight() -> None:
    clock = Clock(datetime(2024, 6, 1, 20, 0, tzinfo=UTC))
    budget = DailyBudget(MemoryBudgetMark(), account="bu", limit=100, timezone="UTC", clock=clock)
    await budget.check("default")  # nothing refused yet
    await budget.exhaust("default", refused())

    clock.advance(hours=3)
    with pytest.raises(DailyLimitReached) as caught:
        await budget.check("default")
    assert caught.value.retry_after == pytest.approx(3600)
    snapshot = await budget.snapshot()
    assert snapshot.exhausted and snapshot.remaining == 0
    assert snapshot.exhausted_until == datetime(2024, 6, 2, tzinfo=UTC)

    clock.advance(hours=1)  # the account's next day
    await budget.check("default")
    assert not (await budget.snapshot()).exhausted


async def test_the_count_resets_at_the_accounts_midnight_not_utcs() -> None:
    clock = Clock(datetime(2024, 6, 1, 23, 0, tzinfo=UTC))  # 16:00 in Los Angeles
    budget = DailyBudget(
        MemoryBudgetMark(), account="bu", limit=5, timezone="America/Los_Angeles", clock=clock
    )
    await budget.count()
    await budget.count()

    clock.advance(hours=2)  # past UTC midnight, still June 1st in Los Angeles
    assert ((await budget.snapshot()).used, (await budget.snapshot()).remaining) == (2, 3)

    clock.advance(hours=6)  # 07:00 UTC = midnight in Los Angeles
    snapshot = await budget.snapshot()
    assert (snapshot.used, snapshot.limit, snapshot.remaining) == (0, 5, 5)
    assert snapshot.resets_at == datetime(2024, 6, 3, tzinfo=LA)


async def test_the_remaining_budget_is_logged_as_it_runs_low() -> None:
    clock = Clock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    budget = DailyBudget(MemoryBudgetMark(), account="0Uv000000000001CAA", limit=10, clock=clock)
    with capture_logs() as logs:
        for _ in range(10):
            await budget.count()
        await budget.exhaust("default", refused())
        clock.advance(days=1)
        await budget.check("default")

    events = [(e["event"], e.get("share"), e["log_level"]) for e in logs]
    assert events == [
        ("pardot.budget", 0.5, "info"),
        ("pardot.budget", 0.8, "info"),
        ("pardot.budget", 0.9, "warning"),
        ("pardot.budget", 1.0, "warning"),
        ("pardot.budget_exhausted", None, "warning"),
        ("pardot.budget_reset", None, "info"),
    ]
    assert logs[2]["remaining"] == 1 and logs[2]["account"] == "0Uv000000000001CAA"


def test_time_zone_names_are_checked() -> None:
    assert account_zone("UTC") is UTC
    assert account_zone("Europe/Paris") == ZoneInfo("Europe/Paris")
    for wrong in ("Mars/Olympus", "EST5EDT/../x", ""):
        with pytest.raises(ValueError, match="IANA time zone name"):
            account_zone(wrong)
