"""The Redis backend as a whole: what ``server.app.open_state`` returns for
``server.state = "redis"``. It hands out one store per kind (each module of this package
implements one protocol of ``clients.state.protocols``) over one shared client.

Unlike the embedded backend, asking twice for one account or connection gives two views
of the same state: that is the point (every replica asks, and they share).
"""

from __future__ import annotations

import contextlib

import redis

from clients.state.clock import SYSTEM_CLOCKS, HostClocks
from clients.state.health import StateHealth
from clients.state.protocols import (
    BudgetMark,
    ConcurrencySlots,
    CreateHolds,
    IdentityStore,
    PersonLocks,
    ResponseRecords,
    Suppressions,
    TokenStore,
    WrittenFields,
)
from clients.state.redis.budget import RedisBudgetMark
from clients.state.redis.context import RedisContext, open_client
from clients.state.redis.holds import RedisCreateHolds
from clients.state.redis.identity import RedisIdentityStore
from clients.state.redis.locks import RedisPersonLocks
from clients.state.redis.responses import RedisResponseRecords
from clients.state.redis.slots import RedisSlots
from clients.state.redis.suppressions import RedisSuppressions
from clients.state.redis.tokens import RedisTokenStore
from clients.state.redis.written import RedisWrittenFields, WrittenRides
from strategies.core.errors import StateUnwritable


def ping_probe(url: str, *, timeout_s: float) -> None:
    """The health probe: a PING on a connection of its own (it runs in a worker thread,
    ``clients.state.health``), raising while Redis does not answer."""
    probe = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        probe.ping()
    finally:
        probe.close()


class RedisState:
    """Every kind of state in the Redis at ``url``, under ``key_prefix``."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "prospectsync:",
        timeout_s: float = 0.5,
        health: StateHealth | None = None,
        clocks: HostClocks = SYSTEM_CLOCKS,
    ) -> None:
        #: The host's wall clock, for what is compared with Pardot's timestamps (when an
        #: attempt began); every window, hold and lease runs on Redis's own clock.
        self.clocks = clocks
        self.health = health or StateHealth(lambda: ping_probe(url, timeout_s=timeout_s))
        self.context = RedisContext(
            open_client(url, timeout_s=timeout_s), key_prefix, self.health, timeout_s=timeout_s
        )
        #: The message_id records handed out: their last writes land before the client
        #: closes (:meth:`aclose`).
        self._records: list[RedisResponseRecords] = []
        #: The memory of writes' HSETs waiting to ride the identity map's scripts.
        self._written_rides = WrittenRides(self.context)
        #: The slots and budget marks handed out: their leaves and counts land before
        #: the client closes.
        self._slots: list[RedisSlots] = []
        #: One mark per account: its reads and counts ride with that account's slots.
        self._marks: dict[str, RedisBudgetMark] = {}

    def identity(self) -> IdentityStore:
        return RedisIdentityStore(self.context, self._written_rides)

    def written(self) -> WrittenFields:
        return RedisWrittenFields(self.context, self._written_rides)

    def person_locks(self) -> PersonLocks:
        return RedisPersonLocks(self.context)

    def responses(self, *, window_s: float) -> ResponseRecords:
        records = RedisResponseRecords(self.context, window_s=window_s, clocks=self.clocks)
        self._records.append(records)
        return records

    def suppressions(self, key: bytes | None = None) -> Suppressions:
        return RedisSuppressions(self.context, key)

    def create_holds(self, connection: str, *, hold_s: float) -> CreateHolds:
        return RedisCreateHolds(self.context, connection, hold_s=hold_s)

    def budget_mark(self, account: str) -> BudgetMark:
        return self._mark(account)

    def _mark(self, account: str) -> RedisBudgetMark:
        if account not in self._marks:
            self._marks[account] = RedisBudgetMark(self.context, account)
        return self._marks[account]

    def slots(self, account: str, limit: int) -> ConcurrencySlots:
        slots = RedisSlots(self.context, account, limit, budget=self._mark(account))
        self._slots.append(slots)
        return slots

    def tokens(self, connection: str) -> TokenStore:
        return RedisTokenStore(self.context, connection)

    async def aclose(self) -> None:
        """Waits for the records' writes, the slots' leaves and the counts under way,
        then closes the shared client (the stores' close() release what is theirs)."""
        for records in self._records:
            await records.drain()
        for slots in self._slots:
            await slots.drain()
        for mark in self._marks.values():
            with contextlib.suppress(StateUnwritable):  # reported: Redis is away
                await mark.drain()
            mark.close()
        await self.context.client.aclose()
