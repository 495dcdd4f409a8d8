"""The embedded state backend: SQLite files under ``server.state_dir``, locks in this
process. It is what one process needs, and what the service runs with today.

:class:`LocalState` opens each kind of state on demand, so a caller opens only what it
uses (a backfill run needs the identity map, never the message_id records). Whoever
asks for a store owns it and closes it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from clients.state.identity import SqliteIdentityStore
from clients.state.locks import KeyedLocks
from clients.state.protocols import IdentityStore, PersonLocks, ResponseRecords, StateUnavailable
from clients.state.responses import ResponseStore

#: The identity map's file inside ``server.state_dir``.
IDENTITY_FILE = "identity.sqlite3"
#: The message_id records' file inside ``server.state_dir``.
IDEMPOTENCY_FILE = "idempotency.sqlite3"


class LocalState:
    """The stores of the embedded backend, under ``state_dir``. Opening one creates
    the folder and its file as needed; one that cannot be opened raises
    StateUnavailable naming the file."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def identity(self) -> IdentityStore:
        """The identity map (it survives a restart)."""
        path = self.state_dir / IDENTITY_FILE
        try:
            return SqliteIdentityStore(path)
        except (OSError, sqlite3.Error) as error:
            raise StateUnavailable(f"cannot open the identity map {path} ({error})") from None

    def responses(self, *, window_s: float) -> ResponseRecords:
        """The message_id records, each kept ``window_s`` (they survive a restart)."""
        path = self.state_dir / IDEMPOTENCY_FILE
        try:
            return ResponseStore(path, window_s=window_s)
        except (OSError, sqlite3.Error) as error:
            raise StateUnavailable(
                f"cannot open the idempotency records {path} ({error})"
            ) from None

    def person_locks(self) -> PersonLocks:
        """Locks in this process: enough while one process serves (the embedded
        backend's premise). Each call gives a new, independent set."""
        return KeyedLocks()
