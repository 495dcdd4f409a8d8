"""Credentials for one Pardot connection: get them, cache them, refresh them once.

Two modes (PARDOT_API.md, "Authentication"):

- OAuth: a Salesforce token grant (refresh_token, password or client_credentials);
  calls carry ``Authorization: Bearer`` and ``Pardot-Business-Unit-Id``.
- Legacy: a Pardot login with email, password and user key; calls carry
  ``Authorization: Pardot api_key=..., user_key=...``.

The token is cached per connection and refreshed SINGLE-FLIGHT: when many calls see
the same expired token, one fetch runs and every call that needs a token meanwhile
shares its outcome (see ``Authenticator.refresh``). When the credentials are
rejected, the connection fails fast for ``auth_failure_cooldown_s`` instead of asking
again on every call (no retry storm). Where the token lives, the one fetch at a time
and the cooldown mark are state (``clients.state.protocols.TokenStore``: in this
process with the embedded backend); this module is the policy: how a token is
fetched, what a refusal means, and that every token obtained or read is told to
:func:`on_secret_learned` before a request carries it.

Salesforce refuses a grant by cause (PARDOT_API.md, "Authentication"), and each cause
gets an operator message naming the keys to fix (``_REFUSALS``): ``invalid_client_id``
→ ``client_id``, ``invalid_client`` → ``client_secret``, ``invalid_grant`` /
``expired access/refresh token`` → ``refresh_token``, ``invalid_grant`` /
``authentication failure`` → ``username`` and ``password``, ``unsupported_grant_type``
→ ``grant_type``; any other refusal names every key its grant sends. All are
PARDOT_AUTH_FAILED (FAILED_PRECONDITION) with the cooldown, and ``ErrorInfo.metadata``
carries Salesforce's ``oauth_error``. One refusal is not about the credentials:
``invalid_grant`` / ``token request is already being processed`` means another refresh
of the same refresh token (another replica or process, or another connection with the
same credentials) is in flight. The refresh then waits (:meth:`Authenticator.refresh`:
a bounded backoff within the caller's time) and asks the token store again, which
gives the other refresh's token when the store is shared and otherwise asks Salesforce
again once the other request is done; never the cooldown, never PARDOT_AUTH_FAILED.

A token endpoint that fails without refusing (HTTP 5xx, a timeout, a dropped or refused
connection) is asked again only after a backoff (:class:`_EndpointBackoff`): after the
n-th failure in a row, no token request is sent for half the cap plus a random half,
the cap growing as ``backoff_base_s``·2ⁿ⁻¹ up to ``backoff_max_s`` (the connection's
retry settings, the same shape as the waits above). Callers that need a token meanwhile
fail at once with :class:`TokenEndpointBackingOff`: UNAVAILABLE with a RetryInfo of the
time until the next attempt, and not retried by the transport (a retry could only wait
for the same window). So a failing endpoint sees one request at a time per connection
and a few per backoff cap, however many calls arrive: 200 calls once made up to 800
(one per attempt of each call's transport retries). The first success clears it.

This module never puts a secret in a URL, an error message, a log event or a call
record; messages name the configuration keys to fix instead. It never retries a failed
fetch (the transport decides that; a failed fetch surfaces as PardotUnavailable,
retryable, or PardotAuthFailed, not), with the one exception above.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from urllib.parse import urlsplit

import httpx
import structlog
from grpc import StatusCode

from clients.call_log import record_call
from clients.config import ConnectionConfig
from clients.config.connection import GRANT_KEYS, check_connection, check_legacy, check_oauth
from clients.state.protocols import ConcurrencySlots, TokenStore
from clients.wire.responses import parse_response
from strategies.core import pardot_facts as facts
from strategies.core.errors import (
    PardotAuthFailed,
    PardotError,
    PardotUnavailable,
    ProspectSyncError,
    Reason,
)

log = structlog.get_logger("clients")

_TRANSIENT_STATUSES = frozenset({408, 429})

#: ``invalid_grant`` descriptions that mean "another refresh of this refresh token is in
#: flight": Salesforce's text (PARDOT_API.md, "Authentication"), and the one it gave the
#: same race before Winter '25, which Segment's Pardot destination retries too.
_REFRESH_IN_PROGRESS = frozenset(
    {"token request is already being processed", "expired authorization code"}
)

#: (error, error_description or None for any) → (what Salesforce says is wrong, the
#: keys to fix, a hint). PARDOT_API.md, "Authentication": RECORDED in Salesforce client
#: issues. A grant's own credentials apply only to the grant that sends them.
_REFUSALS: dict[tuple[str, str | None], tuple[str, tuple[str, ...], str]] = {
    ("invalid_client_id", None): (
        "no connected app has that consumer key",
        ("client_id",),
        "a sandbox's app is known only to https://test.salesforce.com: check {token_url}",
    ),
    ("invalid_client", None): (
        "the consumer secret is not the connected app's",
        ("client_secret",),
        "it must belong to the app named by {client_id}",
    ),
    ("unsupported_grant_type", None): (
        "the token endpoint does not take this grant type",
        ("grant_type",),
        'use "refresh_token", "password" or "client_credentials", one the connected app allows',
    ),
    ("invalid_grant", "expired access/refresh token"): (
        "the refresh token is expired or revoked",
        ("refresh_token",),
        "issue a new one for the connected app",
    ),
    ("invalid_grant", "authentication failure"): (
        "the Salesforce user's login failed",
        ("username", "password"),
        "the password may need the user's security token appended, unless the server's "
        "IP range is trusted",
    ),
}


def _ignore(_secret: str) -> None:
    return None


_secret_learned: Callable[[str], None] = _ignore


def on_secret_learned(sink: Callable[[str], None]) -> None:
    """``sink`` is told every credential fetched at run time (an OAuth access token, a
    legacy api key) before any request carries it. The server points this at its log
    redactor at start; the client never imports the server."""
    global _secret_learned
    _secret_learned = sink


class Authenticator(ABC):
    """One connection's credentials. ``headers(token)`` authenticates an API call;
    ``token()`` / ``refresh(stale)`` obtain the token, at most one fetch at a time.
    ``tokens`` keeps the token, its fetch in flight and the rejection cooldown."""

    def __init__(
        self,
        config: ConnectionConfig,
        http: httpx.AsyncClient,
        limiter: ConcurrencySlots,
        tokens: TokenStore,
    ) -> None:
        self.config = config
        self._http = http
        self._limiter = limiter
        self._tokens = tokens
        #: The last token told to ``on_secret_learned`` (a store shared with other
        #: processes may hold one this process did not fetch).
        self._learned: str | None = None
        #: Successful fetches so far (tokens granted or logins made).
        self.fetches = 0
        #: Draws the waits for another refresh in flight (``refresh``) and the backoff
        #: after a failed fetch.
        self._jitter = random.Random()
        #: When the token endpoint may be asked again after failures in a row.
        self._backoff = _EndpointBackoff(config, self._jitter)

    @abstractmethod
    def headers(self, token: str) -> dict[str, str]:
        """The headers that authenticate one API call with ``token``."""

    @abstractmethod
    async def _fetch(self, *, request_timeout_s: float, attempt: int) -> str:
        """Ask for a new token. Raises PardotAuthFailed when the credentials are
        refused, PardotUnavailable when no usable answer came back."""

    @abstractmethod
    def rejected_message(self) -> str:
        """What an operator must fix when the API refuses even a fresh token."""

    async def token(self, *, request_timeout_s: float, attempt: int = 1) -> str:
        """The cached token, fetched first if there is none."""
        token = self._tokens.current()
        if token is not None:
            if token is not self._learned:
                self._learn(token)
            return token
        return await self.refresh(None, request_timeout_s=request_timeout_s, attempt=attempt)

    async def refresh(
        self,
        stale: str | None,
        *,
        request_timeout_s: float,
        attempt: int = 1,
    ) -> str:
        """A token newer than ``stale``: single flight. The first caller to need one
        starts a fetch; every caller that needs one while it runs awaits that same
        fetch and gets its token or its failure — one request, whatever the number of
        callers (a failing endpoint is not asked again by each of them).

        The fetch is a task of its own, shielded from any one caller: a caller whose
        deadline passes stops waiting, but the fetch goes on for the others. (When it
        belonged to the caller that started it, that caller's deadline cancelled it,
        and the callers queued behind fetched again: two token requests where one was
        due.) So its timeout is the connection's ``timeout_s``, not the starter's
        remaining deadline, and every caller's wait stays bounded by its own deadline.
        ``request_timeout_s`` bounds only the waits for another refresh (below).

        The token store runs the flight (``clients.state.tokens`` in this process);
        this method says what one fetch is (:meth:`_fetched`).

        When Salesforce answers that another refresh of the same refresh token is in
        progress (elsewhere: another replica, process or connection), this caller waits
        and asks the store again, which then holds that refresh's token if it is shared,
        or starts a fetch once the other is done. The waits back off (half the cap plus
        a random half, the cap growing as ``backoff_base_s``·2ⁿ⁻¹ up to
        ``backoff_max_s``) and end within ``request_timeout_s`` (the caller's time: the
        transport's deadline bounds it too); then the caller gets PardotUnavailable with
        a RetryInfo. No cooldown: the credentials are fine.
        """
        token = self._tokens.current()
        if token is not None and token != stale:
            return self._learn(token)
        await self._raise_if_rejected()
        self._backoff.raise_if_waiting(self.config.name)
        give_up_at = time.monotonic() + request_timeout_s
        waits = 0
        while True:
            try:
                token = await self._tokens.refresh(stale, partial(self._fetched, attempt))
            except RefreshInProgress as exc:
                waits += 1
                cap = min(
                    self.config.backoff_max_s, self.config.backoff_base_s * 2.0 ** (waits - 1)
                )
                delay = cap / 2 + self._jitter.uniform(0, cap / 2)
                if time.monotonic() + delay >= give_up_at:
                    busy = _fresh(exc)
                    busy.retry_after = max(cap, 0.1)
                    raise busy from None
                log.info(
                    "pardot.token_busy",
                    connection=self.config.name,
                    wait=waits,
                    delay_ms=round(delay * 1000, 1),
                )
                await asyncio.sleep(delay)
                continue
            except ProspectSyncError as exc:
                raise _fresh(exc) from None  # each caller its own copy to annotate
            return self._learn(token)

    def close(self) -> None:
        """Stop a fetch nobody will use (the connection is closing)."""
        self._tokens.close()

    def next_attempt_in(self) -> float:
        """Seconds until the token endpoint may be asked again after failures in a row;
        0.0 when it may be asked now."""
        return self._backoff.remaining()

    async def _fetched(self, attempt: int) -> str:
        """The one fetch in flight: a rejection starts the cooldown, a failure without
        an answer the backoff, and the token is told to the redactor before anyone can
        use it."""
        try:
            token = await self._fetch(request_timeout_s=self.config.timeout_s, attempt=attempt)
        except PardotAuthFailed as exc:
            await self._remember_rejection(exc)
            raise
        except RefreshInProgress:
            raise  # the endpoint works: ``refresh`` waits for the other refresh
        except PardotUnavailable as exc:
            delay = self._backoff.failed(exc)
            log.warning(
                "pardot.token_backoff",
                connection=self.config.name,
                failures=self._backoff.failures,
                delay_ms=round(delay * 1000, 1),
            )
            if exc.retry_after is None:
                exc.retry_after = delay
            raise
        self._backoff.succeeded()
        self._learn(token)
        self.fetches += 1
        return token

    def _learn(self, token: str) -> str:
        """``token``, told to ``on_secret_learned`` unless it was the last one told."""
        if token != self._learned:
            _secret_learned(token)
            self._learned = token
        return token

    async def reject(self, token: str, err: PardotError) -> PardotAuthFailed:
        """The API refused ``token`` right after a refresh: the credentials cannot work.
        Forget the token, fail fast for a while, and say what to fix."""
        await self._tokens.forget(token)
        exc = PardotAuthFailed(
            f"{self.rejected_message()} (Pardot err {err.err_code} again after a refresh)",
            metadata={"err_code": str(err.err_code)},
        )
        await self._remember_rejection(exc)
        return exc

    async def _remember_rejection(self, exc: PardotAuthFailed) -> None:
        await self._tokens.reject(exc, for_s=self.config.auth_failure_cooldown_s)

    async def _raise_if_rejected(self) -> None:
        first = await self._tokens.rejection()
        if first is not None:
            raise PardotAuthFailed(first.message, reason=first.catalogued, metadata=first.metadata)

    def _redact(self, text: str) -> str:
        for secret in self.config.secrets:
            text = text.replace(secret, "[REDACTED]")
        return text


class OAuthAuthenticator(Authenticator):
    """Salesforce OAuth: a token grant, then Bearer + business unit headers."""

    def __init__(
        self,
        config: ConnectionConfig,
        http: httpx.AsyncClient,
        limiter: ConcurrencySlots,
        tokens: TokenStore,
    ) -> None:
        check_oauth(config)
        super().__init__(config, http, limiter, tokens)
        self._token_path = urlsplit(config.token_url).path or "/"

    def headers(self, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            facts.BUSINESS_UNIT_HEADER: self.config.business_unit_id,
        }

    def rejected_message(self) -> str:
        c = self.config
        return (
            f"Pardot refuses the access token of connection {c.name!r}: check that the "
            f"Salesforce user behind {c.key('client_id')} has Pardot access to business "
            f"unit {c.business_unit_id} ({c.key('business_unit_id')})"
        )

    def _grant_form(self) -> dict[str, str]:
        c = self.config
        form = {
            "grant_type": c.grant_type,
            "client_id": c.client_id,
            "client_secret": c.client_secret,
        }
        if c.grant_type == "refresh_token":
            form["refresh_token"] = c.refresh_token
        elif c.grant_type == "password":
            form |= {"username": c.username, "password": c.password}
        return form

    async def _fetch(self, *, request_timeout_s: float, attempt: int) -> str:
        # The token request goes to Salesforce, not Pardot: it takes no Pardot slot.
        c = self.config
        started = time.monotonic()
        status = 0
        try:
            response = await self._http.post(
                c.token_url, data=self._grant_form(), timeout=request_timeout_s
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            raise PardotUnavailable(
                f"the Salesforce token endpoint of connection {c.name!r} did not answer "
                f"({type(exc).__name__})"
            ) from None
        finally:
            record_call(
                None,
                connection=c.name,
                method="POST",
                path=self._token_path,
                started=started,
                attempt=attempt,
                http_status=status,
                purpose="auth",
            )
        body = _json_object(response.content)
        access_token = body.get("access_token") if body is not None else None
        if status == 200 and isinstance(access_token, str):
            # instance_url in the answer is ignored on purpose: only configuration
            # chooses the host that receives our credentials.
            return access_token
        if status >= 500 or status in _TRANSIENT_STATUSES or status == 200:
            raise PardotUnavailable(
                f"the Salesforce token endpoint of connection {c.name!r} answered HTTP {status} "
                "without a token"
            )
        if body is not None and "error" in body:
            error = self._redact(str(body.get("error")))
            description = self._redact(str(body.get("error_description", "")))
            raise _refused(c, error, description)
        raise ProspectSyncError(
            f"the Salesforce token endpoint of connection {c.name!r} answered HTTP {status} "
            f"with a body that is not OAuth's; check {c.key('token_url')}",
            code=StatusCode.FAILED_PRECONDITION,
            reason=Reason.PARDOT_AUTH_ENDPOINT_INVALID,
        )


class LegacyAuthenticator(Authenticator):
    """Pardot's retired email/password/user_key login, for accounts that still have it."""

    def __init__(
        self,
        config: ConnectionConfig,
        http: httpx.AsyncClient,
        limiter: ConcurrencySlots,
        tokens: TokenStore,
    ) -> None:
        check_legacy(config)
        super().__init__(config, http, limiter, tokens)
        self._login_path = facts.LOGIN_PATH.format(version=config.api_version)
        #: The API version the login said the account speaks (4 when it allows several
        #: prospects per email), once known.
        self.account_api_version: int | None = None

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Pardot api_key={token}, user_key={self.config.user_key}"}

    def rejected_message(self) -> str:
        c = self.config
        return (
            f"Pardot refuses the api_key of connection {c.name!r}: check "
            f"{c.key('email')} and {c.key('user_key')}"
        )

    async def _fetch(self, *, request_timeout_s: float, attempt: int) -> str:
        c = self.config
        form = {"email": c.email, "password": c.password, "user_key": c.user_key}
        started = time.monotonic()
        status = 0
        err_code = 0
        try:
            # A login is a Pardot request: it takes a slot like any other call.
            async with self._limiter:
                response = await self._http.post(
                    c.pardot_url.rstrip("/") + self._login_path,
                    params=dict([facts.FORMAT_PARAM]),
                    data=form,
                    timeout=request_timeout_s,
                )
            status = response.status_code
            envelope = parse_response(
                status, response.headers.get("content-type", ""), response.content
            )
        except httpx.HTTPError as exc:
            raise PardotUnavailable(
                f"Pardot did not answer the login of connection {c.name!r} ({type(exc).__name__})"
            ) from None
        except PardotError as exc:
            err_code = exc.err_code
            raise self._login_refused(exc) from None
        finally:
            record_call(
                None,
                connection=c.name,
                method="POST",
                path=self._login_path,
                started=started,
                attempt=attempt,
                http_status=status,
                err_code=err_code,
                purpose="auth",
            )
        api_key = envelope.get("api_key")
        if not isinstance(api_key, str) or not api_key:
            raise PardotUnavailable(
                f"Pardot's login answer for connection {c.name!r} has no api_key"
            )
        version = envelope.get("version")
        if version is not None and str(version).isdigit():
            self.account_api_version = int(version)
        return api_key

    def _login_refused(self, exc: PardotError) -> ProspectSyncError:
        c = self.config
        if exc.err_code == facts.ERR_LEGACY_AUTH_RETIRED:
            return PardotAuthFailed(
                f"Pardot no longer accepts legacy logins (err {exc.err_code}): set "
                f'{c.key("auth")} = "oauth" with a business unit and Salesforce credentials',
                reason=exc.catalogued,
                metadata={"err_code": str(exc.err_code)},
            )
        if exc.err_code == facts.ERR_LOGIN_FAILED or exc.rule.refresh_credentials:
            return PardotAuthFailed(
                f"Pardot refused the login of connection {c.name!r} (err {exc.err_code}: "
                f"{exc.text}); fix {c.key('email')}, {c.key('password')} and {c.key('user_key')}",
                metadata={"err_code": str(exc.err_code)},
            )
        return exc


def make_authenticator(
    config: ConnectionConfig,
    http: httpx.AsyncClient,
    limiter: ConcurrencySlots,
    tokens: TokenStore,
) -> Authenticator:
    """The authenticator for ``config.auth``, keeping its token in ``tokens``; raises
    FailedPrecondition naming the configuration key when the settings cannot work."""
    check_connection(config)
    if config.auth == "oauth":
        return OAuthAuthenticator(config, http, limiter, tokens)
    return LegacyAuthenticator(config, http, limiter, tokens)


def _fresh(exc: ProspectSyncError) -> ProspectSyncError:
    """A copy of a shared flight's failure: callers add retry hints to what they raise."""
    copy = exc.__class__.__new__(exc.__class__)
    copy.__dict__.update(exc.__dict__)
    copy.args = exc.args
    return copy


class TokenEndpointBackingOff(PardotUnavailable):
    """The token endpoint failed just now and is not asked again until its backoff
    ends: UNAVAILABLE with a RetryInfo of the time left. Not retried by the transport,
    which could only wait for the same window: the caller hears it at once."""

    @property
    def retryable(self) -> bool:
        return False


class _EndpointBackoff:
    """When one connection's token endpoint may be asked again after failures without
    an answer: equal jitter (half the cap plus a random half, never near zero, so a
    crowd of callers cannot turn it into a storm), the cap doubling per failure in a
    row from ``backoff_base_s`` up to ``backoff_max_s``. In this process: a backend
    that shares the token (Redis) would keep this mark beside it, so that replicas back
    off together."""

    def __init__(self, config: ConnectionConfig, jitter: random.Random) -> None:
        self._base_s = config.backoff_base_s
        self._max_s = config.backoff_max_s
        self._jitter = jitter
        #: Failed fetches in a row; 0 after a success.
        self.failures = 0
        self._until = 0.0  # time.monotonic()
        self._last: PardotUnavailable | None = None

    def failed(self, error: PardotUnavailable) -> float:
        """One more failure in a row: the delay before the next fetch may start."""
        self.failures += 1
        cap = min(self._max_s, self._base_s * 2.0 ** (self.failures - 1))
        delay = cap / 2 + self._jitter.uniform(0, cap / 2)
        self._until = time.monotonic() + delay
        self._last = error
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self._until = 0.0
        self._last = None

    def remaining(self) -> float:
        return max(0.0, self._until - time.monotonic())

    def raise_if_waiting(self, connection: str) -> None:
        left = self.remaining()
        if left <= 0 or self._last is None:
            return
        raise TokenEndpointBackingOff(
            f"{self._last.message}; the token endpoint of connection {connection!r} failed "
            f"{self.failures} time(s) in a row, and is asked again in {left:.2f} s (no "
            "request is sent for this call meanwhile)",
            retry_after=max(left, 0.001),
        )


class RefreshInProgress(PardotUnavailable):
    """Salesforce is processing another refresh of the same refresh token: transient
    (retryable UNAVAILABLE if it outlasts the caller's wait), never a credentials error."""


def _refused(config: ConnectionConfig, error: str, description: str) -> ProspectSyncError:
    """What Salesforce's refusal of a grant means, with the keys to fix (``_REFUSALS``)."""
    grant = config.grant_type
    where = f"Salesforce refused the OAuth {grant} grant of connection {config.name!r}"
    if (
        grant == "refresh_token"
        and error == "invalid_grant"
        and description in _REFRESH_IN_PROGRESS
    ):
        return RefreshInProgress(
            f"{where} ({error}: {description}): another refresh of the same refresh token "
            "is in progress (another replica, process or connection with these credentials)",
            metadata={"oauth_error": error},
        )
    known = _REFUSALS.get((error, description)) or _REFUSALS.get((error, None))
    grant_keys = GRANT_KEYS[grant]
    if known is not None and set(known[1]) <= {"grant_type", *grant_keys}:
        what, keys, hint = known
        fix = " and ".join(config.key(k) for k in keys)
        hint = hint.format_map({k: config.key(k) for k in ("token_url", "client_id")})
        message = f"{where} ({error}: {description}): {what}; fix {fix} ({hint})"
    else:
        message = f"{where} ({error}: {description}); fix " + ", ".join(
            config.key(name) for name in grant_keys
        )
    return PardotAuthFailed(message, metadata={"oauth_error": error})


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
