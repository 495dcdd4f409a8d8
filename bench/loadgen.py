"""The load generator: one process that drives a gRPC target with calls in flight and
prints what it measured as one JSON object on stdout.

It runs in its own process so that the client's CPU is a process the OS schedules
beside the server and the fake (docs/benchmarks.md, "CPU"), not work hidden inside the
orchestrator. Modes:

- ``closed``: N workers, each sending its next request when its previous one answers.
  Warm-up lasts until N answers arrived (every worker is in its steady cycle: by
  Little's law latency is then N / throughput) and at least ``--warmup-min``, capped by
  ``--warmup-max``; then a ``--window`` is measured. With ``--fake-url`` the fake's call
  log is cleared at the window's start and counted at its end.
- ``seed``: people 0 … COUNT-1 once each, N at a time (to warm an identity map).
- ``paired``: COUNT rounds of one call to each ``--target`` in turn, one call at a
  time, a new person each, the order turned every round: targets that differ in one
  setting (SQLite or Redis state) are measured through the same moments of a noisy
  machine, and each round's difference is the figure (its median is robust to a
  burst of noise that a comparison of two separate runs' medians is not).
- ``burst``: COUNT calls at once, each with ``--timeout`` as its deadline; every
  status counted (and, with ``--outcomes``, each call's status by its number, so the
  orchestrator can tell which Pardot calls were spent on calls that failed).

It never starts or stops a server and never changes the fake's switches: the
orchestrator (``bench.throughput``) does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.fake_control import FakeControl
from bench.stats import percentile
from bench.workload import BatchShape, People, batch_shape, identify_request
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from strategies.core.pardot_facts import ERR_CONCURRENCY_LIMIT

#: Calls in flight per channel (one HTTP/2 connection each): enough connections that
#: no single one carries thousands of streams, few enough to stay cheap.
STREAMS_PER_CHANNEL = 100
MAX_CHANNELS = 64
CONNECT_TIMEOUT_S = 10.0

#: One call: (worker, n) → the status name of each event it carried.
Call = Callable[[int, int], Awaitable[Counter[str]]]

#: The first details text seen for each failing status, for the JSON (a diagnosis aid).
EXAMPLES: dict[str, str] = {}


def failed(error: grpc.aio.AioRpcError, events: int) -> Counter[str]:
    name = error.code().name
    EXAMPLES.setdefault(name, str(error.details())[:300])
    return Counter({name: events})


@dataclass
class Tally:
    """What answered during one phase (warm-up, window)."""

    answers: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def add(self, latency_s: float, codes: Counter[str]) -> None:
        self.answers += 1
        self.codes.update(codes)
        self.latencies.append(latency_s)

    @property
    def events(self) -> int:
        return sum(self.codes.values())

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        p50, p99 = percentile(ordered, 0.50), percentile(ordered, 0.99)
        return {
            "answers": self.answers,
            "events": self.events,
            "codes": dict(self.codes),
            "p50_ms": None if p50 is None else p50 * 1000,
            "p99_ms": None if p99 is None else p99 * 1000,
            "max_ms": ordered[-1] * 1000 if ordered else None,
        }


def open_channels(
    targets: Sequence[str], in_flight: int, per_target: int | None = None
) -> list[grpc.aio.Channel]:
    """Channels to every target, interleaved (worker ``i`` uses channel ``i % n``, so
    consecutive workers go to different targets: the load is spread evenly over
    replicas). ``per_target`` fixes the connections per target: several workers behind
    one port (SO_REUSEPORT) share connections, not calls, so they need several."""
    count = per_target or min(MAX_CHANNELS, max(1, math.ceil(in_flight / STREAMS_PER_CHANNEL)))
    # A local subchannel pool per channel: otherwise grpc shares one connection
    # between channels with equal arguments.
    options = [("grpc.use_local_subchannel_pool", 1)]
    return [
        grpc.aio.insecure_channel(target, options=options)
        for _ in range(count)
        for target in targets
    ]


def identify_call(
    channels: Sequence[grpc.aio.Channel], strategy: str, people: People, timeout_s: float
) -> Call:
    stubs = [pb_grpc.ProspectSyncStub(channel) for channel in channels]

    async def call(worker: int, n: int) -> Counter[str]:
        request = identify_request(strategy, people, n)
        try:
            await stubs[worker % len(stubs)].Identify(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            return failed(error, 1)
        return Counter(OK=1)

    return call


def batch_call(
    channels: Sequence[grpc.aio.Channel],
    shape: BatchShape,
    strategy: str,
    people: People,
    items: int,
    timeout_s: float,
) -> Call:
    methods = [
        channel.unary_unary(
            shape.path,
            request_serializer=shape.request_class.SerializeToString,
            response_deserializer=shape.response_class.FromString,
        )
        for channel in channels
    ]

    async def call(worker: int, n: int) -> Counter[str]:
        request = shape.request(strategy, people, n * items, items)
        try:
            response = await methods[worker % len(methods)](request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            return failed(error, items)
        return shape.item_codes(response, items)

    return call


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) a process used so far; ``None`` is this process."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    with open(f"/proc/{pid}/stat") as stat:
        # The fields after the parenthesised command name; utime and stime are 14 and 15.
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """Cores used during the window by this load generator and the watched processes
    (1.0 = one core busy all the time): how the machine's CPUs were shared."""

    def __init__(self, watched: dict[str, int]) -> None:
        self._pids: dict[str, int | None] = {"loadgen": None, **watched}
        self._began: dict[str, float] = {}
        self._at = 0.0

    def start(self) -> None:
        self._at = time.perf_counter()
        self._began = {name: cpu_seconds(pid) for name, pid in self._pids.items()}

    def stop(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self._at
        used: dict[str, float] = {}
        for name, pid in self._pids.items():
            with contextlib.suppress(OSError):
                used[name] = (cpu_seconds(pid) - self._began[name]) / elapsed
        return used


@dataclass
class _Phase:
    tally: Tally = field(default_factory=Tally)


async def closed_loop(
    call: Call,
    in_flight: int,
    *,
    warmup_min_s: float,
    warmup_max_s: float,
    window_s: float,
    control: FakeControl | None,
    cpu: CpuMeter,
) -> dict[str, Any]:
    phase = _Phase()
    warm = phase.tally
    numbers = itertools.count()

    async def worker(index: int) -> None:
        while True:
            n = next(numbers)
            started = time.perf_counter()
            codes = await call(index, n)
            phase.tally.add(time.perf_counter() - started, codes)

    tasks = [asyncio.create_task(worker(i)) for i in range(in_flight)]
    try:
        began = time.perf_counter()
        while True:
            await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - began
            steady = warm.answers >= in_flight
            if (steady and elapsed >= warmup_min_s) or elapsed >= warmup_max_s:
                break
        if control is not None:
            await asyncio.to_thread(control.clear_calls)
        measured = phase.tally = Tally()
        window_began = time.perf_counter()
        cpu.start()
        await asyncio.sleep(window_s)
        phase.tally = Tally()  # answers after the window are nobody's
        window = time.perf_counter() - window_began
        cores = cpu.stop()
        recorded = await asyncio.to_thread(control.call_count) if control is not None else None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    calls = None
    if control is not None and recorded is not None:
        # Only the calls recorded by the window's end: the log is in order.
        calls = (await asyncio.to_thread(control.calls))[:recorded]
    err66 = None if calls is None else sum(c["err_code"] == ERR_CONCURRENCY_LIMIT for c in calls)
    return {
        "mode": "closed",
        "in_flight": in_flight,
        "warmup_s": window_began - began,
        "steady": steady,
        "warmup": warm.summary(),
        "window_s": window,
        **measured.summary(),
        "events_per_s": measured.events / window,
        "cpu_cores": cores,
        "fake_calls": None if calls is None else len(calls),
        "err66": err66,
    }


async def seed(call: Call, in_flight: int, count: int) -> dict[str, Any]:
    tally = Tally()
    numbers = iter(range(count))

    async def worker(index: int) -> None:
        for n in numbers:
            started = time.perf_counter()
            codes = await call(index, n)
            tally.add(time.perf_counter() - started, codes)

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(in_flight)))
    return {"mode": "seed", "duration_s": time.perf_counter() - began, **tally.summary()}


async def paired(call: Call, targets: int, count: int) -> dict[str, Any]:
    """``count`` rounds; in round ``n`` target ``t`` (worker ``t``: one channel each)
    identifies person ``n * targets + t``, the targets in turn, the first one turning
    every round. Each target's figures, and the per-round differences of every target
    from the first, in milliseconds."""
    tallies = [Tally() for _ in range(targets)]
    began = time.perf_counter()
    for n in range(count):
        for step in range(targets):
            target = (n + step) % targets
            started = time.perf_counter()
            codes = await call(target, n * targets + target)
            tallies[target].add(time.perf_counter() - started, codes)
    differences = [
        sorted(
            (later - first) * 1000
            for later, first in zip(tally.latencies, tallies[0].latencies, strict=True)
        )
        for tally in tallies[1:]
    ]
    return {
        "mode": "paired",
        "duration_s": time.perf_counter() - began,
        "targets": [tally.summary() for tally in tallies],
        "difference_p50_ms": [percentile(d, 0.50) for d in differences],
    }


async def burst(call: Call, count: int, *, outcomes: bool = False) -> dict[str, Any]:
    tally = Tally()
    statuses = [""] * count

    async def one(n: int) -> None:
        started = time.perf_counter()
        codes = await call(n, n)
        tally.add(time.perf_counter() - started, codes)
        statuses[n] = next(iter(codes)) if len(codes) == 1 else "MIXED"

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(count)))
    duration = time.perf_counter() - began
    result = {"mode": "burst", "count": count, "duration_s": duration, **tally.summary()}
    if outcomes:
        result["outcomes"] = statuses
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    in_flight = args.count if args.mode == "burst" else args.in_flight
    # Paired: one channel per target, worker t on target t (open_channels interleaves).
    per_target = 1 if args.mode == "paired" else args.channels
    channels = open_channels(args.target, in_flight, per_target)
    control = FakeControl(args.fake_url) if args.fake_url else None
    try:
        await asyncio.wait_for(
            asyncio.gather(*(c.channel_ready() for c in channels)), CONNECT_TIMEOUT_S
        )
        people = People(args.tag, args.pool)
        if args.rpc == "batch":
            shape = batch_shape()
            if not isinstance(shape, BatchShape):
                return {"mode": args.mode, "unavailable": shape}
            call = batch_call(channels, shape, args.strategy, people, args.items, args.timeout)
        else:
            call = identify_call(channels, args.strategy, people, args.timeout)
        if args.mode == "seed":
            return await seed(call, in_flight, args.count)
        if args.mode == "paired":
            return await paired(call, len(args.target), args.count)
        if args.mode == "burst":
            return await burst(call, args.count, outcomes=args.outcomes)
        return await closed_loop(
            call,
            in_flight,
            warmup_min_s=args.warmup_min,
            warmup_max_s=args.warmup_max,
            window_s=args.window,
            control=control,
            cpu=CpuMeter(dict(args.watch)),
        )
    finally:
        if control is not None:
            control.close()
        for channel in channels:
            with contextlib.suppress(Exception):
                await channel.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument(
        "--target",
        required=True,
        action="append",
        help="HOST:PORT of the gRPC server; again for more (load spread evenly over them)",
    )
    parser.add_argument("--channels", type=int, help="connections per target (by the load)")
    parser.add_argument("--mode", choices=("closed", "seed", "paired", "burst"), default="closed")
    parser.add_argument("--rpc", choices=("identify", "batch"), default="identify")
    parser.add_argument("--strategy", default="EmailV3", help="a bench.workload strategy")
    parser.add_argument("--tag", required=True, help="makes this scenario's people distinct")
    parser.add_argument("--pool", type=int, help="cycle through this many people")
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument(
        "--count", type=int, default=0, help="seed/burst: how many calls; paired: rounds"
    )
    parser.add_argument("--items", type=int, default=1, help="batch: items per request")
    parser.add_argument("--timeout", type=float, default=60.0, help="each call's deadline, s")
    parser.add_argument("--warmup-min", type=float, default=1.0)
    parser.add_argument("--warmup-max", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--fake-url", help="count Pardot calls at this fakepardot")
    parser.add_argument(
        "--outcomes", action="store_true", help="burst: report each call's status by number"
    )
    parser.add_argument(
        "--watch",
        type=_name_and_pid,
        action="append",
        default=[],
        metavar="NAME=PID",
        help="report the CPU this process used during the window",
    )
    return parser.parse_args(argv)


def _name_and_pid(text: str) -> tuple[str, int]:
    name, _, pid = text.partition("=")
    if not name or not pid.isdigit():
        raise argparse.ArgumentTypeError("NAME=PID")
    return name, int(pid)


def main(argv: Sequence[str] | None = None) -> None:
    result = asyncio.run(run(parse_args(argv)))
    result["error_examples"] = EXAMPLES
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
