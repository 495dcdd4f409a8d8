"""Whether the service's own state can be written now: one answer for every store of a
backend, for the servicer (refuse a call before it writes anything) and for the health
service (NOT_SERVING while it cannot).

Why one object: a full disk is found by whichever store writes next (the identity map
after a Pardot write, the message_id records before one), but what it means is the
same for every call: the service could no longer remember what it writes to Pardot,
so it must stop writing to Pardot. The store that fails reports here (:meth:`failed`)
and raises what it returns; from then on :meth:`check` refuses every call before it
starts, and :meth:`changes` tells the health service. A failed write never mends
itself in anyone's sight while calls are refused (nobody writes), so a probe the
backend supplies (``clients.state.local_db.probe_folder``: a small write in the state
folder) runs every :attr:`probe_every_s` in a worker thread until it passes; a real
write that fails again afterwards starts the next outage.

It never decides what a store writes, never retries a store's write, and never talks
to Pardot. In memory, per process: a backend shared by replicas (Redis) gives each
replica its own, fed by its own failures and probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import structlog

from strategies.core.errors import StateUnwritable

log = structlog.get_logger("clients")

#: How often a failed state is probed: the soonest a refused caller may try again.
PROBE_EVERY_S = 2.0


class StateHealth:
    """One backend's state: writable, or failed since a write failed (until ``probe()``,
    which raises while the state still cannot be written, passes)."""

    def __init__(self, probe: Callable[[], None], *, probe_every_s: float = PROBE_EVERY_S) -> None:
        self._probe = probe
        self.probe_every_s = probe_every_s
        #: What failed first in the current outage ("the identity map: database or disk
        #: is full"); None while the state is writable.
        self._problem: str | None = None
        self._failed_at = 0.0
        #: The current outage's counts, for its "state.writable" line.
        self.failures = 0
        self.refused = 0
        self.probes_failed = 0
        self._prober: asyncio.Task[None] | None = None
        #: Set (then replaced) on every change, for :meth:`changes`.
        self._changed = asyncio.Event()

    @property
    def writable(self) -> bool:
        return self._problem is None

    def check(self) -> None:
        """Raises StateUnwritable while the state cannot be written: called before a call
        starts, so a refused call costs no Pardot call."""
        if self._problem is not None:
            self.refused += 1
            raise StateUnwritable(
                "refused before any Pardot call: the service's own state cannot be written "
                f"just now ({self._problem}); retry after the delay, with the same message_id",
                retry_after=self.probe_every_s,
            )

    def failed(self, what: str, error: BaseException) -> StateUnwritable:
        """``what`` ("the identity map") could not be written (or read): the state is
        failed until the probe passes. Returns the error for the store to raise."""
        problem = f"{what}: {error}"
        self.failures += 1
        if self._problem is None:
            self._problem = problem
            self._failed_at = time.monotonic()
            self.refused = self.probes_failed = 0
            log.error("state.unwritable", what=what, error=str(error))
            self._changed_now()
            self._start_probing()
        return StateUnwritable(
            f"the service's own state cannot be written just now ({problem}); retry after "
            "the delay, with the same message_id",
            retry_after=self.probe_every_s,
        )

    async def changes(self) -> AsyncIterator[bool]:
        """Whether the state is writable now, then again at every change."""
        while True:
            changed = self._changed
            yield self.writable
            await changed.wait()

    def close(self) -> None:
        """Stops the probe (the service is stopping)."""
        if self._prober is not None:
            self._prober.cancel()
            self._prober = None

    def _changed_now(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _start_probing(self) -> None:
        if self._prober is not None:
            return
        try:
            self._prober = asyncio.get_running_loop().create_task(self._probe_until_writable())
        except RuntimeError:  # no event loop (a tool's synchronous run): nobody to serve
            return

    async def _probe_until_writable(self) -> None:
        try:
            while self._problem is not None:
                await asyncio.sleep(self.probe_every_s)
                try:
                    await asyncio.to_thread(self._probe)
                except Exception as still:
                    self.probes_failed += 1
                    log.debug("state.probe_failed", error=str(still))
                    continue
                log.info(
                    "state.writable",
                    failed_for_s=round(time.monotonic() - self._failed_at, 3),
                    failures=self.failures,
                    refused=self.refused,
                    probes_failed=self.probes_failed,
                )
                self._problem = None
                self.failures = 0
                self._changed_now()
        finally:
            self._prober = None
