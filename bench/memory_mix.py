"""The server's peak memory under a mix of BatchSync and unary calls (issue 12, item 7).

``server.max_in_flight`` promises that a burst costs bounded memory (< 200 MB for 5,000
unary calls at once: docs/benchmarks.md, "The memory burst"). When it counted calls, a
BatchSync of 1,000 items weighed what one Identify weighs, and 120 of them at once held
120,000 events. This script sends such a mix at once to a fresh server process — by
default 120 BatchSync of 1,000 identify items and 2,000 unary Identify, each with its own
deadline, against fakepardot at Pardot's 200 ms and 5 in flight — and prints the
server's peak resident memory (``VmHWM``, cross-checked by sampling ``VmRSS``) and every
status the callers saw, per kind of call.

Run on its own: ``.venv/bin/python -m bench.memory_mix`` (this checkout) or
``--commit REV`` (the service as committed at REV, e.g. before a change); ``--help``
for the mix. It starts fakepardot and the service as separate processes on loopback,
stops both by their pids, and is bounded by the calls' deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from bench.fake_control import FakeControl
from bench.processes import HERE, MemorySampler, Source, export_tree, start_fake, start_server
from prospectsync.v1 import prospect_sync_pb2 as pb
from prospectsync.v1 import prospect_sync_pb2_grpc as pb_grpc
from strategies.core.pardot_facts import MAX_CONCURRENT_REQUESTS

#: Channels the calls are spread over (as many callers would be).
CHANNELS = 20
#: A google.rpc.Status code (an int) → its name.
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def identify(email: str) -> pb.IdentifyRequest:
    traits = struct_pb2.Struct()
    traits.update({"email": email, "first_name": "Mix"})
    return pb.IdentifyRequest(traits=traits, settings=pb.PardotSettings(connection="v3"))


async def send_mix(target: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every call at once; the status each ended with, counted per kind, and per
    BatchSync item for the batches that were admitted."""
    channels = [grpc.aio.insecure_channel(target) for _ in range(CHANNELS)]
    stubs = [pb_grpc.ProspectSyncStub(channel) for channel in channels]
    codes: dict[str, Counter[str]] = {"batch": Counter(), "unary": Counter(), "items": Counter()}

    async def batch(n: int) -> None:
        items = [
            pb.BatchSyncItem(identify=identify(f"b{n}-{i}@example.com")) for i in range(args.items)
        ]
        try:
            reply = await stubs[n % CHANNELS].BatchSync(
                pb.BatchSyncRequest(items=items), timeout=args.deadline
            )
        except grpc.aio.AioRpcError as error:
            codes["batch"][error.code().name] += 1
            return
        codes["batch"]["OK"] += 1
        for result in reply.results:
            failed = result.HasField("error")
            codes["items"][CODE_NAMES[result.error.code] if failed else "OK"] += 1

    async def unary(n: int) -> None:
        try:
            await stubs[n % CHANNELS].Identify(identify(f"u{n}@example.com"), timeout=args.deadline)
        except grpc.aio.AioRpcError as error:
            codes["unary"][error.code().name] += 1
            return
        codes["unary"]["OK"] += 1

    started = time.monotonic()
    try:
        await asyncio.gather(
            *(batch(n) for n in range(args.batches)), *(unary(n) for n in range(args.unary))
        )
    finally:
        for channel in channels:
            await channel.close()
    return {
        "duration_s": round(time.monotonic() - started, 1),
        **{kind: dict(counter) for kind, counter in codes.items()},
    }


def measure(args: argparse.Namespace, workdir: Path, source: Source) -> dict[str, Any]:
    fake, fake_url = start_fake(workdir, source)
    try:
        control = FakeControl(fake_url)
        control.wait_ready(20)
        control.reset(
            latency_s=args.latency, max_concurrency=MAX_CONCURRENT_REQUESTS, daily_limit=None
        )
        server, target = start_server(workdir, fake_url, name="server-mix", source=source)
        try:
            before_kib = server.memory_kib()["VmRSS"]
            with MemorySampler(server) as sampler:
                statuses = asyncio.run(send_mix(target, args))
            memory = server.memory_kib()
            server.check_alive()
        finally:
            server.stop()
    finally:
        fake.stop()
    return {
        "mix": {
            "batches": args.batches,
            "items_per_batch": args.items,
            "unary": args.unary,
            "deadline_s": args.deadline,
            "latency_s": args.latency,
        },
        "peak_rss_mb": round(memory.get("VmHWM", 0) * 1024 / 1e6, 1),
        "sampled_peak_rss_mb": round(sampler.peak_rss_kib * 1024 / 1e6, 1),
        "rss_before_mb": round(before_kib * 1024 / 1e6, 1),
        **statuses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_mix", description=__doc__)
    parser.add_argument("--batches", type=int, default=120, help="BatchSync calls (120)")
    parser.add_argument("--items", type=int, default=1000, help="identify items each (1000)")
    parser.add_argument("--unary", type=int, default=2000, help="unary Identify calls (2000)")
    parser.add_argument("--deadline", type=float, default=20.0, help="each call's, s (20)")
    parser.add_argument("--latency", type=float, default=0.2, help="the fake's, s (0.2)")
    parser.add_argument("--commit", metavar="REV", help="measure the service as of REV")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memory-mix-") as tmp:
        workdir = Path(tmp)
        source = export_tree(args.commit, workdir / "tree") if args.commit else HERE
        figures = measure(args, workdir, source)
    figures["code"] = args.commit or "this checkout"
    print(
        f"{args.batches} BatchSync x {args.items} items + {args.unary} Identify at once "
        f"({figures['code']}): peak RSS {figures['peak_rss_mb']:.0f} MB "
        f"(sampled {figures['sampled_peak_rss_mb']:.0f} MB, "
        f"idle {figures['rss_before_mb']:.0f} MB) "
        f"in {figures['duration_s']} s"
    )
    for kind in ("batch", "items", "unary"):
        print(f"  {kind:>5}: {json.dumps(figures[kind], sort_keys=True)}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
