"""The state seam: one protocol per kind of state shared between calls (DESIGN.md,
"State, and running as several processes").

What the rest of the service may ask of each kind, and nothing about where it lives:
``clients.state.local.LocalState`` opens today's implementations (SQLite files under
``server.state_dir``, locks in this process); a second backend (Redis, for several
replicas) implements these same protocols and runs the same tests
(``tests/clients/test_state.py``, ``tests/server/test_idempotency.py``).

- :class:`IdentityStore` — the identity map: (connection, namespace, key) → prospect id.
- :class:`PersonLocks` — one call at a time per person (connection, identity key).
- :class:`ResponseRecords` — the message_id records: the first response per
  :class:`IdempotencyKey`.

Implementations must be safe to share across requests of one event loop. An
implementation that cannot be opened raises :class:`StateUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import NamedTuple, Protocol


class StateUnavailable(Exception):
    """A kind of state cannot be opened or reached; the message names the kind and
    where it was looked for (``cannot open the identity map /var/lib/…/identity.sqlite3
    (…)``), so the caller only adds the setting to fix."""


class IdentityStore(Protocol):
    """Where the identity map lives. Namespaces: ``email``, ``fid`` and ``field:<lookup
    field id>``; emails match case-insensitively, lookup values and fids exactly."""

    def lookup(self, connection: str, namespace: str, key: str) -> int | None: ...

    def remember(self, connection: str, namespace: str, key: str, prospect_id: int) -> None: ...

    def forget(self, connection: str, prospect_id: int) -> None:
        """Drop every entry that points at ``prospect_id`` (deleted or merged away)."""
        ...

    def close(self) -> None: ...


class PersonLocks(Protocol):
    """One holder at a time per (connection, key), so concurrent first calls for one
    person resolve one after another and create one prospect."""

    def hold(self, connection: str, key: str) -> AbstractAsyncContextManager[None]:
        """``async with locks.hold(connection, key):`` runs alone among the holders of
        that key; waiters go in in turn."""
        ...


class IdempotencyKey(NamedTuple):
    """What a message_id record is kept under: the same message_id sent to two methods
    or two connections is two deliveries. A NamedTuple: hashed three times per call
    (``server.idempotency``'s single flight), which a tuple does in C."""

    method: str
    connection: str
    message_id: str


class ResponseRecords(Protocol):
    """The message_id records: the first successful response per key, serialized, for
    the idempotency window the implementation was opened with."""

    def get(self, key: IdempotencyKey) -> bytes | None:
        """The stored response, if stored within the window."""
        ...

    def save(
        self, key: IdempotencyKey, response: bytes, *, then: Callable[[], None]
    ) -> asyncio.Future[None]:
        """Stores ``response`` under ``key``. The future resolves once the record is
        committed (or fails with the commit's error); ``then()`` runs after the commit,
        whether it succeeded or not, even when the future was cancelled."""
        ...

    def commit(self) -> None:
        """Commits the records saved and still waiting, now."""
        ...

    def close(self) -> None:
        """Commits what is waiting, then closes."""
        ...
