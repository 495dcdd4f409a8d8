"""An account's daily budget state, in this process: ``clients.state.protocols.BudgetMark``
for the embedded backend (one process).

It holds what ``clients.budget.DailyBudget`` used to keep in itself: the calls counted
on the account's current day and the exhausted-until mark Pardot's err 122 sets. Only
the latest day told of is kept: a call on another day starts that day from nothing
(the count resets at the account's midnight), and an earlier day then reads as nothing
spent. Which day it is, the thresholds and the errors are ``clients.budget``'s.

In memory: other replicas spend the same budget unseen (the Redis backend shares the
count). It never sleeps and never talks to the network.
"""

from __future__ import annotations

from datetime import date, datetime


class MemoryBudgetMark:
    """One account's day in this process's memory."""

    remote = False

    def __init__(self) -> None:
        self._day: date | None = None
        self._used = 0
        self._exhausted_until: datetime | None = None

    async def count(self, day: date) -> int:
        if day != self._day:
            self._start(day)
        self._used += 1
        return self._used

    async def used(self, day: date) -> int:
        return self._used if day == self._day else 0

    async def exhaust(self, day: date, until: datetime) -> None:
        if day != self._day:
            self._start(day)
        self._exhausted_until = until

    async def exhausted_until(self, day: date) -> datetime | None:
        return self._exhausted_until if day == self._day else None

    def _start(self, day: date) -> None:
        self._day = day
        self._used = 0
        self._exhausted_until = None
