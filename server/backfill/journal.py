"""The backfill journal: which rows of a file are finished, so a run that stopped (the
daily limit, Ctrl-C, a crash) resumes without reading or writing them again.

Finished means set, already set or not found (``RowOutcome.journaled``).

A job is one file's exact bytes (SHA-256) backfilling one lookup field on one
connection: edit the file, or pick another field or connection, and it is a new job.
Each finished row is committed as soon as it is known (SQLite in WAL mode in
``server.state_dir``, beside the identity map), so an interruption loses at most the
rows in flight, and those are simply done again.

Failed rows and conflicts are never journaled: a rerun is what retries a failure and
re-checks a conflict a person may have settled in Pardot. A dry run never writes here.
"""

from __future__ import annotations

import time
from pathlib import Path

from clients.state.local_db import open_local_db
from server.backfill.model import RowResult

#: The journal's file inside ``server.state_dir``.
JOURNAL_FILE = "backfill.sqlite3"


def job_key(sha256: str, connection: str, lookup_field: str) -> str:
    return f"{sha256}:{connection}:{lookup_field}"


class BackfillJournal:
    def __init__(self, path: Path, job: str) -> None:
        self.path = path
        self.job = job
        self._db = open_local_db(
            path,
            "CREATE TABLE IF NOT EXISTS backfill_rows ("
            " job TEXT NOT NULL, line INTEGER NOT NULL, result TEXT NOT NULL,"
            " finished_at REAL NOT NULL, PRIMARY KEY (job, line))",
        )

    def finished(self) -> dict[int, RowResult]:
        """The job's finished rows by line."""
        rows = self._db.execute(
            "SELECT line, result FROM backfill_rows WHERE job=? ORDER BY line", (self.job,)
        )
        return {int(line): RowResult.from_json(result) for line, result in rows}

    def record(self, result: RowResult) -> None:
        if not result.outcome.journaled:
            raise ValueError(f"line {result.line} is not journaled ({result.outcome.value})")
        self._db.execute(
            "INSERT OR REPLACE INTO backfill_rows (job, line, result, finished_at)"
            " VALUES (?, ?, ?, ?)",
            (self.job, result.line, result.to_json(), time.time()),
        )

    def forget(self) -> int:
        """Drop the job's rows (``--restart``); returns how many there were."""
        return self._db.execute("DELETE FROM backfill_rows WHERE job=?", (self.job,)).rowcount

    def close(self) -> None:
        self._db.close()
