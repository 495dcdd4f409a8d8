"""``make bench``: the service's throughput against Pardot's limits (issue 6), end to end.

Starts fakepardot and the service as separate processes on loopback, sets the fake to
Pardot's realistic shape (200 ms per call, 5 in flight per account, no daily limit),
drives the live server over gRPC from a separate load-generator process, and prints:

1. one table: events/s, Pardot calls/event, p50/p99, err 66, errors and the ratio to
   the one-call ceiling (max_concurrency / latency = 25 events/s) — for unary Identify
   at 1, 50 and 500 in flight, LookupFieldV4 warm, and BatchSync (n/a until it exists);
2. Identify RPC/s with Pardot at zero latency beside a bare grpc.aio echo server
   measured the same way (our overhead);
3. a burst of 5,000 concurrent Identify: the server's peak resident memory and every
   status seen (only OK and RESOURCE_EXHAUSTED are allowed);
4. the cold lookup burst (issue 12): 200 cold LookupFieldV4 calls at once (read by
   email, then create) with 10 s deadlines, Pardot at 300 ms: calls OK, Pardot calls
   spent, and the share spent on calls that then failed;
5. shared state on Redis (issue 13, ``bench.cluster``): 3 Redis-backed replicas on one
   account against one embedded process at the same load; ``--workers 2`` against
   ``--workers 1`` at zero Pardot latency; the added p50 of an idle Redis-backed call;
6. the issues' targets, ✓ or ✗.

Everything stops by itself: warm-ups, windows and deadlines are bounded, and every child
is stopped by its pid. How to read the figures: docs/benchmarks.md.

Run: ``make bench`` (``BENCH_ARGS="--runs 3 --json out.json"``) or
``.venv/bin/python -m bench.throughput --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from bench import cluster
from bench.cluster_report import render_shared
from bench.fake_control import FakeControl
from bench.figures import burst_figures, closed_figures, cold_figures, median_figures
from bench.processes import (
    HERE,
    ROOT,
    Child,
    MemorySampler,
    Pardot,
    Source,
    Watched,
    export_tree,
    machine,
    run_loadgen,
    start_echo,
    start_fake,
    start_server,
)
from bench.report import RowSpec, render
from bench.workload import BatchShape, People, batch_shape
from strategies.core.pardot_facts import MAX_CONCURRENT_REQUESTS

#: ``--only`` choices: the parts a run can measure alone.
PARTS = ("rows", "zero", "burst", "cold", "cluster", "workers", "redis-idle")

#: BatchSync: requests in flight, and identify items per request.
BATCH_IN_FLIGHT = 2
BATCH_ITEMS = 500
QUICK_BATCH_ITEMS = 50
#: LookupFieldV4 warm cycles through this many people per call in flight (seeded first),
#: so that no person is ever in two calls at once.
WARM_POOL_PER_IN_FLIGHT = 4
#: Slack on top of a load generator's own bounds before it is killed.
LOADGEN_SLACK_S = 60.0


@dataclass(frozen=True)
class Timing:
    """How long each measurement lasts."""

    warmup_min_s: float
    warmup_max_s: float
    window_s: float
    zero_window_s: float


FULL = Timing(warmup_min_s=1.0, warmup_max_s=30.0, window_s=10.0, zero_window_s=5.0)
QUICK = Timing(warmup_min_s=0.2, warmup_max_s=1.0, window_s=1.0, zero_window_s=1.0)


def timing(args: argparse.Namespace) -> Timing:
    chosen = QUICK if args.quick else FULL
    if args.window is not None:
        chosen = dataclasses.replace(chosen, window_s=args.window, zero_window_s=args.window)
    return chosen


@dataclass(frozen=True)
class Scenario:
    """One row of the main table."""

    key: str
    label: str
    in_flight: int
    rpc: str = "identify"
    strategy: str = "EmailV3"
    items: int = 1
    warm_pool: int | None = None

    @property
    def spec(self) -> RowSpec:
        shown = str(self.in_flight)
        if self.rpc == "batch":
            shown += f" calls of {self.items} items"
        return RowSpec(self.key, self.label, shown)


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    rows = [
        Scenario(f"identify@{n}", "Identify, EmailV3 (v3), new people", n) for n in args.in_flight
    ]
    if args.warm_in_flight:
        n = args.warm_in_flight
        rows.append(
            Scenario(
                f"lookup-warm@{n}",
                "Identify, LookupFieldV4 warm (identity map hit)",
                n,
                strategy="LookupFieldV4",
                warm_pool=n * WARM_POOL_PER_IN_FLIGHT,
            )
        )
    if args.v5_in_flight:
        n = args.v5_in_flight
        rows.append(
            Scenario(f"v5@{n}", "Identify, EmailV5 (v5: no batch endpoint), new people", n,
                     strategy="EmailV5")
        )  # fmt: skip
    items = QUICK_BATCH_ITEMS if args.quick else BATCH_ITEMS
    rows.append(
        Scenario(
            f"batchsync@{BATCH_IN_FLIGHT}x{items}",
            "BatchSync, EmailV3 (v3), new people",
            BATCH_IN_FLIGHT,
            rpc="batch",
            items=items,
        )
    )
    return rows


class BenchRun:
    """One run: its own fake, servers and temporary directory, all gone when it ends."""

    def __init__(
        self, args: argparse.Namespace, number: int, workdir: Path, source: Source
    ) -> None:
        self.args = args
        self.source = source
        self.timing = timing(args)
        self.number = number
        self.workdir = workdir
        self.tag = f"r{number}{secrets.token_hex(3)}"
        self.ceiling = MAX_CONCURRENT_REQUESTS / args.latency if args.latency else None

    @property
    def zero_window_s(self) -> float:
        return self.timing.zero_window_s

    def say(self, text: str) -> None:
        print(f"[run {self.number}/{self.args.runs}] {text}", file=sys.stderr, flush=True)

    def execute(self) -> dict[str, Any]:
        load_before = os.getloadavg()[0]
        fake, fake_url = start_fake(self.workdir, self.source)
        try:
            with FakeControl(fake_url) as control:
                control.wait_ready(timeout_s=20.0)
                pardot = Pardot(fake, fake_url, control)
                rows: dict[str, Any] = {}
                zero: dict[str, Any] = {}
                if self.wanted("rows") or self.wanted("zero"):
                    v5 = any(s.strategy == "EmailV5" for s in scenarios(self.args))
                    server, target = start_server(
                        self.workdir, fake_url, source=self.source, v5=v5 and self.wanted("rows")
                    )
                    try:
                        rows = {
                            s.key: self.scenario(s, pardot, server, target)
                            for s in scenarios(self.args)
                            if self.wanted("rows")
                        }
                        if self.wanted("zero"):
                            zero = self.zero_latency(pardot, server, target)
                    finally:
                        server.stop()
                burst = self.burst(pardot) if self.wanted("burst") else {}
                cold = self.cold_burst(pardot) if self.wanted("cold") else {}
                shared = cluster.cluster(self, pardot) if self.wanted("cluster") else {}
                workers = cluster.workers(self, pardot) if self.wanted("workers") else {}
                idle = cluster.idle(self, pardot) if self.wanted("redis-idle") else {}
        finally:
            fake.stop()
        return {
            "rows": rows,
            "zero": zero,
            "burst": burst,
            "cold": cold,
            "cluster": shared,
            "workers": workers,
            "redis_idle": idle,
            "load_average_before": load_before,
        }

    def wanted(self, part: str) -> bool:
        return part in self.args.only or "all" in self.args.only

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
    ) -> dict[str, Any]:
        """A closed-loop measurement; with ``pardot`` its calls are counted at the fake.
        Several targets share the load evenly; ``channels`` fixes connections per target."""
        timing = self.timing
        window = timing.window_s if window_s is None else window_s
        targets = [target] if isinstance(target, str) else list(target)
        args = [
            *(arg for each in targets for arg in ("--target", each)),
            "--tag", f"{self.tag}-{name}", "--in-flight", str(in_flight),
            "--warmup-min", str(timing.warmup_min_s), "--warmup-max", str(timing.warmup_max_s),
            "--window", str(window), *extra,
        ]  # fmt: skip
        if channels is not None:
            args += ["--channels", str(channels)]
        if pardot is not None:
            args += ["--fake-url", pardot.url]
        for child in watch:
            args += ["--watch", f"{child.name}={child.pid}"]
        bound = timing.warmup_max_s + window + LOADGEN_SLACK_S
        return run_loadgen(self.workdir, args, timeout_s=bound)

    def scenario(
        self, scenario: Scenario, pardot: Pardot, server: Child, target: str
    ) -> dict[str, Any]:
        if scenario.rpc == "batch":
            shape = batch_shape()
            missing = shape if isinstance(shape, str) else batch_refused(target, shape)
            if missing is not None:
                self.say(f"{scenario.label}: n/a ({missing})")
                return {"unavailable": missing}
        self.say(f"{scenario.label} @ {scenario.spec.in_flight}")
        name = scenario.key.replace("@", "-")
        extra = ["--strategy", scenario.strategy, "--rpc", scenario.rpc]
        extra += ["--items", str(scenario.items)]
        if scenario.warm_pool:
            extra += ["--pool", str(scenario.warm_pool)]
            pardot.fresh(latency_s=0.0)  # seeding is set-up, not measurement
            # One at a time: each create then goes alone and its answer (with the id)
            # teaches the identity map; a batched create's answer has no id to learn.
            seeded = run_loadgen(
                self.workdir,
                ["--target", target, "--tag", f"{self.tag}-{name}", "--mode", "seed",
                 "--count", str(scenario.warm_pool), "--in-flight", "1", *extra],
                timeout_s=LOADGEN_SLACK_S,
            )  # fmt: skip
            if seeded["codes"].get("OK", 0) != scenario.warm_pool:
                raise RuntimeError(f"seeding {scenario.key} failed: {seeded['codes']}")
            pardot.control.set_switches(latency_s=self.args.latency)
        else:
            pardot.fresh(latency_s=self.args.latency)
        result = self.closed(
            target, name, scenario.in_flight, *extra, pardot=pardot, watch=(server, pardot.child)
        )
        return closed_figures(result, self.ceiling)

    def zero_latency(self, pardot: Pardot, server: Child, target: str) -> dict[str, Any]:
        """Identify with Pardot at zero latency, then the bare echo server, measured
        the same way: the service's overhead."""
        n, window = self.args.echo_in_flight, self.timing.zero_window_s
        self.say(f"zero Pardot latency: Identify @ {n}")
        pardot.fresh(latency_s=0.0)
        identify = self.closed(
            target, "zero", n, pardot=pardot, watch=(server, pardot.child), window_s=window
        )
        self.say(f"zero Pardot latency: bare echo server @ {n}")
        echo_child, echo_target = start_echo(self.workdir)
        try:
            echo = self.closed(echo_target, "echo", n, watch=(echo_child,), window_s=window)
        finally:
            echo_child.stop()
        figures: dict[str, Any] = {
            "identify": closed_figures(identify, None),
            "echo": closed_figures(echo, None),
        }
        ours, bare = figures["identify"]["events_per_s"], figures["echo"]["events_per_s"]
        figures["ratio"] = ours / bare if ours is not None and bare else None
        return figures

    def burst(self, pardot: Pardot) -> dict[str, Any]:
        """``--burst`` calls at once on a fresh server, so that its VmHWM is this burst's."""
        count, deadline = self.args.burst, self.args.burst_deadline
        self.say(f"burst: {count} Identify at once on a fresh server (deadline {deadline:g} s)")
        pardot.fresh(latency_s=self.args.latency)
        server, target = start_server(
            self.workdir, pardot.url, name="server-burst", source=self.source
        )
        try:
            before = server.memory_kib()["VmRSS"]
            with MemorySampler(server) as sampler:
                result = run_loadgen(
                    self.workdir,
                    ["--target", target, "--tag", f"{self.tag}-burst", "--mode", "burst",
                     "--count", str(count), "--timeout", str(deadline)],
                    timeout_s=deadline + LOADGEN_SLACK_S,
                )  # fmt: skip
            memory = server.memory_kib()
            server.check_alive()
        finally:
            server.stop()
        return burst_figures(result, memory, sampler.peak_rss_kib, before)

    def cold_burst(self, pardot: Pardot) -> dict[str, Any]:
        """``--cold`` cold LookupFieldV4 calls at once on a fresh server (an empty
        identity map, nothing observed of the account yet), Pardot at
        ``--cold-latency``: each call reads by email, then creates."""
        count, deadline = self.args.cold, self.args.cold_deadline
        latency = self.args.cold_latency
        self.say(
            f"cold lookup burst: {count} LookupFieldV4 at once (deadline {deadline:g} s, "
            f"Pardot {latency * 1000:g} ms)"
        )
        pardot.fresh(latency_s=latency)
        server, target = start_server(
            self.workdir, pardot.url, name="server-cold", source=self.source
        )
        tag = f"{self.tag}-cold"
        try:
            pardot.control.clear_calls()
            result = run_loadgen(
                self.workdir,
                ["--target", target, "--tag", tag, "--mode", "burst", "--outcomes",
                 "--strategy", "LookupFieldV4", "--count", str(count),
                 "--timeout", str(deadline)],
                timeout_s=deadline + LOADGEN_SLACK_S,
            )  # fmt: skip
            server.check_alive()
        finally:
            server.stop()
        return cold_figures(result, pardot.control.calls(), tag)


def batch_refused(target: str, shape: BatchShape) -> str | None:
    """Why the server does not take BatchSync (None when it does), from one one-item
    call: the contract may declare the RPC before the server serves it, and a loop of
    calls that all fail at once would measure nothing."""
    with grpc.insecure_channel(target) as channel:
        batch_sync = channel.unary_unary(
            shape.path,
            request_serializer=shape.request_class.SerializeToString,
            response_deserializer=shape.response_class.FromString,
        )
        try:
            batch_sync(shape.request("EmailV3", People("probe"), 0, 1), timeout=10.0)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                return "UNIMPLEMENTED by the server"
            return f"a one-item call failed: {error.code().name}"
    return None


def bench_config(args: argparse.Namespace, specs: Sequence[Scenario]) -> dict[str, Any]:
    target_in_flight = max(args.in_flight)
    return {
        "latency_s": args.latency,
        "max_concurrency": MAX_CONCURRENT_REQUESTS,
        "ceiling_per_s": MAX_CONCURRENT_REQUESTS / args.latency if args.latency else None,
        "in_flight": args.in_flight,
        "echo_in_flight": args.echo_in_flight,
        "burst": args.burst,
        "burst_deadline_s": args.burst_deadline,
        "cold": args.cold,
        "cold_deadline_s": args.cold_deadline,
        "cold_latency_s": args.cold_latency,
        "cluster_in_flight": args.cluster_in_flight,
        "replicas": cluster.REPLICAS,
        "worker_channels": cluster.WORKER_CHANNELS,
        "idle_calls": args.idle_calls,
        "quick": args.quick,
        "timing": dataclasses.asdict(timing(args)),
        "target_row": f"identify@{target_in_flight}",
        "target_in_flight": target_in_flight,
        "single_row": f"identify@{min(args.in_flight)}",
        "rows": [s.key for s in specs],
    }


def one_line(run: dict[str, Any], config: dict[str, Any]) -> str:
    """A run's headline figures, so that a long --runs shows its spread as it goes."""
    big = run["rows"].get(config["target_row"], {})
    zero, burst, cold = run["zero"], run["burst"], run["cold"]
    events = big.get("events_per_s")
    ratio = zero.get("ratio")
    burst_line = f"{burst['peak_rss_mb']:.0f} MB peak, {burst['other']} other" if burst else "n/a"
    cold_line = (
        f"{cold['ok']} OK, {cold['wasted_share'] * 100:.1f} % of {cold['pardot_calls']} "
        "calls wasted"
        if cold
        else "n/a"
    )
    shared = [
        f"{label} {value * 100:.0f} %"
        for label, part in (("replicas/single", "cluster"), ("workers 2/1", "workers"))
        if (value := run[part].get("ratio")) is not None
    ]
    if run["redis_idle"].get("added_ms") is not None:
        shared.append(f"idle Redis {run['redis_idle']['added_ms']:+.2f} ms over SQLite")
    return (
        f"{config['target_row']}: {'n/a' if events is None else f'{events:.1f}'} events/s; "
        f"zero latency: {'n/a' if ratio is None else f'{ratio * 100:.0f} %'} of echo; "
        f"burst: {burst_line}; cold lookup burst: {cold_line}; "
        f"shared state: {', '.join(shared) or 'n/a'}"
    )


def git_state(revision: str | None) -> dict[str, Any]:
    """The code measured: a commit (``--commit``), or this checkout's HEAD and whether
    uncommitted changes were part of it."""

    def git(*argv: str) -> str:
        done = subprocess.run(
            ["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    if revision is not None:
        return {"commit": git("rev-parse", f"{revision}^{{commit}}"), "dirty": False}
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def parts_list(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in ("all", *PARTS)]
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"parts from: all, {', '.join(PARTS)}")
    return chosen


def in_flight_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.throughput",
        description="make bench: throughput against fakepardot (docs/benchmarks.md).",
    )
    parser.add_argument("--quick", action="store_true", help="short windows, 500-call burst")
    parser.add_argument("--runs", type=int, default=1, help="repeat; print medians")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure here")
    parser.add_argument(
        "--commit",
        metavar="REV",
        help="run the service and fake as committed at REV (git archive), not this checkout",
    )
    parser.add_argument("--window", type=float, help="measured seconds per row (10; quick 1)")
    parser.add_argument("--latency", type=float, default=0.2, help="fake's latency, s (0.2)")
    parser.add_argument(
        "--in-flight", type=in_flight_list, default=[1, 50, 500], help="Identify rows: 1,50,500"
    )
    parser.add_argument(
        "--warm-in-flight", type=int, default=50, help="LookupFieldV4 warm (50); 0 skips"
    )
    parser.add_argument(
        "--v5-in-flight",
        type=int,
        default=50,
        help="Identify through EmailV5 on API v5 (50); 0 skips (for --commit before v5)",
    )
    parser.add_argument("--echo-in-flight", type=int, default=50, help="zero-latency run (50)")
    parser.add_argument(
        "--only",
        type=parts_list,
        default=("all",),
        help="measure these parts (comma-separated): rows (the main table), zero (the "
        "zero-latency comparison), burst, cold (the cold lookup burst), cluster (3 "
        "Redis-backed replicas), workers (--workers 2 against 1), redis-idle (an idle "
        "call on Redis against SQLite); all (default) = every one",
    )
    parser.add_argument(
        "--cluster-in-flight", type=int, default=500, help="cluster: Identify in flight (500)"
    )
    parser.add_argument(
        "--idle-calls", type=int, help="redis-idle: rounds of one call on each (300; --quick 30)"
    )
    parser.add_argument("--burst", type=int, help="calls at once (5000; --quick 500)")
    parser.add_argument("--burst-deadline", type=float, help="their deadline, s (15; --quick 3)")
    parser.add_argument("--cold", type=int, help="cold LookupFieldV4 calls (200; --quick 20)")
    parser.add_argument("--cold-deadline", type=float, help="their deadline, s (10; --quick 2)")
    parser.add_argument(
        "--cold-latency", type=float, default=0.3, help="the fake's latency for them, s (0.3)"
    )
    args = parser.parse_args(argv)
    if args.burst is None:
        args.burst = 500 if args.quick else 5000
    if args.burst_deadline is None:
        args.burst_deadline = 3.0 if args.quick else 15.0
    if args.cold is None:
        args.cold = 20 if args.quick else 200
    if args.cold_deadline is None:
        args.cold_deadline = 2.0 if args.quick else 10.0
    if args.idle_calls is None:
        args.idle_calls = 30 if args.quick else 300
    if args.cluster_in_flight < 1 or args.idle_calls < 1:
        parser.error("--cluster-in-flight and --idle-calls must be ≥ 1")
    if args.runs < 1 or args.latency < 0 or args.burst < 1 or args.echo_in_flight < 1:
        parser.error("--runs, --burst and --echo-in-flight must be ≥ 1, --latency ≥ 0")
    if args.cold < 1 or args.cold_deadline <= 0 or args.cold_latency < 0:
        parser.error("--cold must be ≥ 1, --cold-deadline > 0, --cold-latency ≥ 0")
    if args.window is not None and args.window <= 0:
        parser.error("--window must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    specs = scenarios(args)
    config = bench_config(args, specs)
    tree = git_state(args.commit)  # before the runs: the code that was measured
    runs = []
    with tempfile.TemporaryDirectory(prefix="prospectsync-bench-tree-") as exported:
        source = HERE if args.commit is None else export_tree(args.commit, Path(exported) / "tree")
        for number in range(1, args.runs + 1):
            with tempfile.TemporaryDirectory(prefix="prospectsync-bench-") as workdir:
                runs.append(BenchRun(args, number, Path(workdir), source).execute())
            print(f"[run {number}/{args.runs}] {one_line(runs[-1], config)}", file=sys.stderr)
    summary = median_figures(runs)
    host = machine()
    loads = [run["load_average_before"] for run in runs]
    print(render([s.spec for s in specs], summary, config, host, loads))
    shared = render_shared(summary, host)
    if shared:
        print(shared)
    if args.json:
        document = {
            "machine": host,
            "git": tree,
            "config": config,
            "median": summary,
            "runs": runs,
        }
        args.json.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
