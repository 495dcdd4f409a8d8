"""An account's concurrency slots, in this process: ``clients.state.protocols.ConcurrencySlots``
for the embedded backend (one process).

They are an ``asyncio.Semaphore`` as it is, with no wrapper: the transport enters them
on every request, so they must cost nothing beyond the semaphore. asyncio's semaphore
lets waiters in in arrival order, and a waiter cancelled while it waits (a deadline)
leaves the queue without taking a slot. Several processes on one Pardot account need
the Redis backend's shared slots instead: these count this process's requests only.
"""

from __future__ import annotations

import asyncio


def process_slots(limit: int) -> asyncio.Semaphore:
    """At most ``limit`` requests in flight in this process."""
    return asyncio.Semaphore(limit)
