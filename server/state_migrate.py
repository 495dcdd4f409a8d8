"""``prospect-sync state migrate --from sqlite --to redis``: copies the embedded state a
deployment has (the SQLite files under ``server.state_dir``) into the Redis of its
``[redis]`` table, so that switching to ``server.state = "redis"`` forgets nothing that
prevents a duplicate: the identity map (no second prospect for a person already
synced, and one Pardot call instead of a lookup) and the message_id records within the
idempotency window (a replay of an answered message answers from its record; a message
in progress stays in progress, since its attempt may have written).

It reads the files through their stores (``clients.state.identity``,
``clients.state.responses``) and writes through the Redis stores' protocol methods
only, so Redis holds what the service itself would have written. Idempotent: an entry
Redis already has is counted and left alone, so running it again (or after replicas
started on Redis) changes nothing. Where Redis maps a key to another prospect than the
file does, Redis wins: it is what the running service learned since.

THE LIMIT of writing through the protocol: a copied response is stored as the service
stores one, so its window starts again at the copy (a record 20 hours old in a 24-hour
window is kept 24 more hours, not 4): replays are recognised longer than promised,
never shorter. The less important collection, the create holds, is not copied: it
lasts ``unconfirmed_create_hold_s`` (a minute); stop the old service that long
before starting on Redis.

Exit codes: 0 done (counts on stdout); 1 Redis could not be written (nothing half
done matters: run it again); 2 bad options or configuration, or no SQLite state found.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TypeVar

from clients.state.identity import SqliteIdentityStore
from clients.state.local import IDEMPOTENCY_FILE, IDENTITY_FILE
from clients.state.protocols import IdempotencyKey, IdentityStore, ResponseRecords
from clients.state.responses import ResponseStore
from server.config import ConfigError, ServiceConfig, load_config
from strategies.core.errors import StateUnwritable

T = TypeVar("T")

EXIT_OK = 0
EXIT_UNWRITABLE = 1
EXIT_USAGE = 2

#: Entries copied at once: Redis answers each over the network, so one at a time would
#: take a round trip per entry; this many in flight keeps the pipe full without
#: queuing more than the client's pool comfortably holds.
CHUNK = 200

DESCRIPTION = """\
Copy the embedded state (the SQLite files under server.state_dir) into the Redis of
the [redis] table: the identity map and the message_id records still within
server.idempotency_window_s (answered and in progress). Run it before switching
server.state to "redis". Safe to run again: what Redis already holds is left alone.

Exit codes: 0 done; 1 Redis could not be written (run it again); 2 bad options,
configuration, or no SQLite state under server.state_dir.
"""


@dataclass
class Copied:
    """One kind's counts: copied now, found in Redis already, and (identity map only)
    kept as Redis has it because it names another prospect."""

    copied: int = 0
    already: int = 0
    differs: int = 0


@dataclass
class Migration:
    identity: Copied
    answered: Copied
    in_progress: Copied

    def render(self, state_dir: Path) -> str:
        return "\n".join(
            (
                f"from {state_dir} to Redis:",
                f"  identity map: {self.identity.copied} copied, {self.identity.already} "
                f"already in Redis, {self.identity.differs} kept as Redis has them "
                "(another prospect)",
                f"  message_id responses: {self.answered.copied} copied, "
                f"{self.answered.already} already in Redis",
                f"  message_id in progress: {self.in_progress.copied} copied, "
                f"{self.in_progress.already} already in Redis",
            )
        )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``state migrate`` to ``prospect-sync``'s subparsers."""
    state = commands.add_parser("state", help="manage the service's own state")
    actions = state.add_subparsers(dest="state_command", required=True, metavar="ACTION")
    migrate = actions.add_parser(
        "migrate",
        help="copy the SQLite state into Redis (before switching server.state)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate.add_argument("--from", dest="source", required=True, choices=("sqlite",))
    migrate.add_argument("--to", dest="target", required=True, choices=("redis",))
    migrate.add_argument("--config", required=True, type=Path, metavar="FILE", help="TOML file")


def command(args: argparse.Namespace, prog: str) -> int:
    from server.logging import configure_logging, redact

    try:
        config = load_config(args.config)
        configure_logging("warning", config.secrets)
        sources = _sources(config)
        migration = asyncio.run(migrate(config, *sources))
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StateUnwritable as error:
        # redis-py names the host and port, never the password; redacted all the same.
        print(f"{prog}: {redact(error.message)}", file=sys.stderr)
        return EXIT_UNWRITABLE
    print(migration.render(config.server.state_dir))
    return EXIT_OK


def _sources(config: ServiceConfig) -> tuple[Path | None, Path | None]:
    if config.redis is None:
        raise ConfigError(["redis: migrating to Redis needs the [redis] table with its url"])
    folder = config.server.state_dir
    identity, records = folder / IDENTITY_FILE, folder / IDEMPOTENCY_FILE
    found = (identity if identity.exists() else None, records if records.exists() else None)
    if found == (None, None):
        raise ConfigError(
            [f"server.state_dir: no SQLite state in {folder} ({IDENTITY_FILE}, {IDEMPOTENCY_FILE})"]
        )
    return found


async def migrate(
    config: ServiceConfig, identity_file: Path | None, records_file: Path | None
) -> Migration:
    """Copies what the files hold into ``config.redis`` (see the module docstring)."""
    from clients.state.redis.state import RedisState

    assert config.redis is not None
    window_s = config.server.idempotency_window_s
    redis = RedisState(
        config.redis.url, key_prefix=config.redis.key_prefix, timeout_s=config.redis.timeout_s
    )
    identity, records = redis.identity(), redis.responses(window_s=window_s)
    try:
        migration = Migration(Copied(), Copied(), Copied())
        if identity_file is not None:
            source = SqliteIdentityStore(identity_file)
            try:
                await _each(
                    source.entries(), lambda e: _identity_entry(identity, *e, migration.identity)
                )
            finally:
                source.close()
        if records_file is not None:
            stored = ResponseStore(records_file, window_s=window_s)
            try:
                await _each(
                    stored.answered(),
                    lambda r: _answered(records, r[0], r[1], migration.answered),
                )
                await _each(
                    stored.in_progress(),
                    lambda r: _in_progress(records, r[0], migration.in_progress),
                )
            finally:
                stored.close()
        return migration
    finally:
        identity.close()
        records.close()
        await redis.aclose()


async def _identity_entry(
    identity: IdentityStore,
    connection: str,
    namespace: str,
    key: str,
    prospect_id: int,
    counts: Copied,
) -> None:
    known = await identity.lookup(connection, namespace, key)
    if known is None:
        await identity.remember(connection, namespace, key, prospect_id)
        counts.copied += 1
    elif known == prospect_id:
        counts.already += 1
    else:
        counts.differs += 1


async def _answered(
    records: ResponseRecords, key: IdempotencyKey, response: bytes, counts: Copied
) -> None:
    if await records.get(key) is not None:
        counts.already += 1
        return
    await records.save(key, response, then=_nothing)
    counts.copied += 1


async def _in_progress(records: ResponseRecords, key: IdempotencyKey, counts: Copied) -> None:
    if await records.get(key) is not None:  # answered since, on Redis: nothing to mark
        counts.already += 1
        return
    earlier = await records.begin(key)  # a mark already there is kept, not rewritten
    if earlier is None:
        counts.copied += 1
    else:
        counts.already += 1


async def _each(rows: Iterable[T], copy: Callable[[T], Awaitable[None]]) -> None:
    """``copy(row)`` for every row, :data:`CHUNK` at a time."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK)):
        await asyncio.gather(*(copy(row) for row in chunk))


def _nothing() -> None:
    pass
