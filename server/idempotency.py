"""``message_id`` makes a call idempotent: a repeat within the window gets the first
result back, marked OUTCOME_DUPLICATE_MESSAGE, and Pardot is not called again.

Cross-cutting on purpose: ``server.interceptors.IdempotencyInterceptor`` wraps every
RPC whose request has a ``message_id`` and whose response has ``pardot_calls``
(Identify, Track, Forget), so no servicer method carries this logic. The key is (method, connection,
message_id): the same message_id sent to two connections is two deliveries.

- Only successes are remembered. A failure is not a result: the caller (or its stub's
  retry) must be able to send the message again and have it applied.
- The intent is durable before the first Pardot write (issue 12, item 2): before the
  call runs, the message is marked in progress and the mark committed
  (``ResponseRecords.begin``); if that cannot be written the call fails with
  ``StateUnwritable`` (UNAVAILABLE) and nothing reaches Pardot. A success replaces the
  mark with the response; a failure, a cancellation or a crash leaves it, so the next
  attempt of the message — in this process or the next one after a restart — is told
  when the earlier one began (``clients.state.attempts.earlier_attempt``, read by the
  gateway for the strategies): it may have written, so the strategy resolves by
  reading, never by a blind second create (CreateV4's rule is in its docstring).
- Concurrent duplicates wait for the first one (single flight, in this process). When
  the first one fails or is cancelled, one waiter runs the call itself, and so on.
- A dry run is outside idempotency: it is neither stored nor answered from the store.
  A stored plan would turn the real send of the same message_id into a "duplicate"
  that never writes — the event would be lost — and a dry run answered from the store
  would hide the plan the caller asked to see.
- A replay lists no ``pardot_calls``: it cost none.
- BatchSync is not one idempotent unit (its request has no message_id): each item is,
  exactly as the unary call of its kind, under that method's key — so a replayed
  BatchSync, or a unary replay of one of its items, is a duplicate. The interceptor
  makes this process's records reachable from the call (:func:`as_item`).

The records live behind ``clients.state.protocols.ResponseRecords`` (today SQLite under
``server.state_dir``, ``clients.state.responses``: they survive a restart, expire after
``server.idempotency_window_s`` of time that passed — a step of the wall clock changes
nothing, ``clients.state.clock`` — and share commits). A call answers only once its
record is committed, so a crash loses no record of an answered call. The single flight is per
process; processes share the records as far as the backend does (SQLite: those on one
``state_dir``; Redis: every replica). On shared records (``SharedResponseRecords``) a
duplicate of a message another process is running waits for that one's result, as one
running in this process does; a failed attempt lets it go at once (``release``).

This module never stores a failure, a dry run, or anything but the response a caller
already received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import structlog
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from clients.state.attempts import attempt_of
from clients.state.protocols import (
    Claim,
    IdempotencyKey,
    ResponseRecords,
    SharedResponseRecords,
)
from prospectsync.v1 import prospect_sync_pb2 as pb
from server import metrics
from server.convert import connection_name
from strategies.core.model import Outcome
from strategies.validation import check_message_id

SERVICE = pb.DESCRIPTOR.services_by_name["ProspectSync"]
#: The longest a duplicate waits for another process running its message. The caller's
#: own deadline ends the wait sooner; a process that dies lets go when its lease ends.
WAIT_ELSEWHERE_S = 300.0
#: What a replay rewrites in the stored response: ``pardot_calls`` (a replay cost
#: none) in every idempotent method's response, ``outcome`` where it has one (Forget's
#: response has none: its replay is the first answer, calls emptied).
_REPLAYED_FIELDS = {"pardot_calls"}

Response = TypeVar("Response", bound=Message)


class Idempotency:
    """Single flight over the message_id records ``store``, for the RPCs of ``service``."""

    def __init__(self, store: ResponseRecords, service: ServiceDescriptor = SERVICE) -> None:
        self.store = store
        #: The same records when other processes share them (Redis): a duplicate
        #: running elsewhere is waited for, as one running here is.
        self._shared = store if isinstance(store, SharedResponseRecords) else None
        self._releasing: set[asyncio.Task[None]] = set()
        self._in_flight: dict[IdempotencyKey, asyncio.Event] = {}
        #: Every method of the service starts with it (health and reflection do not).
        self.method_prefix = f"/{service.full_name}/"
        #: Method path → response class, for the methods a message_id makes idempotent.
        self.response_types: dict[str, type[Message]] = {
            f"/{service.full_name}/{method.name}": message_factory.GetMessageClass(
                method.output_type
            )
            for method in service.methods
            if "message_id" in method.input_type.fields_by_name
            and _REPLAYED_FIELDS.issubset(method.output_type.fields_by_name)
        }

    def key_for(self, method: str, request: Any) -> IdempotencyKey | None:
        """The call's key; None when the call is not idempotent by message: no
        message_id, or a dry run (see the module docstring)."""
        message_id = check_message_id(request.message_id)
        if not message_id or request.settings.dry_run:
            return None
        return IdempotencyKey(method, connection_name(request.settings), message_id)

    async def guard(
        self, method: str, request: Any, respond: Callable[[], Awaitable[Response]]
    ) -> Response:
        """``respond()`` as a call of ``method`` with ``request``: once per key when the
        method and the request make it idempotent, else simply run."""
        response_type = self.response_types.get(method)
        key = None if response_type is None else self.key_for(method, request)
        if response_type is None or key is None:
            return await respond()
        # The method's response class is the one its respond() returns.
        return await self.once(key, cast(type[Response], response_type), respond)

    async def once(
        self,
        key: IdempotencyKey,
        response_type: type[Response],
        respond: Callable[[], Awaitable[Response]],
    ) -> Response:
        """``respond()``'s response, run at most once per key while it succeeds; a
        repeat gets the stored response marked as a duplicate."""
        while True:
            running = self._in_flight.get(key)
            if running is not None:
                await running.wait()  # then look again: stored, or the first one failed
                continue
            done = self._in_flight[key] = asyncio.Event()
            try:
                claim = await self._claim(key)  # durable before anything is sent
            except BaseException:
                self._finished(key, done)
                raise
            if claim.stored is not None:
                self._finished(key, done)
                return _replay(key, claim.stored, response_type)
            if not claim.elsewhere:
                break
            self._finished(key, done)
            # Another process runs it now: its result, or (it failed, or died) look again.
            assert self._shared is not None  # only shared records answer "elsewhere"
            stored = await self._shared.wait_for(key, timeout_s=WAIT_ELSEWHERE_S)
            if stored is not None:
                return _replay(key, stored, response_type)
        try:
            with attempt_of(claim.began):
                response = await respond()
        except BaseException:
            self._finished(key, done)
            self._release_elsewhere(key)
            raise
        # The waiters look again once the record is committed, even if this caller goes
        # away meanwhile: sooner, they would find nothing stored and run the call again.
        await self.store.save(
            key,
            response.SerializeToString(),
            then=lambda: self._finished(key, done),
            prospect_id=_prospect_named(response),
        )
        return response

    async def _claim(self, key: IdempotencyKey) -> Claim:
        """The response stored; else the message marked in progress (committed) by this
        process, or, on shared records, found running in another one. Shared records
        look and mark in one round trip (``SharedResponseRecords.claim``)."""
        if self._shared is not None:
            return await self._shared.claim(key)
        stored = await self.store.get(key)
        if stored is not None:
            return Claim(None, elsewhere=False, stored=stored)
        return Claim(await self.store.begin(key), elsewhere=False)

    def _release_elsewhere(self, key: IdempotencyKey) -> None:
        """After a failed attempt on shared records, a duplicate waiting in another
        process runs at once. Best effort, in the background (the caller may be
        cancelled): if Redis cannot take it, the attempt's lease ends it in time."""
        if self._shared is None:
            return
        task = asyncio.ensure_future(self._shared.release(key))
        self._releasing.add(task)
        task.add_done_callback(_forget_release(self._releasing))

    def _finished(self, key: IdempotencyKey, done: asyncio.Event) -> None:
        """The first call of ``key`` is over: its waiters look at the records again."""
        del self._in_flight[key]
        done.set()

    def close(self) -> None:
        self.store.close()


#: The records the running call's items go through; set around each call by
#: ``server.interceptors.IdempotencyInterceptor`` (see :func:`as_item`).
_FOR_ITEMS: ContextVar[Idempotency | None] = ContextVar("idempotency_for_items", default=None)


class serving_items:  # lower case: used like the function it replaced
    """Within this block (and the tasks started in it), :func:`as_item` uses
    ``idempotency``. A class rather than ``@contextmanager``: it runs on every call,
    and a generator-based one costs several times more."""

    def __init__(self, idempotency: Idempotency) -> None:
        self._idempotency = idempotency

    def __enter__(self) -> None:
        self._token = _FOR_ITEMS.set(self._idempotency)

    def __exit__(self, *_: object) -> None:
        _FOR_ITEMS.reset(self._token)


async def as_item(
    method: str, request: Any, respond: Callable[[], Awaitable[Response]]
) -> Response:
    """``respond()`` for one item of a batch, idempotent exactly as a unary call of
    ``method`` with ``request`` would be. Without records (no interceptor installed)
    the item simply runs, as the unary call would."""
    idempotency = _FOR_ITEMS.get()
    if idempotency is None:
        return await respond()
    return await idempotency.guard(method, request, respond)


def _forget_release(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def forget(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a failed release was reported to the state's health

    return forget


def _prospect_named(response: Message) -> int | None:
    """The prospect a response names (its ``prospect_id``), for the records' index:
    ``Forget`` drops the records of the prospects it deletes."""
    named = getattr(response, "prospect_id", "")
    return int(named) if isinstance(named, str) and named.isdigit() else None


def _replay(key: IdempotencyKey, stored: bytes, response_type: type[Response]) -> Response:
    metrics.message_id_replayed(key.method)
    response = response_type.FromString(stored)
    replayed: Any = response  # a type of response_types: it has the _REPLAYED_FIELDS
    fields = response.DESCRIPTOR.fields_by_name
    if "outcome" in fields:
        replayed.outcome = pb.OUTCOME_DUPLICATE_MESSAGE
    del replayed.pardot_calls[:]
    structlog.contextvars.bind_contextvars(
        message_id=key.message_id,
        connection=key.connection,
        strategy=replayed.strategy if "strategy" in fields else "",
        outcome=Outcome.DUPLICATE_MESSAGE.name,
        pardot_calls=0,
    )
    return response
