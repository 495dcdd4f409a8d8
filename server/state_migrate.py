"""``prospect-sync state migrate --from sqlite --to redis``: copies the embedded state a
deployment has (the SQLite files under ``server.state_dir``) into the Redis of its
``[redis]`` table, so that switching to ``server.state = "redis"`` forgets nothing that
prevents a duplicate: the identity map (no second prospect for a person already
synced, and one Pardot call instead of a lookup) and the message_id records within the
idempotency window (a replay of an answered message answers from its record; a message
in progress stays in progress, since its attempt may have written) and ``Forget``'s
suppressions (a person forgotten stays forgotten: no replica on Redis re-creates them).

The suppressions are keyed hashes (``clients.state.suppressions``): they match only
under the key they were recorded under, and cannot be re-hashed. So the key is settled
before anything is copied, and any doubt is exit 2 with Redis left as it was. With
``server.suppression_key`` configured, the SQLite key check must be that key's, and so
must Redis's if it has one (the key is never written to Redis). With the generated key,
the one in ``state_dir/suppression.key`` becomes Redis's (SET NX, as a replica sets
one); a Redis that already has another key or key check holds suppressions that cannot
be merged with these, and the message says what the operator can do. The memory of
writes (``skip_unchanged``) is not copied: starting it empty costs one write per
prospect, never a wrong one.

It reads the files through their stores (``clients.state.identity``,
``clients.state.responses``, ``clients.state.suppressions``) and writes through the
Redis stores' protocol methods only (and ``RedisSuppressions.adopt`` for the generated
key), so Redis holds what the service itself would have written. Idempotent: an entry
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
done matters: run it again); 2 bad options or configuration, no SQLite state found, or
a suppression key in doubt (nothing copied).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from clients.state.identity import SqliteIdentityStore
from clients.state.local import (
    IDEMPOTENCY_FILE,
    IDENTITY_FILE,
    SUPPRESSION_KEY_FILE,
    SUPPRESSIONS_FILE,
)
from clients.state.protocols import IdempotencyKey, IdentityStore, ResponseRecords, Suppressions
from clients.state.responses import ResponseStore
from clients.state.suppressions import (
    SqliteSuppressions,
    SuppressionKeyChanged,
    configured_key,
    existing_file_key,
)
from server.config import ConfigError, ServiceConfig, load_config
from strategies.core.errors import StateUnwritable

if TYPE_CHECKING:  # imported when run: `prospect-sync --help` need not load redis
    from clients.state.redis.state import RedisState
    from clients.state.redis.suppressions import RedisSuppressions

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
the [redis] table: the identity map, the message_id records still within
server.idempotency_window_s (answered and in progress), and Forget's suppressions with
their key (server.suppression_key if set, else the generated key, which becomes
Redis's). Run it before switching server.state to "redis". Safe to run again: what
Redis already holds is left alone.

Exit codes: 0 done; 1 Redis could not be written (run it again); 2 bad options,
configuration, no SQLite state under server.state_dir, or a suppression key that
differs between the two (nothing copied then).
"""

#: What an operator can do when the two sides' suppressions are under different keys.
CANNOT_MERGE = (
    "suppressions recorded under different keys cannot be merged (a digest cannot be "
    "re-hashed), and nothing was copied. Migrate into an empty Redis or under another "
    "redis.key_prefix; or keep one side's suppressions and Forget the other side's people "
    'again on the new state (docs/erasure.md, "The key check, and changing the key")'
)


@dataclass
class Copied:
    """One kind's counts: copied now, found in Redis already, and (identity map only)
    kept as Redis has it because it names another prospect."""

    copied: int = 0
    already: int = 0
    differs: int = 0


@dataclass(frozen=True)
class Sources:
    """The SQLite files found under state_dir (None: not there)."""

    identity: Path | None
    records: Path | None
    suppressions: Path | None


@dataclass
class Migration:
    identity: Copied
    answered: Copied
    in_progress: Copied
    suppressions: Copied
    #: How the suppression key was settled, for the operator.
    key: str = "none (no suppressions to copy)"

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
                f"  suppressions: {self.suppressions.copied} copied, "
                f"{self.suppressions.already} already in Redis",
                f"  suppression key: {self.key}",
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
        migration = asyncio.run(migrate(config, _sources(config)))
    except ConfigError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StateUnwritable as error:
        # redis-py names the host and port, never the password; redacted all the same.
        print(f"{prog}: {redact(error.message)}", file=sys.stderr)
        return EXIT_UNWRITABLE
    print(migration.render(config.server.state_dir))
    return EXIT_OK


def _sources(config: ServiceConfig) -> Sources:
    if config.redis is None:
        raise ConfigError(["redis: migrating to Redis needs the [redis] table with its url"])
    folder = config.server.state_dir
    names = (IDENTITY_FILE, IDEMPOTENCY_FILE, SUPPRESSIONS_FILE)
    found = Sources(*(folder / n if (folder / n).exists() else None for n in names))
    if found == Sources(None, None, None):
        raise ConfigError([f"server.state_dir: no SQLite state in {folder} ({', '.join(names)})"])
    return found


async def migrate(config: ServiceConfig, sources: Sources) -> Migration:
    """Copies what the files hold into ``config.redis`` (see the module docstring)."""
    from clients.state.redis.state import RedisState

    assert config.redis is not None
    window_s = config.server.idempotency_window_s
    redis = RedisState(
        config.redis.url, key_prefix=config.redis.key_prefix, timeout_s=config.redis.timeout_s
    )
    identity, records = redis.identity(), redis.responses(window_s=window_s)
    suppressions: tuple[Suppressions, Suppressions] | None = None
    try:
        migration = Migration(Copied(), Copied(), Copied(), Copied())
        if sources.suppressions is not None:  # first: a key in doubt copies nothing
            suppressions = await _settled(config, sources.suppressions, redis, migration)
        if sources.identity is not None:
            source = SqliteIdentityStore(sources.identity)
            try:
                await _each(
                    source.entries(), lambda e: _identity_entry(identity, *e, migration.identity)
                )
            finally:
                source.close()
        if sources.records is not None:
            stored = ResponseStore(sources.records, window_s=window_s)
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
        if suppressions is not None:
            await _suppressions(*suppressions, migration.suppressions)
        return migration
    finally:
        for store in suppressions or ():
            store.close()
        identity.close()
        records.close()
        await redis.aclose()


async def _settled(
    config: ServiceConfig, path: Path, redis: RedisState, migration: Migration
) -> tuple[Suppressions, Suppressions]:
    """The SQLite suppressions and Redis's, both under one key (see the module
    docstring), or a ConfigError naming the problem and never a key."""
    configured = configured_key(config.server.suppression_key)
    source = _sqlite_suppressions(path, configured)
    try:
        if configured is not None:
            target = redis.suppressions(configured)
            try:
                await target.hash_key()
            except SuppressionKeyChanged:
                raise ConfigError(
                    [
                        f"server.suppression_key: Redis ({redis.context.prefix}…) holds "
                        "suppressions recorded under another key than server.suppression_key, "
                        f"which the ones in {path} are recorded under: {CANNOT_MERGE}"
                    ]
                ) from None
            migration.key = "server.suppression_key (it matches both sides; kept out of Redis)"
            return source, target
        from clients.state.redis.suppressions import RedisSuppressions

        generated = RedisSuppressions(redis.context)
        migration.key = await _adopted(generated, await source.hash_key(), path, redis)
        return source, generated
    except BaseException:
        source.close()
        raise


def _sqlite_suppressions(path: Path, configured: bytes | None) -> SqliteSuppressions:
    """The SQLite suppressions under their own key (never a new one: a missing key file
    is a ConfigError, not a fresh key nothing recorded matches)."""
    key_file = path.parent / SUPPRESSION_KEY_FILE
    try:
        if configured is None and existing_file_key(key_file) is None:
            raise ConfigError(
                [
                    f"server.suppression_key: {path} has no generated key beside it "
                    f"({key_file}), so its suppressions were recorded under "
                    "server.suppression_key: set it, as the service had it, and run again"
                ]
            )
        return SqliteSuppressions(path, key_file, key=configured)
    except SuppressionKeyChanged as error:
        raise ConfigError([f"server.suppression_key: {error.message}"]) from None
    except (OSError, sqlite3.Error, ValueError) as error:
        raise ConfigError([f"server.state_dir: cannot open the suppressions ({error})"]) from None


async def _adopted(
    redis_store: RedisSuppressions, key: bytes, path: Path, redis: RedisState
) -> str:
    """Makes the SQLite state's generated ``key`` Redis's; how it went, for the report."""
    where = f"Redis ({redis.context.prefix}…)"
    try:
        taken = await redis_store.adopt(key)
        settled = await redis_store.hash_key()
    except SuppressionKeyChanged:
        raise ConfigError(
            [
                f"redis: {where} holds the key check of another suppression key than the "
                f"generated one the suppressions in {path} are recorded under: {CANNOT_MERGE}"
            ]
        ) from None
    if not hmac.compare_digest(settled, key):
        raise ConfigError(
            [
                f"redis: {where} already has a generated suppression key, another than the "
                f"one the suppressions in {path} are recorded under (a replica started on "
                f"it first): {CANNOT_MERGE}"
            ]
        )
    return "the generated one, now Redis's" if taken else "the generated one, already Redis's"


async def _suppressions(source: Suppressions, target: Suppressions, counts: Copied) -> None:
    """Every digest of every scope, :data:`CHUNK` asked at a time; only the missing
    ones added."""
    async for scope, digests in source.recorded():
        for start in range(0, len(digests), CHUNK):
            chunk = digests[start : start + CHUNK]
            there = await asyncio.gather(*(target.any_of(scope, (d,)) for d in chunk))
            missing = tuple(d for d, found in zip(chunk, there, strict=True) if not found)
            await target.add(scope, missing)
            counts.copied += len(missing)
            counts.already += len(chunk) - len(missing)


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
