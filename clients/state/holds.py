"""Creates in doubt, in this process: ``clients.state.protocols.CreateHolds`` for the
embedded backend (one process).

A v4 ``create`` is the one prospect write that is not safe to repeat: every send makes
a new prospect. When one times out or its connection drops after sending, Pardot may
be creating it still. The caller's retry then reads by email first (the strategies
do) and updates what it finds; but if it reads before Pardot has finished, it finds
nothing and would create a second prospect. So, for ``hold_s`` after such a failure,
``clients.gateway`` sends no other create for that email: the retry fails again with
PARDOT_WRITE_UNCONFIRMED (UNAVAILABLE, RetryInfo) until a read finds the prospect or
the hold ends (then the first create is taken to be lost, and a create is sent).

In memory, one store per connection: replicas sharing an identity map need the Redis
backend's shared holds instead (the same limit as the per-person locks). Keys are
emails as Pardot matches them (case insensitive). It never talks to the network and
never sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class MemoryCreateHolds:
    def __init__(self, hold_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold_s = hold_s
        self._clock = clock
        self._until: dict[str, float] = {}

    def hold(self, email: str) -> None:
        """A create for ``email`` went unanswered just now."""
        now = self._clock()
        for key in [k for k, until in self._until.items() if until <= now]:
            del self._until[key]  # bounded by the failures of the last hold_s
        if self.hold_s > 0:
            self._until[_key(email)] = now + self.hold_s

    def remaining(self, email: str) -> float:
        """Seconds left in ``email``'s hold; 0.0 when it has none."""
        key = _key(email)
        until = self._until.get(key)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[key]
            return 0.0
        return left

    def __len__(self) -> int:
        return len(self._until)


def _key(email: str) -> str:
    return email.strip().lower()
