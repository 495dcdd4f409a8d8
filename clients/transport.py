"""One Pardot connection's HTTP client: every API request goes through ``PardotClient.call``.

It owns what every call needs and no strategy should see: the URL (from configuration
only, path values percent-encoded), credentials (via ``clients.auth``), the
per-connection limit on requests in flight, the account's daily budget (counted per
attempt; after err 122 no request at all until the account's midnight), retries with
exponential backoff and full jitter, the caller's deadline, and a CallRecord plus a
``pardot.call`` log event for every attempt.

A request may also be chosen only once it holds a slot (:meth:`PardotClient.call_claimed`):
that is how ``clients.coalescer`` sends the fullest batch pending when a slot frees.

It never lets a request choose the host, never puts a credential in a URL or a record,
never retries a write that Pardot may already have applied (it reports it as
PardotWriteUnconfirmed instead), and never waits or retries past the caller's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import structlog

from clients.auth import Authenticator, make_authenticator
from clients.budget import DailyBudget
from clients.call_log import record_call
from clients.config import ConnectionConfig
from clients.known_ids import KnownProspectIds
from clients.responses import parse_response, parse_v5_response
from clients.unconfirmed import UnconfirmedCreates
from strategies.core import pardot_facts as facts
from strategies.core.errors import (
    DeadlineExceeded,
    PardotError,
    PardotUnavailable,
    PardotWriteUnconfirmed,
    ProspectSyncError,
    Reason,
)
from strategies.core.model import CallRecord

if TYPE_CHECKING:
    from clients.coalescer import WriteCoalescer

log = structlog.get_logger("clients")

#: Time kept back from the caller's deadline to report the outcome before it passes.
DEADLINE_MARGIN_S = 0.05

#: httpx failures that happen before a request is on the wire: the request provably
#: did not reach Pardot, so even a non-idempotent write may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def encode_path_value(value: str | int) -> str:
    """One path segment: every reserved character encoded, so ``a+b@x.com`` reaches
    Pardot intact and ``x/../login`` stays inside its segment. A segment made only of
    dots would still be resolved as ``.``/``..`` by URL normalisation: encode those
    dots too."""
    encoded = quote(str(value), safe="")
    if encoded and set(encoded) == {"."}:
        return "%2E" * len(encoded)
    return encoded


def api_path(
    pardot_object: str, version: int, operation: str, path_params: Mapping[str, str | int]
) -> str:
    """``/api/<object>/version/<v>/do/<operation>/<key>/<value>…`` (PARDOT_API.md)."""
    if version not in facts.API_VERSIONS:
        raise ValueError(f"Pardot API version must be 3 or 4, not {version!r}")
    path = facts.API_PATH.format(object=pardot_object, version=version, operation=operation)
    for key, value in path_params.items():
        if str(value) == "":
            raise ValueError(f"path parameter {key!r} is empty")
        path += f"/{quote(key, safe='')}/{encode_path_value(value)}"
    return path


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


@dataclass(frozen=True)
class ClaimedCall:
    """A prospect write chosen once its sender holds a slot (``clients.coalescer``):
    one batch call, or one write alone. ``deadline`` bounds the call from then on (the
    latest deadline of the writes it carries); ``batch_size`` is 0 for a write alone."""

    operation: str
    path_params: Mapping[str, str | int]
    params: Mapping[str, str]
    api_version: int
    idempotent: bool
    deadline: float | None
    batch_size: int = 0


#: Chooses what to send once a slot is held; None: nothing is left to send.
Claim = Callable[[], ClaimedCall | None]


class _NothingToSend(Exception):
    """A claim found nothing pending: the slot is given back unused."""


class _Failed(Exception):
    """One attempt failed. ``sent`` is False only when Pardot provably did not process
    the request (it never left, or Pardot refused it outright)."""

    def __init__(self, error: ProspectSyncError, *, sent: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.sent = sent


class _TokenRefused(Exception):
    """Pardot said the token is expired or invalid (err 184 / err 1)."""

    def __init__(self, token: str, error: PardotError) -> None:
        super().__init__(error.message)
        self.token = token
        self.error = error


class PardotClient:
    """Calls one Pardot connection. One per connection per process: the limiter, the
    token and the HTTP connections are shared by every request on it."""

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        http: httpx.AsyncClient | None = None,
        limiter: asyncio.Semaphore | None = None,
        budget: DailyBudget | None = None,
        rng: random.Random | None = None,
        coalescer: WriteCoalescer | None = None,
    ) -> None:
        self.config = config
        self._owns_http = http is None
        self._http = http if http is not None else new_http_client(config.max_concurrency + 1)
        #: At most max_concurrency requests in flight; waiters are served in order.
        self.limiter = limiter if limiter is not None else asyncio.Semaphore(config.max_concurrency)
        self.auth: Authenticator = make_authenticator(config, self._http, self.limiter)
        self._base_url = config.pardot_url.rstrip("/")
        #: Prospect ids this connection has seen; gateways use it to tell an upsert's
        #: create from its update (see clients.known_ids).
        self.known_ids = KnownProspectIds()
        #: The account's calls today, and the fail-fast state after err 122; shared
        #: like the limiter by every connection to the same account (clients.budget).
        self.budget = budget or DailyBudget(
            account=config.name, limit=config.daily_call_limit, timezone=config.timezone
        )
        #: Emails whose create got no answer and may still land (clients.unconfirmed).
        self.unconfirmed_creates = UnconfirmedCreates(config.unconfirmed_create_hold_s)
        self._random = rng if rng is not None else random.Random()
        #: Queues prospect writes into batch calls when the account is busy; shared like
        #: the limiter by every connection to the same account (clients.coalescer).
        self._owns_coalescer = coalescer is None
        if coalescer is None:
            from clients.coalescer import WriteCoalescer  # it builds on this module

            coalescer = WriteCoalescer(
                self.limiter,
                max_concurrency=config.max_concurrency,
                max_queued=config.max_queued_writes,
            )
        self.coalescer: WriteCoalescer = coalescer

    @property
    def name(self) -> str:
        return self.config.name

    async def call(
        self,
        method: str,
        pardot_object: str,
        operation: str,
        path_params: Mapping[str, str | int],
        params: Mapping[str, str],
        *,
        deadline: float | None,
        calls: list[CallRecord],
        idempotent: bool,
        api_version: int | None = None,
    ) -> dict[str, Any]:
        """Pardot's answer envelope (``{"@attributes": …, "prospect": …}``).

        ``deadline`` is an absolute ``time.monotonic()`` value or None; ``params`` go in
        the query string of a GET and the form body of a POST; every attempt is appended
        to ``calls``. ``idempotent`` says whether sending the request twice is harmless.
        Raises PardotError (err_code and its meaning), PardotUnavailable,
        PardotAuthFailed or DeadlineExceeded.
        """
        version = api_version if api_version is not None else self.config.api_version
        path = api_path(pardot_object, version, operation, path_params)
        reserved = facts.RESERVED_PARAMS.intersection(params)
        if reserved:
            raise ValueError(f"parameters {sorted(reserved)} are set by the client itself")
        request = _Request(
            method=method.upper(),
            path=path,
            params=dict(params),
            idempotent=idempotent,
            deadline=deadline,
        )
        return await self._bounded(request, calls)

    async def call_v5(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any],
        *,
        deadline: float | None,
        calls: list[CallRecord],
        idempotent: bool,
    ) -> dict[str, Any]:
        """A version 5 call (PARDOT_API.md, "External activities"): ``body`` travels
        as JSON and the answer is read in v5's dialect (``parse_v5_response``);
        credentials, the limiter, retries, the deadline and call records are those of
        :meth:`call`. ``path`` is a constant from ``pardot_facts``, never request data.
        """
        request = _Request(
            method=method.upper(),
            path=path,
            params={},
            idempotent=idempotent,
            deadline=deadline,
            json_body=dict(body),
        )
        return await self._bounded(request, calls)

    async def call_claimed(self, claim: Claim, *, calls: list[CallRecord]) -> dict[str, Any] | None:
        """Send what ``claim`` chooses once a slot is held, and return Pardot's answer;
        None when the claim found nothing left to send (the slot is given back unused).

        Everything else is :meth:`call`'s: the budget and the token come first (before
        the slot, as for any request), then retries, backoff and records. Until the
        claim no deadline applies; from then on the claimed call's. The claim runs only
        once: a retry resends what it chose.
        """
        request = _Request(
            method="POST", path="", params={}, idempotent=True, deadline=None, claim=claim
        )
        try:
            return await self._bounded(request, calls)
        except _NothingToSend:
            return None

    async def _bounded(self, request: _Request, calls: list[CallRecord]) -> dict[str, Any]:
        try:
            async with deadline_scope(request.deadline) as scope:
                request.scope = scope
                return await self._call_with_retries(request, calls)
        except TimeoutError:
            message = (
                f"the deadline passed during {request.method} {request.path} to Pardot "
                f"(connection {self.name!r}, {len(calls)} call(s) made)"
            )
            if request.in_doubt and not request.idempotent:
                # Cut off mid-request: Pardot may still apply this write.
                raise PardotWriteUnconfirmed(
                    f"{message}; the write may still be applied",
                    settled=False,
                    code=Reason.DEADLINE_EXCEEDED.code,
                    retry_after=self.config.timeout_s,
                ) from None
            raise DeadlineExceeded(message) from None

    async def aclose(self) -> None:
        if self._owns_coalescer:
            await self.coalescer.aclose()
        self.auth.close()
        if self._owns_http:
            await self._http.aclose()

    async def _call_with_retries(
        self, request: _Request, calls: list[CallRecord]
    ) -> dict[str, Any]:
        attempt = 0
        retries = 0
        stale_token: str | None = None  # set once Pardot refused a token: refresh it
        refreshed = False
        while True:
            attempt += 1
            try:
                return await self._attempt(request, calls, attempt, stale_token)
            except _TokenRefused as refused:
                if refreshed:
                    raise self.auth.reject(refused.token, refused.error) from None
                # A refused token means the request was not processed: retrying it,
                # even a non-idempotent write, is safe. This is not counted as a retry.
                refreshed = True
                stale_token = refused.token
                continue
            except _Failed as failed:
                error = failed.error
                if not getattr(error, "retryable", False):
                    raise error from None
                if failed.sent and not request.idempotent:
                    # Pardot may have applied this write (a create, or v4 upsert/email,
                    # which always creates): sending it again could duplicate it.
                    raise self._unconfirmed(request, error) from None
                if retries >= self.config.max_retries:
                    raise _with_retry_hint(error, self._backoff_cap(retries + 1)) from None
                retries += 1
                delay = self._random.uniform(0, self._backoff_cap(retries))
                deadline = request.deadline
                if (
                    deadline is not None
                    and time.monotonic() + delay >= deadline - DEADLINE_MARGIN_S
                ):
                    raise _with_retry_hint(error, self._backoff_cap(retries)) from None
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
        request: _Request,
        calls: list[CallRecord],
        attempt: int,
        stale_token: str | None,
    ) -> dict[str, Any]:
        # 0. An account whose daily budget Pardot declared spent gets no request.
        self.budget.check(self.name)

        # 1. Credentials. Nothing has been sent to the API yet, so a token endpoint
        #    that is down is retryable for any call.
        try:
            if stale_token is None:
                token = await self.auth.token(
                    request_timeout_s=self._request_timeout(request.deadline), attempt=attempt
                )
            else:
                token = await self.auth.refresh(
                    stale_token,
                    request_timeout_s=self._request_timeout(request.deadline),
                    attempt=attempt,
                )
        except PardotUnavailable as exc:
            raise _Failed(exc, sent=False) from None

        # 2. The request, inside a slot of the connection's limiter.
        sent = False
        never_left = False  # sent, but provably not received (connection refused)
        answered = False  # an HTTP response came back
        charged = True  # counts against the daily budget (clients.budget says what)
        status = 0
        err_code = 0
        started = 0.0
        try:
            async with self.limiter:
                if request.claim is not None:
                    self._take_claim(request)
                timeout_s = self._request_timeout(request.deadline)
                started = time.monotonic()
                sent = True
                response = await self._send(request, token, timeout_s)
                answered = True
            status = response.status_code
            parse = parse_response if request.json_body is None else parse_v5_response
            envelope = parse(status, response.headers.get("content-type", ""), response.content)
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
                raise self.budget.exhaust(self.name, exc) from None
            refused_outright = exc.err_code in facts.REFUSED_BEFORE_PROCESSING
            raise _Failed(exc, sent=not refused_outright) from None
        except DeadlineExceeded:
            raise
        except ProspectSyncError as exc:  # a 5xx, a body that is not Pardot's, …
            raise _Failed(exc, sent=True) from None
        finally:
            if sent:  # also when the deadline cancelled it midway (status 0)
                record_call(
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
                if not never_left:
                    if not answered:  # a timeout, a drop, or the deadline cut it off
                        request.in_doubt = True
                    if charged:
                        self.budget.count()
        return envelope

    def _take_claim(self, request: _Request) -> None:
        """Fill ``request`` in with what its claim chooses, now that it holds a slot."""
        claim, request.claim = request.claim, None
        assert claim is not None
        claimed = claim()
        if claimed is None:
            raise _NothingToSend
        request.path = api_path(
            facts.PROSPECT, claimed.api_version, claimed.operation, claimed.path_params
        )
        request.params = dict(claimed.params)
        request.idempotent = claimed.idempotent
        request.batch_size = claimed.batch_size
        request.deadline = claimed.deadline
        if request.scope is not None:
            request.scope.reschedule(_loop_time(claimed.deadline))

    async def _send(self, request: _Request, token: str, timeout_s: float) -> httpx.Response:
        url = self._base_url + request.path
        format_param = dict([facts.FORMAT_PARAM])
        headers = self.auth.headers(token)
        if request.json_body is not None:  # v5: JSON only, no format parameter
            return await self._http.request(
                request.method, url, json=request.json_body, headers=headers, timeout=timeout_s
            )
        if request.method == "GET":
            return await self._http.get(
                url, params=request.params | format_param, headers=headers, timeout=timeout_s
            )
        return await self._http.request(
            request.method,
            url,
            params=format_param,
            data=request.params,
            headers=headers,
            timeout=timeout_s,
        )

    def _request_timeout(self, deadline: float | None) -> float:
        """min(timeout_s, what is left of the deadline less the margin); raises
        DeadlineExceeded when nothing is left, so no request starts that cannot end."""
        if deadline is None:
            return self.config.timeout_s
        remaining = deadline - time.monotonic() - DEADLINE_MARGIN_S
        if remaining <= 0:
            raise DeadlineExceeded(
                f"no time left before the deadline to call Pardot (connection {self.name!r})"
            )
        return min(self.config.timeout_s, remaining)

    def _backoff_cap(self, retry: int) -> float:
        """Full jitter: the n-th retry waits uniformly in [0, this]."""
        return min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (retry - 1))

    def _unconfirmed(self, request: _Request, error: ProspectSyncError) -> PardotWriteUnconfirmed:
        """A write that is not safe to repeat failed after it was sent. With Pardot's
        own err envelope (``settled``) its work is over and a read tells whether the
        write landed, so the caller may retry soon; without an answer the write may
        still land, and the caller should give Pardot about a request's time first."""
        settled = isinstance(error, PardotError)
        return PardotWriteUnconfirmed(
            f"{error.message}; {request.method} {request.path} may have been applied, so "
            "it was not resent (a retried call reads before it writes)",
            settled=settled,
            retry_after=self._backoff_cap(1) if settled else self.config.timeout_s,
            metadata=error.metadata,
        )

    def _unavailable(self, request: _Request, exc: httpx.HTTPError) -> PardotUnavailable:
        # The exception's type only: its text could carry a URL, never needed here.
        return PardotUnavailable(
            f"Pardot did not answer {request.method} {request.path} "
            f"(connection {self.name!r}: {type(exc).__name__})"
        )


@dataclass
class _Request:
    method: str
    path: str
    params: dict[str, str]
    #: Whether sending it twice is harmless (see PardotClient.call).
    idempotent: bool
    #: Absolute ``time.monotonic()`` or None.
    deadline: float | None
    #: Set for a version 5 call: the JSON body (``params`` is then empty).
    json_body: dict[str, Any] | None = None
    #: Set once an attempt was sent and no answer came back: Pardot may have applied it.
    in_doubt: bool = False
    #: Prospects in a batch call; 0 for any other call.
    batch_size: int = 0
    #: Set until the request holds its first slot: chooses what it is then
    #: (PardotClient.call_claimed).
    claim: Claim | None = None
    #: The deadline's timeout, moved when a claim sets the deadline.
    scope: asyncio.Timeout | None = None


@contextlib.asynccontextmanager
async def deadline_scope(deadline: float | None) -> AsyncIterator[asyncio.Timeout]:
    """Bound everything (queueing for a slot, a token refresh, requests, backoff) by
    the deadline less the margin; expiry surfaces as TimeoutError. None: unbounded
    (until the yielded timeout is rescheduled)."""
    async with asyncio.timeout_at(_loop_time(deadline)) as scope:
        yield scope


def _loop_time(deadline: float | None) -> float | None:
    """The event loop's clock reading at which ``deadline`` less the margin falls."""
    if deadline is None:
        return None
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic() - DEADLINE_MARGIN_S)


def _with_retry_hint(error: ProspectSyncError, retry_after: float) -> ProspectSyncError:
    if error.retry_after is None:
        error.retry_after = retry_after
    return error
