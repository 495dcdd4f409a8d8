"""The shared-state parts of ``make bench`` (issue 13): what Redis-backed state costs and
what several processes buy, each against the embedded one-process figure measured in
the same run, so that machine load moves both sides alike.

- ``cluster``: Identify at ``--cluster-in-flight`` (500) with Pardot at ``--latency``,
  once on one embedded (SQLite) process, once on one Redis-backed process, once spread
  evenly over 3 Redis-backed replicas (3 ports, one key prefix: one account's slots,
  token and records shared). Coalescing stays per replica, so the replicas split the
  batches; the shared slots keep 5 in flight at the fake (err 66 counts any excess).
- ``workers``: Pardot at zero latency, ``--workers 2`` against ``--workers 1``, both on
  Redis, the same load through several connections (the kernel spreads connections,
  not calls, over the workers); the CPU of every process is reported, since on a
  small machine the load generator, the fake and redis-server share the cores.
- ``redis-idle``: one call at a time, Pardot at zero latency, ``--idle-calls`` rounds
  of one call to an embedded (SQLite) server and one to a Redis-backed one, both up
  at once, the order turned every round: the added latency is the median of the
  rounds' differences (both sides see the same moments of the machine's noise; two
  runs one after the other differed by more than the figure judged), and what one
  call costs at redis-server (``INFO`` around the measured calls: its round trips and
  commands), so a miss names its cause.

Each part starts its own redis-server (no persistence) and stops it; nothing here
decides what a figure means (``bench.report`` checks the targets).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import redis
import redis.asyncio

from bench.figures import closed_figures
from bench.processes import (
    Child,
    Pardot,
    SharedState,
    Source,
    Watched,
    run_loadgen,
    start_redis,
    start_server,
)
from bench.stats import percentile
from strategies.core.pardot_facts import MAX_CONCURRENT_REQUESTS

#: The replicas of the ``cluster`` part.
REPLICAS = 3
#: Connections per target in the ``workers`` part: with 2 workers the chance that the
#: kernel gives all 8 to one of them is 2**-7, and an uneven split shows in the CPU.
WORKER_CHANNELS = 8
#: Calls before the measured ones in ``redis-idle`` (connections, token, scripts loaded).
IDLE_WARMUP_CALLS = 20
#: Redis commands that are the bench's own, not the service's.
_BENCH_COMMANDS = frozenset({"info", "ping", "config|get", "hello", "client|setinfo"})


class Runner(Protocol):
    """What a part needs of the run it belongs to (``bench.throughput.BenchRun``)."""

    args: argparse.Namespace
    workdir: Path
    source: Source
    tag: str

    @property
    def zero_window_s(self) -> float: ...

    def say(self, text: str) -> None: ...

    def closed(
        self,
        target: str | Sequence[str],
        name: str,
        in_flight: int,
        *extra: str,
        pardot: Pardot | None = None,
        watch: Sequence[Child | Watched] = (),
        window_s: float | None = None,
        channels: int | None = None,
    ) -> dict[str, Any]: ...


def server_cores(figures: dict[str, Any]) -> float | None:
    """Cores used by the server's processes (a supervisor and its workers together)."""
    used = figures.get("cpu_cores") or {}
    mine = [cores for name, cores in used.items() if name.startswith("server")]
    return sum(mine) if mine else None


def with_server_cores(figures: dict[str, Any]) -> dict[str, Any]:
    return {**figures, "server_cores": server_cores(figures)}


def ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top is not None and bottom else None


def cluster(run: Runner, pardot: Pardot) -> dict[str, Any]:
    """One embedded process, one Redis-backed process, 3 Redis-backed replicas: the
    same Identify load at ``--latency``."""
    n, latency = run.args.cluster_in_flight, run.args.latency
    ceiling = MAX_CONCURRENT_REQUESTS / latency if latency else None
    figures: dict[str, Any] = {"in_flight": n, "replicas": REPLICAS}
    run.say(f"cluster: one embedded (SQLite) process, Identify @ {n}")
    pardot.fresh(latency_s=latency)
    server, target = start_server(run.workdir, pardot.url, name="server-single", source=run.source)
    try:
        single = run.closed(target, "single", n, pardot=pardot, watch=(server, pardot.child))
    finally:
        server.stop()
    figures["single"] = with_server_cores(closed_figures(single, ceiling))
    store, url = start_redis(run.workdir, "redis-cluster")
    try:
        run.say(f"cluster: one Redis-backed process, Identify @ {n}")
        pardot.fresh(latency_s=latency)
        shared = SharedState(url, f"bench-{run.tag}-one:")
        server, target = start_server(
            run.workdir, pardot.url, name="server-one-redis", source=run.source, shared=shared
        )
        try:
            one = run.closed(
                target, "one-redis", n, pardot=pardot, watch=(server, pardot.child, store)
            )
        finally:
            server.stop()
        figures["one_redis"] = with_server_cores(closed_figures(one, ceiling))
        run.say(f"cluster: {REPLICAS} Redis-backed replicas, Identify @ {n} spread over them")
        pardot.fresh(latency_s=latency)
        shared = SharedState(url, f"bench-{run.tag}-replicas:")
        started: list[tuple[Child, str]] = []
        try:
            for index in range(REPLICAS):
                started.append(
                    start_server(
                        run.workdir,
                        pardot.url,
                        name=f"server-replica{index}",
                        source=run.source,
                        shared=shared,
                    )
                )
            watch = (*(child for child, _ in started), pardot.child, store)
            spread = run.closed(
                [target for _, target in started], "replicas", n, pardot=pardot, watch=watch
            )
            for child, _ in started:
                child.check_alive()
        finally:
            for child, _ in started:
                child.stop()
        figures["spread"] = with_server_cores(closed_figures(spread, ceiling))
    finally:
        store.stop()
    figures["ratio"] = ratio(figures["spread"]["events_per_s"], figures["single"]["events_per_s"])
    return figures


def workers(run: Runner, pardot: Pardot) -> dict[str, Any]:
    """``--workers 1`` and ``--workers 2`` on Redis, Pardot at zero latency."""
    n, window = run.args.echo_in_flight, run.zero_window_s
    cpus = len(os.sched_getaffinity(0))
    figures: dict[str, Any] = {"in_flight": n, "channels": WORKER_CHANNELS, "cpus_usable": cpus}
    store, url = start_redis(run.workdir, "redis-workers")
    try:
        for count, key in ((1, "one"), (2, "two")):
            run.say(f"workers: --workers {count} on Redis, Pardot at zero latency, Identify @ {n}")
            pardot.fresh(latency_s=0.0)
            shared = SharedState(url, f"bench-{run.tag}-w{count}:")
            server, target = start_server(
                run.workdir,
                pardot.url,
                name=f"server-workers{count}",
                source=run.source,
                shared=shared,
                workers=count,
            )
            try:
                processes = [Watched(f"server-{pid}", pid) for pid in server.descendants()]
                result = run.closed(
                    target,
                    f"workers{count}",
                    n,
                    pardot=pardot,
                    watch=(server, *processes, pardot.child, store),
                    window_s=window,
                    channels=WORKER_CHANNELS,
                )
                server.check_alive()
            finally:
                server.stop()
            figures[key] = with_server_cores(closed_figures(result, None))
    finally:
        store.stop()
    figures["ratio"] = ratio(figures["two"]["events_per_s"], figures["one"]["events_per_s"])
    return figures


def idle(run: Runner, pardot: Pardot) -> dict[str, Any]:
    """One call at a time on SQLite and on Redis, two servers up at once and the calls
    alternating between them (``bench.loadgen``'s ``paired`` mode): each one's p50, the
    median of the rounds' differences, and Redis's commands and round trips per call."""
    count = run.args.idle_calls
    figures: dict[str, Any] = {"calls": count}
    store, url = start_redis(run.workdir, "redis-idle")
    servers: list[Child] = []
    try:
        run.say(f"redis-idle: {count} rounds of one Identify on SQLite and one on Redis, "
                "one call at a time, Pardot at zero latency")  # fmt: skip
        pardot.fresh(latency_s=0.0)
        targets = []
        for key, shared in (("sqlite", None), ("redis", SharedState(url, f"bench-{run.tag}-i:"))):
            server, target = start_server(
                run.workdir, pardot.url, name=f"server-idle-{key}", source=run.source, shared=shared
            )
            servers.append(server)
            targets.append(target)
            one_at_a_time(run, target, f"idle-{key}-warm", IDLE_WARMUP_CALLS)
        counts = RedisCounts(url)
        try:
            before, reads_before = counts.snapshot()
            measured = paired(run, targets, "idle", count)
            after, reads_after = counts.snapshot()
        finally:
            counts.close()
        for server in servers:
            server.check_alive()
        for key, result in zip(("sqlite", "redis"), measured["targets"], strict=True):
            figures[key] = {
                "p50_ms": result["p50_ms"],
                "p99_ms": result["p99_ms"],
                "ok": result["codes"].get("OK", 0),
                "codes": result["codes"],
            }
        used = {name: after.get(name, 0) - before.get(name, 0) for name in after}
        figures["redis_commands_per_call"] = {
            name: calls / count for name, calls in sorted(used.items()) if calls
        }
        # The second snapshot's own read is the bench's.
        figures["redis_round_trips_per_call"] = (reads_after - reads_before - 1) / count
        figures["round_trip_p50_ms"] = round_trip_p50_ms(url, count)
        figures["added_ms"] = measured["difference_p50_ms"][0]
    finally:
        for server in servers:
            server.stop()
        store.stop()
    sqlite, on_redis = figures["sqlite"]["p50_ms"], figures["redis"]["p50_ms"]
    both = on_redis is not None and sqlite is not None
    figures["p50_gap_ms"] = on_redis - sqlite if both else None
    figures["redis_commands"] = sum(figures.get("redis_commands_per_call", {}).values())
    return figures


def paired(run: Runner, targets: list[str], name: str, count: int) -> dict[str, Any]:
    """``count`` rounds of one Identify of a new person on each target in turn."""
    args = [arg for target in targets for arg in ("--target", target)]
    args += ["--tag", f"{run.tag}-{name}", "--mode", "paired", "--count", str(count)]
    result = run_loadgen(run.workdir, args, timeout_s=60.0 + 2 * count)
    for target, figures in zip(targets, result["targets"], strict=True):
        if figures["codes"].get("OK", 0) != count:
            codes = figures["codes"]
            raise RuntimeError(f"{name} on {target}: not every call answered OK: {codes}")
    return result


def one_at_a_time(run: Runner, target: str, name: str, count: int) -> dict[str, Any]:
    """``count`` Identify of new people, each sent when the previous one answered."""
    args = ["--target", target, "--tag", f"{run.tag}-{name}", "--mode", "seed"]
    args += ["--count", str(count), "--in-flight", "1"]
    result = run_loadgen(run.workdir, args, timeout_s=60.0 + count)
    if result["codes"].get("OK", 0) != count:
        raise RuntimeError(f"{name}: not every call answered OK: {result['codes']}")
    return result


def round_trip_p50_ms(url: str, count: int) -> float | None:
    """The p50 of ``count`` PINGs, one at a time, through redis-py's asyncio client (the
    service's, hiredis parsing) from this process: what one round trip costs here, the
    unit an idle call's round trips are paid in."""

    async def pings() -> list[float]:
        client = redis.asyncio.Redis.from_url(url)
        try:
            await client.ping()
            took = []
            for _ in range(count):
                began = time.perf_counter()
                await client.ping()
                took.append(time.perf_counter() - began)
            return took
        finally:
            await client.aclose()

    p50 = percentile(sorted(asyncio.run(pings())), 0.50)
    return None if p50 is None else p50 * 1000


class RedisCounts:
    """What redis-server did between two snapshots, from one connection's ``INFO all``
    (one command, one read): every command it ran, by name (``commandstats``: a
    script's own commands count too), and its read events (``total_reads_processed``:
    one per request or pipeline arriving — the round trips), the bench's own left out."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)

    def snapshot(self) -> tuple[dict[str, int], int]:
        info: dict[str, Any] = self._client.info("all")
        commands = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in info.items()
            if name.startswith("cmdstat_") and name.removeprefix("cmdstat_") not in _BENCH_COMMANDS
        }
        return commands, int(info["total_reads_processed"])

    def close(self) -> None:
        self._client.close()
