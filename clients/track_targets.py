"""What one connection has learned about the targets of track mappings: which lists the
account has, and which external activity types Pardot refused, so that track checks a
mapping before it writes the prospect (``strategies.track.run_track``) without a Pardot
call per event.

- A list's existence comes from Pardot's list read (``clients.gateway``), remembered
  :data:`LIST_FOUND_TTL_S` when found and :data:`LIST_MISSING_TTL_S` when not: a list is
  rarely deleted, and an operator who creates a missing one should not wait long. Many
  calls that need one list at once share one read (single flight); a read that fails
  (an outage, a deadline) is remembered by nobody.
- Pardot's API has no read of external activity types (they are Salesforce Tooling API
  records, on a host this service never sends credentials to), so a refusal is learned
  from the first activity refused and remembered :data:`ACTIVITY_REFUSED_TTL_S`: until
  then later calls naming that type are refused before any call.

In memory, per connection, bounded by what mappings name; never talks to the network
itself (the reads come in as functions). A cache of Pardot's facts, not state that keeps
prospects unique: a replica that has not learned a fact yet asks Pardot again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from strategies.core.errors import PardotError

#: How long a list Pardot has is believed to exist.
LIST_FOUND_TTL_S = 600.0
#: How long a list Pardot does not have is believed missing.
LIST_MISSING_TTL_S = 60.0
#: How long an external activity type Pardot refused is refused without asking.
ACTIVITY_REFUSED_TTL_S = 300.0


class TrackTargets:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lists: dict[int, tuple[bool, float]] = {}  # list id → (exists, until)
        self._reading: dict[int, asyncio.Future[bool]] = {}
        self._refused: dict[tuple[str, str], tuple[PardotError, float]] = {}

    async def list_exists(self, list_id: int, read: Callable[[], Awaitable[bool]]) -> bool:
        """Whether the account has ``list_id``: remembered, or ``read()`` once for every
        caller that asks meanwhile (each gets its outcome, the failure included)."""
        while True:
            known = self._lists.get(list_id)
            if known is not None and self._clock() < known[1]:
                return known[0]
            reading = self._reading.get(list_id)
            if reading is None:
                return await self._read(list_id, read)
            try:
                return await asyncio.shield(reading)
            except asyncio.CancelledError:
                if reading.cancelled():  # its reader's deadline cut it: read afresh
                    continue
                raise

    async def _read(self, list_id: int, read: Callable[[], Awaitable[bool]]) -> bool:
        reading: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        reading.add_done_callback(_retrieve)
        self._reading[list_id] = reading
        try:
            exists = await read()
        except asyncio.CancelledError:
            reading.cancel()
            raise
        except Exception as exc:
            reading.set_exception(exc)
            raise
        finally:
            self._reading.pop(list_id, None)
        self.remember_list(list_id, exists)
        reading.set_result(exists)
        return exists

    def remember_list(self, list_id: int, exists: bool) -> None:
        """What Pardot just said of ``list_id`` (a read, or err 55 on an add)."""
        ttl = LIST_FOUND_TTL_S if exists else LIST_MISSING_TTL_S
        self._lists[list_id] = (exists, self._clock() + ttl)

    def refused_activity(self, extension: str, activity_type: str) -> PardotError | None:
        """Pardot's refusal of this activity type, if it refused it lately."""
        known = self._refused.get((extension, activity_type))
        if known is None:
            return None
        if self._clock() >= known[1]:
            del self._refused[(extension, activity_type)]
            return None
        return known[0]

    def refuse_activity(self, extension: str, activity_type: str, error: PardotError) -> None:
        self._refused[(extension, activity_type)] = (error, self._clock() + ACTIVITY_REFUSED_TTL_S)


def _retrieve(reading: asyncio.Future[bool]) -> None:
    """Mark a read's failure as seen even when nobody else waited for it."""
    if not reading.cancelled():
        reading.exception()
