"""The one retry policy of a Pardot connection: what is retried, how long to wait, when
to stop, and which writes are never sent twice.

- **Retryable** failures are those whose reason says so (``Reason.retryable``:
  connection errors, timeouts, 5xx, 408/429, bodies that are not Pardot's, and the err
  codes the table marks, 66, 85, 116, …); err 122 and everything else is final.
- **Full jitter**: the n-th retry waits uniformly in
  ``[0, min(backoff_max_s, backoff_base_s·2ⁿ⁻¹)]``, at most ``max_retries`` times.
- **The deadline** is an absolute ``time.monotonic()``; everything stops
  ``DEADLINE_MARGIN_S`` before it, so the caller hears the outcome in time. No request
  starts without time left, and a backoff that would end past it is not slept.
- **A write that is not idempotent** (a create, an external activity) is resent only
  when Pardot provably did not process it (the transport says whether it was
  ``sent``); otherwise the caller gets PardotWriteUnconfirmed, with a RetryInfo that
  gives Pardot about a request's time when its work may not be over.

It decides; it never sends. The transport asks it after each failed attempt, and the
write queue asks it how to word a batched create left in doubt.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Mapping

from grpc import StatusCode

from clients.config import ConnectionConfig
from clients.wire.request import PardotRequest
from strategies.core.errors import (
    DeadlineExceeded,
    PardotError,
    PardotWriteUnconfirmed,
    ProspectSyncError,
)

#: Time kept back from the caller's deadline to report the outcome before it passes.
DEADLINE_MARGIN_S = 0.05


class RetryPolicy:
    """One connection's retry settings (``max_retries``, ``backoff_base_s``,
    ``backoff_max_s``, ``timeout_s``); ``rng`` draws the jitter (a seeded or rigged
    one in tests)."""

    __slots__ = ("_random", "backoff_base_s", "backoff_max_s", "max_retries", "timeout_s")

    def __init__(self, config: ConnectionConfig, *, rng: random.Random | None = None) -> None:
        self.max_retries = config.max_retries
        self.backoff_base_s = config.backoff_base_s
        self.backoff_max_s = config.backoff_max_s
        self.timeout_s = config.timeout_s
        self._random = rng if rng is not None else random.Random()

    def backoff_cap(self, retry: int) -> float:
        """Full jitter: the ``retry``-th retry waits uniformly in [0, this]."""
        return min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (retry - 1))

    def request_timeout(self, deadline: float | None, connection: str) -> float:
        """min(timeout_s, what is left of the deadline less the margin); raises
        DeadlineExceeded when nothing is left, so no request starts that cannot end."""
        if deadline is None:
            return self.timeout_s
        remaining = deadline - time.monotonic() - DEADLINE_MARGIN_S
        if remaining <= 0:
            raise DeadlineExceeded(
                f"no time left before the deadline to call Pardot (connection {connection!r})"
            )
        return min(self.timeout_s, remaining)

    def backoff_before_retry(
        self,
        error: ProspectSyncError,
        *,
        sent: bool,
        request: PardotRequest,
        retries: int,
        deadline: float | None,
    ) -> float:
        """How long to wait before sending ``request`` again, after ``retries`` retries
        so far and a failed attempt that Pardot may have processed (``sent``) or
        provably did not. Raises what the caller gets instead when no retry is due:
        the error itself (final, or with a RetryInfo once retries or time run out), or
        PardotWriteUnconfirmed for a write that is not safe to repeat."""
        if not error.retryable:
            raise error from None
        if sent and not request.idempotent:
            # Pardot may have applied this write (a create, or v4 upsert/email, which
            # always creates): sending it again could duplicate it.
            raise self.write_not_resent(request, error) from None
        if retries >= self.max_retries:
            raise _with_retry_hint(error, self.backoff_cap(retries + 1)) from None
        cap = self.backoff_cap(retries + 1)
        delay = self._random.uniform(0, cap)
        if deadline is not None and time.monotonic() + delay >= deadline - DEADLINE_MARGIN_S:
            raise _with_retry_hint(error, cap) from None
        return delay

    def write_not_resent(
        self, request: PardotRequest, error: ProspectSyncError
    ) -> PardotWriteUnconfirmed:
        """A write that is not safe to repeat failed after it was sent. With Pardot's
        own err envelope (``settled``) its work is over and a read tells whether the
        write landed; without an answer the write may still land."""
        return self.unconfirmed(
            f"{error.message}; {request.method} {request.path} may have been applied, so "
            "it was not resent (a retried call reads before it writes)",
            settled=isinstance(error, PardotError),
            metadata=error.metadata,
        )

    def unconfirmed(
        self,
        message: str,
        *,
        settled: bool,
        code: StatusCode | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PardotWriteUnconfirmed:
        """PardotWriteUnconfirmed with the RetryInfo this policy gives it: settled
        (Pardot answered, its work is over) → retry soon, after one backoff; not settled
        → give Pardot about a request's time (``timeout_s``) to finish first."""
        return PardotWriteUnconfirmed(
            message,
            settled=settled,
            code=code,
            retry_after=self.backoff_cap(1) if settled else self.timeout_s,
            metadata=metadata,
        )


@contextlib.asynccontextmanager
async def deadline_scope(deadline: float | None) -> AsyncIterator[asyncio.Timeout]:
    """Bound everything (queueing for a slot, a token refresh, requests, backoff) by
    the deadline less the margin; expiry surfaces as TimeoutError. None: unbounded
    (until the yielded timeout is rescheduled with :func:`loop_time`)."""
    async with asyncio.timeout_at(loop_time(deadline)) as scope:
        yield scope


def loop_time(deadline: float | None) -> float | None:
    """The event loop's clock reading at which ``deadline`` less the margin falls."""
    if deadline is None:
        return None
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic() - DEADLINE_MARGIN_S)


def _with_retry_hint(error: ProspectSyncError, retry_after: float) -> ProspectSyncError:
    if error.retry_after is None:
        error.retry_after = retry_after
    return error
