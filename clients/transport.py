"""One Pardot connection's transport: it sends one :class:`~clients.wire.request.PardotRequest`
and returns the answer its dialect reads, or raises what the answer means.

Each attempt passes, in order: the account's daily budget (after err 122, no request at
all until the account's midnight: ``clients.budget``), credentials (``clients.auth``),
a slot of the account's limiter, the request over httpx with the timeout the deadline
allows, and the dialect's reading of the answer. Every attempt that may have left gets
a CallRecord and a ``pardot.call`` log event (``clients.call_log``); after a failure,
``clients.retry`` says whether and when to send again. A token Pardot refuses is
refreshed once and the request resent (it was not processed).

**Calls under way first.** A request whose call has already made one (its ``calls``
list is not empty: the gateway keeps one list per call, so no flag has to be passed)
enters the slots through ``slots.follow_up``, ahead of every first request waiting. A
call's first request that has to wait is first asked whether its call can still finish
before its deadline (``clients.pace``: the account's observed latency and requests per
call, and the queue ahead), and asked again once it holds the slot; if not, it is
refused with DEADLINE_UNREACHABLE before anything is sent. Every answer feeds the
account's pace.

A request may also be chosen only once it holds a slot (:meth:`PardotTransport.send_claimed`):
that is how a write queue (``clients.coalescer``) sends the fullest batch pending when a
slot frees. The transport knows no queue, batch or dialect: only the request value.

It never lets a request choose the host, never puts a credential in a URL or a record,
never resends a write Pardot may have applied (the retry policy reports it as
PardotWriteUnconfirmed instead), and never waits or retries past the caller's deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import structlog

from clients.auth import Authenticator
from clients.budget import DailyBudget
from clients.call_log import record_call
from clients.config import ConnectionConfig
from clients.pace import AccountPace, DeadlineUnreachable
from clients.retry import DEADLINE_MARGIN_S, RetryPolicy, deadline_scope, loop_time
from clients.state.protocols import ConcurrencySlots
from clients.wire.request import PardotRequest
from strategies.core import pardot_facts as facts
from strategies.core.errors import (
    DailyLimitReached,
    DeadlineExceeded,
    PardotError,
    PardotUnavailable,
    ProspectSyncError,
    Reason,
)
from strategies.core.model import CallRecord

log = structlog.get_logger("clients")

#: httpx failures that happen before a request is on the wire: the request provably
#: did not reach Pardot, so even a non-idempotent write may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

#: Chooses what to send once a slot is held: the request, and the deadline that bounds
#: it from then on; None when nothing is left to send.
Claim = Callable[[], tuple[PardotRequest, float | None] | None]


def new_http_client(max_connections: int = 100) -> httpx.AsyncClient:
    """The AsyncClient connections share. Redirects are not followed: an answer from
    anywhere but the configured host is not Pardot's."""
    return httpx.AsyncClient(
        follow_redirects=False,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        headers={"User-Agent": "prospectsync/0.1"},
    )


class PardotTransport:
    """Sends the requests of one Pardot connection: its credentials and its retry
    policy are the connection's; ``slots`` (at most max_concurrency requests in flight,
    calls under way first, then in order), ``budget`` and ``pace`` are its account's,
    shared with every other connection to that account (``clients.account``; without
    a ``pace``, the transport keeps its own). Built by ``clients.connections``."""

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        http: httpx.AsyncClient,
        auth: Authenticator,
        slots: ConcurrencySlots,
        budget: DailyBudget,
        retry: RetryPolicy,
        pace: AccountPace | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.auth = auth
        self.retry = retry
        self._http = http
        self._slots = slots
        self._budget = budget
        #: The account's observed latency and requests per call (``clients.pace``).
        self.pace = pace if pace is not None else AccountPace()
        self._base_url = config.pardot_url.rstrip("/")

    async def send(
        self, request: PardotRequest, *, deadline: float | None, calls: list[CallRecord]
    ) -> dict[str, Any]:
        """The answer to ``request``, as its dialect reads it.

        ``deadline`` is an absolute ``time.monotonic()`` value or None; every attempt is
        appended to ``calls``. Raises PardotError (err_code and its meaning),
        PardotUnavailable, PardotAuthFailed, PardotWriteUnconfirmed, DeadlineExceeded or
        DeadlineUnreachable (a first request whose call cannot finish in time).
        """
        if calls:
            self.pace.followed_up()
        return await self._bounded(_Exchange(request, deadline, None, first=not calls), calls)

    async def send_claimed(
        self, claim: Claim, *, calls: list[CallRecord], follow_up: bool = False
    ) -> dict[str, Any] | None:
        """Send what ``claim`` chooses once a slot is held, and return Pardot's answer;
        None when the claim found nothing left to send (the slot is given back unused).

        Everything else is :meth:`send`'s: the budget and the token come first (before
        the slot, as for any request), then retries, backoff and records. Until the
        claim no deadline applies; from then on the claimed one. The claim runs only
        once: a retry resends what it chose. ``follow_up``: wait for the slot as a call
        under way does (the sender serves writes of calls under way); a claimed send
        is never refused for its deadline (each of its writes leaves the queue at its
        own).
        """
        exchange = _Exchange(_UNCLAIMED, None, claim, first=False, follow_up=follow_up)
        try:
            return await self._bounded(exchange, calls)
        except _NothingToSend:
            return None

    def close(self) -> None:
        """Stop a token fetch nobody will use (the HTTP client is its owner's to close)."""
        self.auth.close()

    async def _bounded(self, exchange: _Exchange, calls: list[CallRecord]) -> dict[str, Any]:
        try:
            async with deadline_scope(exchange.deadline) as scope:
                exchange.scope = scope
                return await self._retrying(exchange, calls)
        except TimeoutError:
            request = exchange.request
            message = (
                f"the deadline passed during {request.method} {request.path} to Pardot "
                f"(connection {self.name!r}, {len(calls)} call(s) made)"
            )
            if exchange.in_doubt and not request.idempotent:
                # Cut off mid-request: Pardot may still apply this write.
                raise self.retry.unconfirmed(
                    f"{message}; the write may still be applied",
                    settled=False,
                    code=Reason.DEADLINE_EXCEEDED.code,
                ) from None
            raise DeadlineExceeded(message) from None

    async def _retrying(self, exchange: _Exchange, calls: list[CallRecord]) -> dict[str, Any]:
        attempt = 0
        retries = 0
        stale_token: str | None = None  # set once Pardot refused a token: refresh it
        refreshed = False
        while True:
            attempt += 1
            try:
                return await self._attempt(exchange, calls, attempt, stale_token)
            except _TokenRefused as refused:
                if refreshed:
                    raise await self.auth.reject(refused.token, refused.error) from None
                # A refused token means the request was not processed: retrying it,
                # even a non-idempotent write, is safe. This is not counted as a retry.
                refreshed = True
                stale_token = refused.token
                continue
            except _Failed as failed:
                error = failed.error
                request = exchange.request
                delay = self.retry.backoff_before_retry(
                    error,
                    sent=failed.sent,
                    request=request,
                    retries=retries,
                    deadline=exchange.deadline,
                )
                retries += 1
                log.info(
                    "pardot.retry",
                    connection=self.name,
                    path=request.path,
                    attempt=attempt + 1,
                    delay_ms=round(delay * 1000, 1),
                    reason=error.reason,
                    err_code=getattr(error, "err_code", 0),
                )
                await asyncio.sleep(delay)

    async def _attempt(
        self,
        exchange: _Exchange,
        calls: list[CallRecord],
        attempt: int,
        stale_token: str | None,
    ) -> dict[str, Any]:
        # 0. An account whose daily budget Pardot declared spent gets no request. A
        #    shared mark (Redis) is a round trip away: its check starts here and is
        #    awaited inside the slot, before anything is sent, so that its read can
        #    ride the slot's enter (``clients.state.redis.budget``) — awaited first
        #    when the slot would have to be waited for (a spent account fails fast,
        #    it does not queue).
        checking: Coroutine[Any, Any, None] | None = None  # None: checked
        if self._budget.remote:
            checking = self._budget.check_soon(self.name)
        else:
            await self._budget.check(self.name)
        try:
            if checking is not None and self._slots.locked():
                await checking
                checking = None
            return await self._send_attempt(exchange, calls, attempt, stale_token, checking)
        finally:
            if checking is not None:
                checking.close()  # awaited already, or the attempt failed before it

    async def _send_attempt(
        self,
        exchange: _Exchange,
        calls: list[CallRecord],
        attempt: int,
        stale_token: str | None,
        checking: Coroutine[Any, Any, None] | None,
    ) -> dict[str, Any]:

        # 1. Credentials. Nothing has been sent to the API yet, so a token endpoint
        #    that is down is retryable for any call.
        try:
            if stale_token is None:
                token = await self.auth.token(
                    request_timeout_s=self.retry.request_timeout(exchange.deadline, self.name),
                    attempt=attempt,
                )
            else:
                token = await self.auth.refresh(
                    stale_token,
                    request_timeout_s=self.retry.request_timeout(exchange.deadline, self.name),
                    attempt=attempt,
                )
        except PardotUnavailable as exc:
            raise _Failed(exc, sent=False) from None

        # 2. The request, inside a slot of the account's limiter: a call under way
        #    (it has made a request) ahead of first requests; a first request that
        #    has to wait only if its call can still finish in time (``clients.pace``).
        slots = self._slots
        entrance: AbstractAsyncContextManager[None] | ConcurrencySlots
        queued = False
        if exchange.follow_up or calls:
            entrance = slots.follow_up
        else:
            entrance = slots
            if exchange.claim is None and slots.locked():
                queued = True
                self._refuse_if_late(exchange, ahead=slots.waiting())
        request = exchange.request
        sent = False
        never_left = False  # sent, but provably not received (connection refused)
        answered = False  # an HTTP response came back
        charged = True  # counts against the daily budget (clients.budget says what)
        status = 0
        err_code = 0
        started = 0.0
        try:
            async with entrance:
                if checking is not None:
                    try:
                        await checking
                    except DailyLimitReached as spent:
                        raise _Spent(spent) from None
                if queued:  # the wait is over: is there still time for the call?
                    self._refuse_if_late(exchange, ahead=0)
                if exchange.claim is not None:
                    request = self._take_claim(exchange)
                timeout_s = self.retry.request_timeout(exchange.deadline, self.name)
                started = time.monotonic()
                sent = True
                response = await self._http.request(
                    request.method,
                    self._base_url + request.path,
                    params=request.query,
                    data=request.form,
                    json=request.json_body,
                    headers=self.auth.headers(token),
                    timeout=timeout_s,
                )
                answered = True
            status = response.status_code
            answer = request.parse(
                status, response.headers.get("content-type", ""), response.content
            )
        except _Spent as spent:
            raise spent.error from None
        except _NOT_SENT as exc:
            never_left = True
            raise _Failed(self._unavailable(request, exc), sent=False) from None
        except httpx.HTTPError as exc:
            raise _Failed(self._unavailable(request, exc), sent=True) from None
        except PardotError as exc:
            err_code = exc.err_code
            exc.explain(self.config)
            if exc.rule.refresh_credentials:
                charged = False  # a refused token charges no account
                raise _TokenRefused(token, exc) from None
            if exc.err_code == facts.ERR_DAILY_LIMIT:
                charged = False  # refused for the budget: not counted against it
                raise await self._budget.exhaust(self.name, exc) from None
            refused_outright = exc.err_code in facts.REFUSED_BEFORE_PROCESSING
            raise _Failed(exc, sent=not refused_outright) from None
        except (DeadlineExceeded, DeadlineUnreachable):
            raise
        except ProspectSyncError as exc:  # a 5xx, a body that is not Pardot's, …
            raise _Failed(exc, sent=True) from None
        finally:
            if sent:  # also when the deadline cancelled it midway (status 0)
                record = record_call(
                    calls,
                    connection=self.name,
                    method=request.method,
                    path=request.path,
                    started=started,
                    attempt=attempt,
                    http_status=status,
                    err_code=err_code,
                    batch_size=request.batch_size,
                )
                if answered:
                    self.pace.answered(record.duration_s, first=exchange.first)
                    exchange.first = False
                if not never_left:
                    if not answered:  # a timeout, a drop, or the deadline cut it off
                        exchange.in_doubt = True
                    if charged:
                        await self._budget.count()
        return answer

    def _refuse_if_late(self, exchange: _Exchange, *, ahead: int) -> None:
        """Raise DeadlineUnreachable when the account's pace says the call of this
        first request cannot finish before its deadline (nothing has been sent)."""
        if exchange.deadline is None:
            return
        refusal = self.pace.refusal(
            remaining_s=exchange.deadline - time.monotonic() - DEADLINE_MARGIN_S,
            ahead=ahead,
            limit=self._slots.limit,
            connection=self.name,
        )
        if refusal is not None:
            raise refusal

    def _take_claim(self, exchange: _Exchange) -> PardotRequest:
        """What the exchange's claim chooses, now that it holds a slot; its deadline
        bounds the exchange from here on."""
        claim, exchange.claim = exchange.claim, None
        assert claim is not None
        claimed = claim()
        if claimed is None:
            raise _NothingToSend
        exchange.request, exchange.deadline = claimed
        if exchange.scope is not None:
            exchange.scope.reschedule(loop_time(exchange.deadline))
        return exchange.request

    def _unavailable(self, request: PardotRequest, exc: httpx.HTTPError) -> PardotUnavailable:
        # The exception's type only: its text could carry a URL, never needed here.
        return PardotUnavailable(
            f"Pardot did not answer {request.method} {request.path} "
            f"(connection {self.name!r}: {type(exc).__name__})"
        )


class _Exchange:
    """One request's way through the transport: what is sent (a claim fills it in once
    it holds a slot), the deadline that bounds it, whether an attempt went unanswered
    (then Pardot may have applied it), and how it enters the slots."""

    __slots__ = ("claim", "deadline", "first", "follow_up", "in_doubt", "request", "scope")

    def __init__(
        self,
        request: PardotRequest,
        deadline: float | None,
        claim: Claim | None,
        *,
        first: bool,
        follow_up: bool = False,
    ) -> None:
        self.request = request
        #: Its call's first request, not yet answered (the pace counts the call then).
        self.first = first
        #: Enters as a call under way even with no calls of its own (a batch sender).
        self.follow_up = follow_up
        #: Absolute ``time.monotonic()`` or None.
        self.deadline = deadline
        #: Set until the exchange holds its first slot (PardotTransport.send_claimed).
        self.claim = claim
        self.in_doubt = False
        #: The deadline's timeout, moved when a claim sets the deadline.
        self.scope: asyncio.Timeout | None = None


def _unclaimed_answer(status: int, content_type: str, body: bytes) -> dict[str, Any]:
    raise AssertionError("a claimed request is sent only once its claim chose it")


#: What an exchange of ``send_claimed`` names before its claim chose a request.
_UNCLAIMED = PardotRequest("POST", "", True, _unclaimed_answer)


class _NothingToSend(Exception):
    """A claim found nothing pending: the slot is given back unused."""


class _Failed(Exception):
    """One attempt failed. ``sent`` is False only when Pardot provably did not process
    the request (it never left, or Pardot refused it outright)."""

    def __init__(self, error: ProspectSyncError, *, sent: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.sent = sent


class _Spent(Exception):
    """The budget's check, awaited inside the slot, found the account spent: nothing
    was sent (it leaves the attempt as the DailyLimitReached it carries)."""

    def __init__(self, error: DailyLimitReached) -> None:
        super().__init__(error.message)
        self.error = error


class _TokenRefused(Exception):
    """Pardot said the token is expired or invalid (err 184 / err 1)."""

    def __init__(self, token: str, error: PardotError) -> None:
        super().__init__(error.message)
        self.token = token
        self.error = error
