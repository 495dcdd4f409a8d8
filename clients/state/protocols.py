"""The state seam: one protocol per kind of state shared between calls (DESIGN.md,
"State, and running as several processes").

What the rest of the service may ask of each kind, and nothing about where it lives:
``clients.state.local.LocalState`` opens today's implementations (SQLite files under
``server.state_dir``, everything else in this process); a second backend (Redis, for
several replicas) implements these same protocols and runs the same tests
(``tests/clients/test_state.py``, ``tests/server/test_idempotency.py``).

- :class:`IdentityStore` — the identity map: (connection, namespace, key) → prospect id.
- :class:`PersonLocks` — one call at a time per person (connection, identity key).
- :class:`ResponseRecords` — the message_id records: the first response per
  :class:`IdempotencyKey`.
- :class:`CreateHolds` — one connection's creates in doubt: emails held after a create
  that got no answer.
- :class:`BudgetMark` — one account's daily call count and exhausted-until mark.
- :class:`ConcurrencySlots` — one account's requests in flight, at most its limit.
- :class:`TokenStore` — one connection's API token, its one refresh at a time and the
  cooldown after its credentials were rejected.
- :class:`WrittenFields` — what the service last wrote to each prospect (digests, per
  field), so that a write that would change nothing is not sent (issue 15).
- :class:`Suppressions` — keyed hashes of the people ``Forget`` erased (issue 15).
- :class:`ClientState` — what ``clients.connections`` asks a backend for.

Implementations must be safe to share across requests of one event loop. An
implementation that cannot be opened raises :class:`StateUnavailable`.

Every method that may need the backend is a coroutine, even where SQLite or memory
answer at once: the shared backend (``clients.state.redis``) answers over the network,
and a blocking call there would stall every call of the process. Only what is asked on
the hot path of every request and may be a moment old stays synchronous
(``TokenStore.current``, ``ConcurrencySlots.locked``/``waiting``): a shared backend
answers those from its own copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from strategies.core.errors import PardotAuthFailed

if TYPE_CHECKING:
    from clients.state.health import StateHealth


class StateUnavailable(Exception):
    """A kind of state cannot be opened or reached; the message names the kind and
    where it was looked for (``cannot open the identity map /var/lib/…/identity.sqlite3
    (…)``), so the caller only adds the setting to fix."""


class IdentityStore(Protocol):
    """Where the identity map lives. Namespaces: ``email``, ``fid`` and ``field:<lookup
    field id>``; emails match case-insensitively, lookup values and fids exactly.

    A call that cannot read or write reports to the backend's
    ``clients.state.health.StateHealth`` and raises StateUnwritable (whatever the
    backend's own error was): the servicer then refuses the next calls before they
    write, and health says NOT_SERVING until the backend's probe passes."""

    async def lookup(self, connection: str, namespace: str, key: str) -> int | None: ...

    async def remember(
        self, connection: str, namespace: str, key: str, prospect_id: int
    ) -> None: ...

    async def forget(self, connection: str, prospect_id: int) -> int:
        """Drop every entry that points at ``prospect_id`` (deleted or merged away);
        how many were dropped (``Forget`` reports it)."""
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
    """The message_id records: the first successful response per key, serialized, and
    the messages in progress (an attempt began and got no answer: it may have written),
    for the idempotency window the implementation was opened with. The window is time
    that passed: no step of the wall clock shortens it, and records survive a restart
    wherever the backend keeps them."""

    async def get(self, key: IdempotencyKey) -> bytes | None:
        """The stored response, if stored within the window."""
        ...

    def begin(self, key: IdempotencyKey) -> asyncio.Future[float | None]:
        """Marks the message in progress from now on. The future resolves once the mark
        is committed — with the wall time (seconds since the epoch) at which its
        earliest unanswered attempt within the window began, or None when this is the
        first — or fails with ``StateUnwritable`` when it cannot be. A saved response
        ends the message's progress."""
        ...

    def save(
        self,
        key: IdempotencyKey,
        response: bytes,
        *,
        then: Callable[[], None],
        prospect_id: int | None = None,
    ) -> asyncio.Future[None]:
        """Stores ``response`` under ``key`` (indexed by ``prospect_id``, the prospect it
        names, when it names one: :meth:`forget_prospects`). The future resolves once
        the record is committed (or fails with the commit's error); ``then()`` runs
        after the commit, whether it succeeded or not, even when the future was
        cancelled."""
        ...

    def commit(self) -> None:
        """Commits the records saved and still waiting, now."""
        ...

    async def forget_prospects(self, connection: str, prospect_ids: tuple[int, ...]) -> int:
        """Drop every stored response of ``connection`` that names one of
        ``prospect_ids`` (``save``'s ``prospect_id``; ``Forget`` erased them), found
        through an index written with the record, never a scan. How many were dropped."""
        ...

    def close(self) -> None:
        """Commits what is waiting, then closes."""
        ...


class Claim(NamedTuple):
    """What :meth:`SharedResponseRecords.claim` found."""

    #: The wall time the earliest unanswered attempt began; None: this is the first.
    began: float | None
    #: Another process is running the message now (its lease is live): wait for it.
    elsewhere: bool
    #: The response stored already (nothing was marked): answer it as a replay.
    stored: bytes | None = None


@runtime_checkable
class SharedResponseRecords(ResponseRecords, Protocol):
    """Records shared by several processes (Redis): a duplicate of a message another
    process is running now waits for that one's result instead of running too, as a
    duplicate in the same process does (``server.idempotency``'s single flight)."""

    async def claim(self, key: IdempotencyKey) -> Claim:
        """:meth:`begin`, unless the response is stored (``stored``: one look and one
        mark cost one round trip, not two) or another process runs the message now
        (``elsewhere``: :meth:`wait_for` it); in both cases nothing is written."""
        ...

    async def wait_for(self, key: IdempotencyKey, *, timeout_s: float) -> bytes | None:
        """The response the other process saved; None once it stopped running the
        message without one (it failed, or died) or ``timeout_s`` passed."""
        ...

    async def release(self, key: IdempotencyKey) -> None:
        """This process's attempt ended without a response: a duplicate waiting
        elsewhere runs at once (the in-progress mark stays: it may have written)."""
        ...


class CreateHolds(Protocol):
    """One connection's v4/v5 creates in doubt: a create on its way or unanswered may
    still land in Pardot, so no other create for that email is sent meanwhile
    (``clients.gateway`` decides what a hold means). A hold is written before its
    create is sent and outlives the process wherever the backend keeps it; its time
    is time that passed (no step of the wall clock ends it early). Emails match
    case-insensitively. ``clients.state.holds`` says which holds :meth:`remaining`
    counts."""

    async def sending(self, email: str, *, in_flight_s: float) -> int:
        """A create for ``email`` is about to be sent, and may be in flight up to
        ``in_flight_s``: held from now until then plus the hold time, written before
        this returns (``StateUnwritable`` when it cannot be: send nothing then). The
        ticket names this create to :meth:`answered` or :meth:`unanswered`."""
        ...

    async def answered(self, ticket: int) -> None:
        """Pardot answered the create (it created, or refused): its hold ends."""
        ...

    async def unanswered(self, ticket: int) -> None:
        """The create got no answer: held the hold time from now on."""
        ...

    async def remaining(self, email: str) -> float:
        """Seconds left in ``email``'s hold; 0.0 when it has none (or it ended)."""
        ...

    def close(self) -> None: ...


class BudgetMark(Protocol):
    """One Pardot account's daily budget as state: the calls counted on each account
    day, and the day's exhausted-until mark (set after Pardot's err 122). A day is the
    account's local date; the caller says which (``clients.budget`` owns the calendar,
    the thresholds and the errors). A day nothing was told of reads as nothing spent,
    nothing exhausted."""

    #: Its reads cross the network (a shared backend): worth running beside other
    #: waits (``clients.transport`` checks the mark while it enters the slot).
    remote: bool

    async def count(self, day: date) -> int:
        """One more call on ``day``; the day's count, this one included (as far as this
        process knows: a shared backend may write it behind and answer at once)."""
        ...

    async def used(self, day: date) -> int:
        """The calls counted on ``day``."""
        ...

    async def exhaust(self, day: date, until: datetime) -> None:
        """Pardot said ``day``'s budget is spent: mark it exhausted until ``until``."""
        ...

    def exhausted_until(self, day: date) -> Awaitable[datetime | None]:
        """The mark set on ``day``, if any: asked for when called (a shared backend may
        carry the read with the next script it sends), answered when awaited."""
        ...


class ConcurrencySlots(Protocol):
    """One Pardot account's requests in flight: at most ``limit`` at a time, through two
    entrances. ``async with slots:`` holds one for a call's first request; ``async with
    slots.follow_up:`` for a request of a call already under way (it has made one), which
    is let in before every first request that waits, so calls under way finish before
    new ones start (issue 12: a cold burst of read-then-write calls otherwise queues
    every write behind every pending read). Within an entrance, arrival order; a waiter
    cancelled while it waits (its deadline) leaves the queue and takes no slot.

    ``locked()``: no slot is free now, so a newcomer would wait. ``waiting(follow_up=)``:
    how many waiters a newcomer of that kind would queue behind (the follow-ups, or
    everyone) — an estimate the transport turns into a wait, so a shared backend may
    answer from a count a moment old.

    A shared backend (Redis, issue 13) can keep both queues as one ordered set of
    waiters scored by (entrance, arrival) beside the count of leases held. The
    in-process slots (``clients.state.slots``) cost the idle hot path what a semaphore
    does: one comparison to enter, one to leave."""

    @property
    def limit(self) -> int:
        """Requests in flight allowed at once."""
        ...

    @property
    def follow_up(self) -> AbstractAsyncContextManager[None]:
        """The entrance for a request of a call already under way."""
        ...

    async def __aenter__(self) -> None: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def locked(self) -> bool: ...

    def waiting(self, *, follow_up: bool = False) -> int: ...


class TokenStore(Protocol):
    """One connection's API token as state: where it lives, its one refresh at a time
    among everyone sharing the store, and the cooldown after the credentials were
    rejected. How a token is fetched, what a refusal means and who is told of a new
    token (the log redactor) are the caller's (``clients.auth``)."""

    def current(self) -> str | None:
        """The token stored, if any. Synchronous: it is asked before every request (a
        shared backend answers from its own copy and looks further in :meth:`refresh`)."""
        ...

    async def refresh(self, stale: str | None, fetch: Callable[[], Awaitable[str]]) -> str:
        """A token other than ``stale``: the stored one if there is one and it is not
        ``stale``; else ``fetch()`` runs, one at a time among everyone sharing the store,
        and every caller that needs a token meanwhile gets its outcome (the token, or
        the exception ``fetch`` raised). The stored token is dropped when a fetch
        starts (nobody uses it meanwhile) and the fetched one stored when it succeeds.

        A fetch belongs to no caller: one whose wait is cancelled (its deadline) stops
        waiting, and the fetch goes on for the others."""
        ...

    async def forget(self, token: str) -> None:
        """Drop ``token`` if it is still the stored one (the API refused even it)."""
        ...

    async def reject(self, error: PardotAuthFailed, *, for_s: float) -> None:
        """The credentials were refused: :meth:`rejection` answers ``error`` for
        ``for_s`` seconds from now, to everyone sharing the store."""
        ...

    async def rejection(self) -> PardotAuthFailed | None:
        """The error of a rejection whose cooldown has not ended, if any."""
        ...

    def close(self) -> None:
        """Stop a fetch of this store nobody will use (the connection is closing)."""
        ...


class WrittenFields(Protocol):
    """(connection, prospect id) → Pardot field → a digest of the value the service
    last wrote to it (never the value: this is a memory of writes, not a copy of the
    person). Forgetting is safe (the next write is sent); a stale digest is why the
    memory can be turned off (``settings.skip_unchanged``).

    Fails like :class:`IdentityStore` (StateUnwritable through the backend's health)."""

    async def digests(self, connection: str, prospect_id: int) -> dict[str, str]:
        """Every field's digest remembered for the prospect; {} for none."""
        ...

    async def wrote(self, connection: str, prospect_id: int, digests: dict[str, str]) -> None:
        """Merge ``digests`` into the prospect's (a field not named keeps its own)."""
        ...

    async def forget(self, connection: str, prospect_id: int) -> None: ...

    def close(self) -> None: ...


class Suppressions(Protocol):
    """The people ``Forget`` erased, per scope (the caller's: ``server.forget`` keeps
    them per Pardot account), as keyed hashes of their email and ids (computed by the
    caller; never the plain values). Fails like :class:`IdentityStore`."""

    async def hash_key(self) -> bytes:
        """The key the digests are made with: generated once and kept with the state
        (``clients.state.suppressions``), the same for every process sharing it."""
        ...

    async def add(self, connection: str, digests: tuple[str, ...]) -> None: ...

    async def any_of(self, connection: str, digests: tuple[str, ...]) -> bool:
        """Whether any of ``digests`` is recorded for the connection."""
        ...

    def recorded(self) -> AsyncIterator[tuple[str, tuple[str, ...]]]:
        """Every scope with digests recorded, with some of them (a scope may come
        several times, each digest once): ``prospect-sync state migrate`` copies them
        to another backend, which must hash under the same key."""
        ...

    def close(self) -> None: ...


class ClientState(Protocol):
    """What ``clients.connections`` asks a backend for, once per thing it builds: the
    identity map, and per account (named by ``clients.account.account_label``) or per
    connection name the kinds above. Whoever asks owns what it gets.

    Asked twice for one name, a backend that shares state across processes (Redis)
    gives two views of the same state; an in-process one gives two independent
    stores, so ask once per account or connection."""

    def identity(self) -> IdentityStore: ...

    def create_holds(self, connection: str, *, hold_s: float) -> CreateHolds:
        """The connection's creates in doubt, each held ``hold_s`` seconds."""
        ...

    def budget_mark(self, account: str) -> BudgetMark: ...

    def slots(self, account: str, limit: int) -> ConcurrencySlots:
        """The account's slots: at most ``limit`` requests in flight."""
        ...

    def tokens(self, connection: str) -> TokenStore: ...

    def written(self) -> WrittenFields:
        """What the service last wrote to each prospect, for every connection."""
        ...


class ServiceState(ClientState, Protocol):
    """What ``server.app`` asks a backend for, beyond what the connections ask: the
    per-person locks, the message_id records, the health the servicer and the health
    service follow, and closing it all at shutdown. Implemented by
    ``clients.state.local.LocalState`` and ``clients.state.redis.state.RedisState``."""

    health: StateHealth

    def person_locks(self) -> PersonLocks: ...

    def responses(self, *, window_s: float) -> ResponseRecords: ...

    def suppressions(self, key: bytes | None = None) -> Suppressions:
        """``key``: the configured one (``server.suppression_key``), None for the
        generated key kept with the state."""
        ...

    async def aclose(self) -> None: ...
