"""The state backends under test, for tests written against ``clients.state.protocols``.

A test that takes a ``state`` fixture (tests/clients/test_state.py, tests/server/conftest.py)
runs once per backend named in its parameters; a second backend (Redis) joins by one
name here and one branch in :meth:`StateUnderTest.client_state` (and in ``responses``,
for its message_id records).

- "sqlite": the embedded backend (``clients.state.local.LocalState``) under a test
  folder: stores opened twice share their data, as two processes on one state_dir do
  (the identity map, the message_id records; its other kinds live in this process).
- "memory": ``clients.state.local.MemoryState``, every kind in this process; every
  store opened is a new, empty one, and it keeps no message_id records.
- "redis": ``clients.state.redis.state.RedisState`` on the session's real redis-server
  (``support.redis_server``), under a key prefix of the test's own: every kind shared,
  as replicas share it.

Time comes from :class:`FakeClocks` (``StateUnderTest.clocks``): the host's wall clock,
which a test steps as an operator or NTP would, and the clock since boot, which only
runs; every store a test opens reads the same ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from clients.state.local import IDEMPOTENCY_FILE, LocalState, MemoryState
from clients.state.protocols import (
    BudgetMark,
    ConcurrencySlots,
    CreateHolds,
    IdentityStore,
    PersonLocks,
    ResponseRecords,
    Suppressions,
    TokenStore,
)
from clients.state.redis.state import RedisState
from clients.state.responses import GROUP_COMMIT_S, ResponseStore
from support.redis_server import fresh_prefix, session_server

#: The backends of the identity map and the per-person locks.
BACKENDS = ("sqlite", "memory", "redis")
#: The backends that keep message_id records.
RECORD_BACKENDS = ("sqlite", "redis")


class FakeClocks:
    """``clients.state.clock.HostClocks`` that a test drives: :meth:`advance` lets time
    pass (both clocks run), :meth:`step` moves the wall clock alone (an operator, NTP
    after a drift), :meth:`reboot` starts the machine's clock since boot again."""

    def __init__(self, wall: float = 1_700_000_000.0) -> None:
        self.now = wall
        self.since_boot = 1_000.0
        self.boot_id = "boot-1"
        self._boots = 1

    def wall(self) -> float:
        return self.now

    def elapsed(self) -> float:
        return self.since_boot

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.since_boot += seconds

    def step(self, seconds: float) -> None:
        self.now += seconds

    def reboot(self) -> None:
        self._boots += 1
        self.boot_id = f"boot-{self._boots}"
        self.since_boot = 5.0


class StateUnderTest:
    """Opens each kind of state of ``backend``; :meth:`close` closes whatever it opened."""

    def __init__(self, backend: str, state_dir: Path) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown state backend {backend!r}")
        self.backend = backend
        self.state_dir = state_dir
        #: The host's clocks every store of this test reads.
        self.clocks = FakeClocks()
        self._redis: RedisState | None = None
        self._opened: list[
            IdentityStore | ResponseRecords | TokenStore | CreateHolds | Suppressions
        ] = []

    @property
    def redis(self) -> RedisState:
        """The redis backend of this test (one client, the test's own key prefix)."""
        if self._redis is None:
            self._redis = RedisState(
                session_server().url, key_prefix=fresh_prefix(), clocks=self.clocks
            )
        return self._redis

    def drives_time(self) -> None:
        """Skips the test on a backend whose time :attr:`clocks` cannot drive: Redis
        counts windows, holds and leases on its own clock (``TIME``, key expiry), which
        a test can neither advance nor step. tests/clients/test_redis_records.py holds
        those guarantees on Redis's clock."""
        if self.backend == "redis":
            pytest.skip("Redis counts this time on its own clock, which a test cannot drive")

    def paces_commits(self) -> None:
        """Skips the test on a backend without the SQLite store's commit pacing
        (``group_commit_s``, a synchronous ``commit()``): Redis acknowledges each write."""
        if self.backend == "redis":
            pytest.skip("commit pacing is the SQLite store's; Redis acknowledges each write")

    @property
    def shared(self) -> bool:
        """Whether a store opened again sees what an earlier one stored (a restart,
        another process)."""
        return self.backend != "memory"

    def client_state(self) -> LocalState | MemoryState | RedisState:
        """The backend itself, as ``clients.connections.PardotConnections`` takes it."""
        if self.backend == "redis":
            return self.redis
        if self.backend == "sqlite":
            return LocalState(self.state_dir, clocks=self.clocks)
        return MemoryState(clocks=self.clocks)

    def identity(self) -> IdentityStore:
        store = self.client_state().identity()
        self._opened.append(store)
        return store

    def person_locks(self) -> PersonLocks:
        return self.client_state().person_locks()

    def suppressions(self, key: bytes | None = None) -> Suppressions:
        store = self.client_state().suppressions(key)
        self._opened.append(store)
        return store

    def create_holds(self, connection: str = "default", *, hold_s: float) -> CreateHolds:
        store = self.client_state().create_holds(connection, hold_s=hold_s)
        self._opened.append(store)
        return store

    def budget_mark(self, account: str = "0Uv000000000001CAA") -> BudgetMark:
        return self.client_state().budget_mark(account)

    def slots(self, limit: int, account: str = "0Uv000000000001CAA") -> ConcurrencySlots:
        return self.client_state().slots(account, limit)

    async def queued(self, waiters: int, account: str = "0Uv000000000001CAA") -> None:
        """Until the backend's queue of ``account``'s slots holds ``waiters``: a waiter
        of a shared backend is in line only once its entry reached Redis (the order
        among entries still on their way is not the queue's to keep), and a cancelled
        one leaves it a round trip later. In-process slots queue at once."""
        if self.backend != "redis":
            return
        ctx = self.redis.context
        key = ctx.key("slots", account, "queue")
        async with asyncio.timeout(5):
            while await ctx.client.zcard(key) != waiters:  # noqa: ASYNC110 - Redis's queue
                await asyncio.sleep(0.005)

    def tokens(self, connection: str = "default") -> TokenStore:
        store = self.client_state().tokens(connection)
        self._opened.append(store)
        return store

    def responses(
        self, *, window_s: float = 60.0, group_commit_s: float = GROUP_COMMIT_S
    ) -> ResponseRecords:
        """The message_id records, on :attr:`clocks`; ``group_commit_s`` stands in for
        the backend's commit pacing."""
        if self.backend not in RECORD_BACKENDS:
            pytest.skip(f"the {self.backend} backend keeps no message_id records")
        if self.backend == "redis":
            records = self.redis.responses(window_s=window_s)
            self._opened.append(records)
            return records
        store = ResponseStore(
            self.state_dir / IDEMPOTENCY_FILE,
            window_s=window_s,
            clocks=self.clocks,
            group_commit_s=group_commit_s,
        )
        self._opened.append(store)
        return store

    async def aclose(self) -> None:
        """Closes every store this test opened, then the backend's client."""
        for store in reversed(self._opened):
            store.close()
        self._opened.clear()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def state_fixture(backends: tuple[str, ...]) -> Any:
    """A ``state`` fixture over ``backends``, for a test module or conftest to bind:
    ``state = state_fixture(BACKENDS)``. Each test gets a :class:`StateUnderTest` under
    its own folder, closed after it."""

    @pytest.fixture(params=backends, name="state")
    async def state(
        request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[StateUnderTest]:
        opened = StateUnderTest(request.param, tmp_path / "state")
        try:
            yield opened
        finally:
            await opened.aclose()

    return state
