"""The state backends under test, for tests written against ``clients.state.protocols``.

A test that takes a ``state`` fixture (tests/clients/test_state.py, tests/server/conftest.py)
runs once per backend named in its parameters; a second backend (Redis) joins by one
name here and one branch per kind in :class:`StateUnderTest`.

- "sqlite": the embedded backend (``clients.state.local.LocalState``) under a test
  folder: stores opened twice share their data, as two processes on one state_dir do.
- "memory": the in-process stores (``MemoryIdentityStore``, ``KeyedLocks``); every store
  opened is a new, empty one, and it keeps no message_id records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from clients.state.identity import MemoryIdentityStore
from clients.state.local import IDEMPOTENCY_FILE, LocalState
from clients.state.locks import KeyedLocks
from clients.state.protocols import IdentityStore, PersonLocks, ResponseRecords
from clients.state.responses import GROUP_COMMIT_S, ResponseStore

#: The backends of the identity map and the per-person locks.
BACKENDS = ("sqlite", "memory")
#: The backends that keep message_id records.
RECORD_BACKENDS = ("sqlite",)


class StateUnderTest:
    """Opens each kind of state of ``backend``; :meth:`close` closes whatever it opened."""

    def __init__(self, backend: str, state_dir: Path) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown state backend {backend!r}")
        self.backend = backend
        self.state_dir = state_dir
        self._opened: list[IdentityStore | ResponseRecords] = []

    @property
    def shared(self) -> bool:
        """Whether a store opened again sees what an earlier one stored (a restart,
        another process)."""
        return self.backend != "memory"

    def identity(self) -> IdentityStore:
        store: IdentityStore
        if self.backend == "sqlite":
            store = LocalState(self.state_dir).identity()
        else:
            store = MemoryIdentityStore()
        self._opened.append(store)
        return store

    def person_locks(self) -> PersonLocks:
        if self.backend == "sqlite":
            return LocalState(self.state_dir).person_locks()
        return KeyedLocks()

    def responses(
        self,
        *,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        group_commit_s: float = GROUP_COMMIT_S,
    ) -> ResponseRecords:
        """The message_id records; ``clock`` (wall time) and ``group_commit_s`` stand in
        for time and for the backend's commit pacing."""
        if self.backend not in RECORD_BACKENDS:
            pytest.skip(f"the {self.backend} backend keeps no message_id records")
        store = ResponseStore(
            self.state_dir / IDEMPOTENCY_FILE,
            window_s=window_s,
            clock=clock,
            group_commit_s=group_commit_s,
        )
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in reversed(self._opened):
            store.close()
        self._opened.clear()
