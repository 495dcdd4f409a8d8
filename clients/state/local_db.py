"""The one way the service opens a local SQLite file under ``server.state_dir`` (the
identity map, the message_id records, the backfill journal).

WAL lets the server and a backfill run read and write the same file at once;
``synchronous=NORMAL`` is durable across a process crash (only an OS crash can lose the
last commits, which cost one extra Pardot read later, never a wrong answer). Autocommit:
every statement the callers run is one small transaction unless they open one
themselves (the message_id records group several calls' records in one).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_local_db(path: Path, *schema: str) -> sqlite3.Connection:
    """Opens (creating folders and file as needed) and runs the ``CREATE … IF NOT
    EXISTS`` statements of ``schema``. Shared by the event loop thread only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in schema:
        db.execute(statement)
    return db
