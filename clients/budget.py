"""The daily API budget of one Pardot account: what has been spent today, and whether
Pardot has said the day's budget is gone (err 122).

Pardot counts API calls per account per day and resets the count at midnight in the
account's time zone (PARDOT_API.md, "Limits"). This module keeps the same count for
the calls the service sends, so an operator can see the remaining budget, and, once
Pardot answers err 122, refuses every call on the account until that midnight, so a
spent account costs no requests at all (peers that retried err 122 kept hammering).

What counts (``count()`` is called by ``clients.transport`` for each attempt): every
API request that may have reached Pardot, whatever it answered — an error envelope, a
timeout, a proxy's page. Not counted: a request that provably never left (connection
refused), an answer of err 122 (Pardot refused it for the budget), a token Pardot
refused (err 184 / 1: no account to charge), OAuth token requests (Salesforce, not
Pardot) and legacy logins. So the count is an upper bound of Pardot's for the
processes that share its mark (with the embedded backend: this one; other replicas
spend the same budget unseen), and Pardot's err 122 stays the authority. The
configured ``daily_call_limit`` is never enforced here: a wrong limit must not stop an
account that Pardot still serves.

This module is the policy: the account's calendar (which day it is, when it ends), the
``pardot.budget`` log thresholds and the errors. The count and the exhausted-until mark
are state, kept per account day by a ``clients.state.protocols.BudgetMark`` (in this
process with the embedded backend, ``clients.state.budget``).

It never sleeps, never calls Pardot, and holds no secrets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from clients import metrics
from clients.state.protocols import BudgetMark
from strategies.core.errors import DailyLimitReached, PardotError

log = structlog.get_logger("clients")

#: Shares of the limit at which a ``pardot.budget`` event is logged, once a day each.
LOG_AT_SHARES = (0.5, 0.8, 0.9, 1.0)
#: From this share on, the event is a warning.
WARN_AT_SHARE = 0.9

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def account_zone(name: str) -> tzinfo:
    """The tzinfo for an IANA time zone name; raises ValueError naming the problem.
    "UTC" needs no time zone database, so the default works on any system."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'must be an IANA time zone name such as "America/New_York", not {name!r} '
            "(if the name is right, this system lacks the time zone database: install "
            "the tzdata package)"
        ) from None


def next_midnight(now: datetime, zone: tzinfo) -> datetime:
    """The first midnight after ``now`` in ``zone``, as an aware datetime in ``zone``.
    Where a zone skips midnight (a DST change at 00:00) the wall-clock time that
    follows the gap is meant; either way it is the start of the zone's next day."""
    local_day = now.astimezone(zone).date()
    return datetime.combine(local_day + timedelta(days=1), time(0), tzinfo=zone)


@dataclass(frozen=True)
class BudgetSnapshot:
    """One account's daily budget as its mark tells it (see the module docstring
    for what ``used`` counts). ``resets_at`` is the account's next midnight, in its
    time zone; ``exhausted_until`` is set after Pardot's err 122, until that midnight."""

    account: str
    used: int
    limit: int
    remaining: int
    resets_at: datetime
    exhausted_until: datetime | None

    @property
    def exhausted(self) -> bool:
        return self.exhausted_until is not None


class DailyBudget:
    """One Pardot account's day: calls counted, and the fail-fast state after err 122,
    both kept in ``mark``. Shared by every connection name that reaches the account
    (like the limiter)."""

    def __init__(
        self,
        mark: BudgetMark,
        *,
        account: str,
        limit: int,
        timezone: str = "UTC",
        clock: Clock = utc_now,
    ) -> None:
        self.account = account
        self.limit = limit
        self.timezone = timezone
        self._zone = account_zone(timezone)
        self._clock = clock
        self._mark = mark
        #: The account day this process last looked at (for the reset's log event).
        self._day: date = self._local_day(clock())
        self._logged_shares: set[float] = set()

    @property
    def remote(self) -> bool:
        """Whether :meth:`check` waits for the network (the mark is shared)."""
        return self._mark.remote

    async def check(self, connection: str) -> None:
        """Raise DailyLimitReached while the account is exhausted; else do nothing.
        On every request: one read of the mark (and a second only when the account's
        day changed since the last look)."""
        now = self._clock()
        today = self._local_day(now)
        if today != self._day:
            await self._roll(today)
        await self._refuse_if_spent(connection, self._mark.exhausted_until(today), now)

    def check_soon(self, connection: str) -> Coroutine[Any, Any, None]:
        """:meth:`check`, with the mark's read asked for now and its answer awaited
        later: a shared mark carries the read with the next script that goes (the
        slot's enter, ``clients.state.redis.budget``), without a task of its own. A
        new account day takes :meth:`check`'s path."""
        now = self._clock()
        today = self._local_day(now)
        if today != self._day:
            return self.check(connection)
        return self._refuse_if_spent(connection, self._mark.exhausted_until(today), now)

    async def _refuse_if_spent(
        self, connection: str, reading: Awaitable[datetime | None], now: datetime
    ) -> None:
        until = await reading
        if until is None:
            return
        raise DailyLimitReached(
            f"Pardot's daily API limit for connection {connection!r} is used up (err 122 "
            f"earlier today); no call is sent until midnight {self.timezone} "
            f"({until.isoformat()})",
            retry_after=self._seconds_until(until, now),
        )

    async def count(self) -> None:
        """One API request that may have reached Pardot: one write to the mark (more
        only when a log threshold is crossed or the day changed)."""
        today = self._local_day(self._clock())
        if today != self._day:
            await self._roll(today)
        used = await self._mark.count(today)
        metrics.daily_calls(self.account, used=used, limit=self.limit)
        for share in LOG_AT_SHARES:
            if share not in self._logged_shares and used >= share * self.limit:
                self._logged_shares.add(share)
                await self._log("pardot.budget", warn=share >= WARN_AT_SHARE, share=share)

    async def exhaust(self, connection: str, refused: PardotError) -> DailyLimitReached:
        """Pardot answered err 122: fail fast until the account's next midnight."""
        now = self._clock()
        until = next_midnight(now, self._zone)
        await self._mark.exhaust(await self._today(now), until)
        await self._log("pardot.budget_exhausted", warn=True, connection=connection)
        return DailyLimitReached(
            f"Pardot's daily API limit for connection {connection!r} is used up (err 122: "
            f"{refused.text}); no call is sent until midnight {self.timezone} "
            f"({until.isoformat()})",
            retry_after=self._seconds_until(until, now),
            text=refused.text,
        )

    async def snapshot(self) -> BudgetSnapshot:
        now = self._clock()
        today = await self._today(now)
        used = await self._mark.used(today)
        exhausted_until = await self._mark.exhausted_until(today)
        return BudgetSnapshot(
            account=self.account,
            used=used,
            limit=self.limit,
            remaining=0 if exhausted_until is not None else max(self.limit - used, 0),
            resets_at=next_midnight(now, self._zone),
            exhausted_until=exhausted_until,
        )

    async def _today(self, now: datetime) -> date:
        """The account's day at ``now``, rolled over to (:meth:`_roll`) if it is new."""
        today = self._local_day(now)
        if today != self._day:
            await self._roll(today)
        return today

    async def _roll(self, today: date) -> None:
        """A new day since the last look: logged (when the last one spent anything), and
        the log thresholds start again. Callers on the hot path compare the day
        themselves, so an ordinary request awaits nothing here."""
        day = self._day
        self._day = today
        self._logged_shares.clear()
        if await self._mark.used(day) or await self._mark.exhausted_until(day) is not None:
            await self._log(
                "pardot.budget_reset", warn=False, day=day, previous_day=day.isoformat()
            )

    def _local_day(self, now: datetime) -> date:
        return now.astimezone(self._zone).date()

    @staticmethod
    def _seconds_until(when: datetime, now: datetime) -> float:
        # Aware datetimes in different zones subtract as instants; convert both to UTC
        # anyway, since two values in the SAME zone would subtract as wall-clock times.
        return max((when.astimezone(UTC) - now.astimezone(UTC)).total_seconds(), 0.0)

    async def _log(
        self, event: str, *, warn: bool, day: date | None = None, **fields: object
    ) -> None:
        """Logs ``event`` with the budget of ``day`` (by default the current one)."""
        day = self._day if day is None else day
        used = await self._mark.used(day)
        exhausted = await self._mark.exhausted_until(day) is not None
        emit = log.warning if warn else log.info
        emit(
            event,
            account=self.account,
            used=used,
            limit=self.limit,
            remaining=0 if exhausted else max(self.limit - used, 0),
            resets_at=next_midnight(self._clock(), self._zone).isoformat(),
            **fields,
        )
