"""How fast one Pardot account's calls go, as this process has seen them, and the one
decision that needs it: whether a call about to make its first request can still
finish before its deadline (issue 12).

A call that starts and cannot finish wastes the Pardot calls it made: under a burst of
cold LookupFieldV4 calls (read by email, then write), reads that start too late are
never followed by their write, and the queue they sat in delayed everyone behind. So
before a first request waits for a slot, and again once it holds one after waiting,
the transport asks :meth:`AccountPace.refusal`: the call's expected time is the account's
observed request latency times its observed requests per call, plus, at arrival, a
lower bound of the wait for the slot (each waiter ahead holds a slot for a request's
time, ``limit`` at a time). Refused calls get UNAVAILABLE ``DEADLINE_UNREACHABLE`` with
a RetryInfo, and nothing was sent.

Only with evidence: no refusal before this process has seen an answer from the
account (no latency is known), and only when the request would wait (with a slot free,
the request goes: the queue, not Pardot's variance, is what this judges). Follow-ups
are never refused — their call has spent a request already, and it has the slots'
priority (``clients.state.slots``). The estimate is per account and in this process:
it learns from every connection to the account, and starts empty on a restart.

It decides; it never sends and never sleeps.
"""

from __future__ import annotations

import math

from strategies.core.errors import ProspectSyncError, Reason

#: Weight of the newest answer in the running mean of request latencies.
LATENCY_WEIGHT = 0.2
#: How much older calls count against newer ones in the requests-per-call estimate
#: (per call): about the last hundred calls.
CALL_DECAY = 0.99
#: RetryInfo bounds of a refusal.
MIN_RETRY_S = 0.1
MAX_RETRY_S = 30.0


class DeadlineUnreachable(ProspectSyncError):
    """The call cannot finish before its deadline at the account's current pace; it was
    refused before any Pardot call, so a retry (later, or with a longer deadline) is
    safe for any write."""

    default_reason = Reason.DEADLINE_UNREACHABLE


class AccountPace:
    """One account's observed pace, shared by every connection to it (held by its
    ``clients.account.PardotAccount``). ``latency_s`` is None until an answer came."""

    __slots__ = ("_firsts", "_follow_ups", "latency_s")

    def __init__(self) -> None:
        self.latency_s: float | None = None
        #: Decayed counts of calls whose first request was answered, and of the
        #: requests such calls made after it (retries not counted).
        self._firsts = 0.0
        self._follow_ups = 0.0

    def answered(self, duration_s: float, *, first: bool) -> None:
        """A request of the account got an answer after ``duration_s``; ``first``: it
        was its call's first request (the call is counted from then on)."""
        if self.latency_s is None:
            self.latency_s = duration_s
        else:
            self.latency_s += LATENCY_WEIGHT * (duration_s - self.latency_s)
        if first:
            self._firsts = self._firsts * CALL_DECAY + 1.0
            self._follow_ups *= CALL_DECAY

    def followed_up(self) -> None:
        """A call under way made one more request (sent alone or queued for a batch)."""
        self._follow_ups += 1.0

    @property
    def requests_per_call(self) -> float:
        """How many requests a call of this account makes, on recent average (1 until
        a call was seen to make more)."""
        if self._firsts < 1.0:
            return 1.0
        return 1.0 + self._follow_ups / self._firsts

    def refusal(
        self, *, remaining_s: float, ahead: int, limit: int, connection: str
    ) -> DeadlineUnreachable | None:
        """Why a call about to make its first request cannot finish in ``remaining_s``
        (its deadline less the transport's margin) with ``ahead`` waiters before it
        and ``limit`` slots; None when it may, or when nothing is known yet."""
        latency = self.latency_s
        if latency is None:
            return None
        wait_s = (ahead // max(1, limit)) * latency  # a lower bound: see the module
        call_s = latency * self.requests_per_call
        if wait_s + call_s <= remaining_s:
            return None
        retry_after = min(max(wait_s + call_s, MIN_RETRY_S), MAX_RETRY_S)
        where = f"{ahead} request(s) ahead in the queue, " if ahead else ""
        return DeadlineUnreachable(
            f"this call cannot finish before its deadline: {remaining_s:.2f} s left, and "
            f"Pardot (connection {connection!r}) takes about {latency:.2f} s a request, "
            f"{self.requests_per_call:.1f} request(s) a call, with {where}"
            f"{limit} in flight at most; nothing was sent. Retry in about "
            f"{math.ceil(retry_after * 10) / 10:.1f} s or with a longer deadline",
            retry_after=retry_after,
        )
