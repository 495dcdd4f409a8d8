"""The embedded state backends: what one process needs, and what the service runs with
today. :class:`LocalState` keeps the identity map, the message_id records and the
creates in doubt in SQLite files under ``server.state_dir``; :class:`MemoryState` keeps
everything in memory (connections built without a backend: tests, tools). Both keep
the rest in this process: the per-person locks, the daily budget marks, the
concurrency slots and the tokens. Durable times are on ``clients.state.clock`` (the
host's clocks, which tests drive through ``clocks``).

Each opens a kind of state on demand, so a caller opens only what it uses (a backfill
run needs the identity map, never the message_id records). Whoever asks for a store
owns it and closes it. The in-process kinds are new and independent on every call:
ask once per account or connection (``clients.connections`` does).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from clients.state.budget import MemoryBudgetMark
from clients.state.clock import SYSTEM_CLOCKS, HostClocks
from clients.state.health import StateHealth
from clients.state.holds import MemoryCreateHolds, SqliteCreateHolds
from clients.state.identity import MemoryIdentityStore, SqliteIdentityStore
from clients.state.local_db import probe_folder
from clients.state.locks import KeyedLocks
from clients.state.protocols import (
    BudgetMark,
    ConcurrencySlots,
    CreateHolds,
    IdentityStore,
    PersonLocks,
    ResponseRecords,
    StateUnavailable,
    Suppressions,
    TokenStore,
    WrittenFields,
)
from clients.state.responses import ResponseStore
from clients.state.slots import process_slots
from clients.state.suppressions import MemorySuppressions, SqliteSuppressions
from clients.state.tokens import MemoryTokenStore
from clients.state.written import MemoryWrittenFields, SqliteWrittenFields

#: The identity map's file inside ``server.state_dir``.
IDENTITY_FILE = "identity.sqlite3"
#: The message_id records' file inside ``server.state_dir``.
IDEMPOTENCY_FILE = "idempotency.sqlite3"
#: The creates in doubt's file inside ``server.state_dir``.
HOLDS_FILE = "create-holds.sqlite3"
#: The memory of writes' file inside ``server.state_dir`` (``skip_unchanged``).
WRITTEN_FILE = "written.sqlite3"
#: The suppressions' file (Forget) inside ``server.state_dir``, and their HMAC key's.
SUPPRESSIONS_FILE = "suppressions.sqlite3"
SUPPRESSION_KEY_FILE = "suppression.key"


class InProcessState:
    """The kinds both embedded backends keep in this process: enough while one process
    serves (their premise). Each call gives a new, independent store."""

    def __init__(self, *, clocks: HostClocks = SYSTEM_CLOCKS) -> None:
        self.clocks = clocks

    def person_locks(self) -> PersonLocks:
        return KeyedLocks()

    def create_holds(self, connection: str, *, hold_s: float) -> CreateHolds:
        """The creates in doubt of ``connection``, each held ``hold_s`` seconds."""
        del connection  # one store per connection: the name is not needed in it
        return MemoryCreateHolds(hold_s, clocks=self.clocks)

    def budget_mark(self, account: str) -> BudgetMark:
        del account
        return MemoryBudgetMark()

    def slots(self, account: str, limit: int) -> ConcurrencySlots:
        """At most ``limit`` requests in flight, calls under way first
        (``clients.state.slots``)."""
        return process_slots(limit, account)

    def tokens(self, connection: str) -> TokenStore:
        del connection
        return MemoryTokenStore()

    async def aclose(self) -> None:
        """Nothing to close: each store opened here is its owner's to close, and
        nothing else is held (``clients.state.protocols.ServiceState`` asks for it
        because the shared backend keeps one client for all its stores)."""


class LocalState(InProcessState):
    """The stores of the embedded backend, under ``state_dir``. Opening one creates
    the folder and its file as needed; one that cannot be opened raises
    StateUnavailable naming the file."""

    def __init__(
        self,
        state_dir: Path,
        *,
        health: StateHealth | None = None,
        clocks: HostClocks = SYSTEM_CLOCKS,
    ) -> None:
        super().__init__(clocks=clocks)
        self.state_dir = state_dir
        #: Whether its files can be written now: every store it opens reports here.
        self.health = health or StateHealth(lambda: probe_folder(state_dir))

    def identity(self) -> IdentityStore:
        """The identity map (it survives a restart)."""
        path = self.state_dir / IDENTITY_FILE
        try:
            return SqliteIdentityStore(path, health=self.health)
        except (OSError, sqlite3.Error) as error:
            raise StateUnavailable(f"cannot open the identity map {path} ({error})") from None

    def responses(self, *, window_s: float) -> ResponseRecords:
        """The message_id records, each kept ``window_s`` (they survive a restart)."""
        path = self.state_dir / IDEMPOTENCY_FILE
        try:
            return ResponseStore(path, window_s=window_s, clocks=self.clocks, health=self.health)
        except (OSError, sqlite3.Error) as error:
            raise StateUnavailable(
                f"cannot open the idempotency records {path} ({error})"
            ) from None

    def suppressions(self, key: bytes | None = None) -> Suppressions:
        """The people Forget erased, as keyed hashes (they survive a restart); the key
        ``key`` when configured, else in a 0600 file beside them
        (``clients.state.suppressions``)."""
        path = self.state_dir / SUPPRESSIONS_FILE
        try:
            return SqliteSuppressions(
                path, self.state_dir / SUPPRESSION_KEY_FILE, key=key, health=self.health
            )
        except (OSError, sqlite3.Error, ValueError) as error:
            raise StateUnavailable(f"cannot open the suppressions {path} ({error})") from None

    def create_holds(self, connection: str, *, hold_s: float) -> CreateHolds:
        """The creates in doubt of ``connection``, each held ``hold_s`` seconds, in
        one file for every connection (they survive a restart)."""
        path = self.state_dir / HOLDS_FILE
        try:
            return SqliteCreateHolds(
                path, connection, hold_s, clocks=self.clocks, health=self.health
            )
        except (OSError, sqlite3.Error) as error:
            raise StateUnavailable(f"cannot open the create holds {path} ({error})") from None

    def written(self) -> WrittenFields:
        """The memory of what was last written to each prospect (it survives a
        restart, as the identity map it goes with does)."""
        path = self.state_dir / WRITTEN_FILE
        try:
            return SqliteWrittenFields(path, health=self.health)
        except (OSError, sqlite3.Error) as error:
            raise StateUnavailable(f"cannot open the memory of writes {path} ({error})") from None


class MemoryState(InProcessState):
    """Everything in this process's memory, nothing on disk: what connections built
    without a backend use. Every identity map it opens is a new, empty one; it keeps
    no message_id records."""

    def identity(self) -> IdentityStore:
        return MemoryIdentityStore()

    def written(self) -> WrittenFields:
        return MemoryWrittenFields()

    def suppressions(self, key: bytes | None = None) -> Suppressions:
        """A new, empty set under ``key``, else a key of its own (nothing outlives the
        process)."""
        return MemorySuppressions(key)
