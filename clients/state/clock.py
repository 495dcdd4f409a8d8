"""The time durable state is kept in: seconds that only ever run forward, at the rate
time passes, whatever anyone does to the wall clock (issue 12, item 11).

The message_id records and the create holds must outlive the process, so they cannot
live on ``time.monotonic()`` alone (it means nothing to the next process); on the wall
clock, a step forward (an operator, NTP after a drift) ended every window and hold at
once, and turned a replay into a second CreateV4 prospect. :class:`StateClock` is
neither:

- while the process runs it follows the clock since boot (``CLOCK_BOOTTIME`` where the
  OS has it, else ``time.monotonic()``), which no step of the wall clock moves;
- it keeps a mark in the store's own file — its reading, the wall clock's and the
  clock since boot at that moment, and the boot's id — written with every change the
  store commits; the next process on the same file starts from that mark:
  - on the same boot, plus the time since boot that passed meanwhile: downtime is
    counted exactly, steps made while the process was down are ignored too;
  - after a reboot (or where the OS gives no boot id) the clock since boot restarted,
    so only the wall clock can tell how long the process was down: plus the wall
    clock's advance since the mark, never less than nothing. THE LIMIT: a forward step
    of the wall clock while the machine was down cannot be told from downtime and ends
    the windows and holds it covers; a step back then counts as no downtime at all.

The first time a file is opened (no mark) it starts at the wall clock's reading, so
times stored by an earlier version keep their meaning. Nothing here talks to the
network or sleeps.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Protocol

#: Where Linux names the running boot.
_BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")

#: The statement that creates the mark's table: a store runs it with its own schema.
MARK_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS clock_mark ("
    " only INTEGER PRIMARY KEY CHECK (only = 0),"
    " state_time REAL NOT NULL, wall_time REAL NOT NULL,"
    " boot_id TEXT NOT NULL, since_boot REAL NOT NULL)"
)


class HostClocks(Protocol):
    """The host's clocks, as :class:`StateClock` reads them (tests drive their own)."""

    @property
    def boot_id(self) -> str:
        """Names the running boot; "" when the OS does not say."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch, as the wall clock says (it may step)."""
        ...

    def elapsed(self) -> float:
        """Seconds since boot: only ever runs forward, at the rate time passes."""
        ...


class SystemClocks:
    """This machine's clocks."""

    def __init__(self) -> None:
        try:
            self.boot_id = _BOOT_ID_FILE.read_text().strip()
        except OSError:
            self.boot_id = ""

    def wall(self) -> float:
        return time.time()

    def elapsed(self) -> float:
        if hasattr(time, "CLOCK_BOOTTIME"):  # counts a suspended machine's time too
            return time.clock_gettime(time.CLOCK_BOOTTIME)
        return time.monotonic()


SYSTEM_CLOCKS = SystemClocks()


class StateClock:
    """The clock of the store whose file ``db`` is (its mark lives there: the store runs
    :data:`MARK_SCHEMA` first); :meth:`now` in seconds, comparable with every time
    stored in that file by any process."""

    def __init__(self, db: sqlite3.Connection, host: HostClocks = SYSTEM_CLOCKS) -> None:
        self._db = db
        self._host = host
        row = db.execute(
            "SELECT state_time, wall_time, boot_id, since_boot FROM clock_mark"
        ).fetchone()
        since_boot, wall = host.elapsed(), host.wall()
        if row is None:
            start = wall
        else:
            state_time, marked_wall, boot_id, marked_since_boot = row
            if host.boot_id and boot_id == host.boot_id and since_boot >= marked_since_boot:
                start = state_time + (since_boot - marked_since_boot)
            else:
                start = state_time + max(0.0, wall - marked_wall)
        self._start = start
        self._started_since_boot = since_boot
        self.mark()

    def now(self) -> float:
        return self._start + (self._host.elapsed() - self._started_since_boot)

    def wall(self) -> float:
        """The wall clock now: for what is compared with other hosts' clocks (Pardot's
        timestamps), never for a window."""
        return self._host.wall()

    def mark(self) -> None:
        """Writes the mark; inside the caller's transaction when one is open."""
        self._db.execute(
            "INSERT OR REPLACE INTO clock_mark"
            " (only, state_time, wall_time, boot_id, since_boot) VALUES (0, ?, ?, ?, ?)",
            (self.now(), self._host.wall(), self._host.boot_id, self._host.elapsed()),
        )
