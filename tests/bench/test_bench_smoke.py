"""``make bench`` still runs end to end: fake, server, load generator and echo server
as real processes on loopback, with tiny counts and tens of milliseconds of latency.

Timings are never asserted here (they belong to the benchmark itself); what is
asserted is that it finishes, prints its tables, and that the figures it writes are
the ones it counted: one Pardot call per identify, and no error when nothing fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.report import MAIN_COLUMNS
from support.redis_server import redis_server_binary

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 90  # a bound, not an expectation: it takes a few seconds


def quick_bench(*args: str) -> str:
    """``python -m bench.throughput --quick *args``: what it printed, once it passed."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.throughput", "--quick", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_quick_bench_prints_the_tables_and_writes_its_figures(tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    out = quick_bench(
        "--only", "rows,zero,burst,cold",
        "--latency", "0.02", "--in-flight", "1,6", "--warm-in-flight", "3",
        "--echo-in-flight", "3", "--burst", "12", "--burst-deadline", "2",
        "--window", "0.3", "--json", str(figures),
    )  # fmt: skip
    assert "| " + " | ".join(MAIN_COLUMNS) + " |" in out
    assert "bare grpc.aio echo" in out
    assert "Identify RPC/s ÷ echo RPC/s" in out
    assert "12 Identify at once" in out
    assert "| BatchSync, EmailV3 (v3), new people | 2 calls of 50 items |" in out

    written = json.loads(figures.read_text())
    rows = written["median"]["rows"]
    assert set(rows) >= {"identify@1", "identify@6", "lookup-warm@3"}
    for key in ("identify@1", "identify@6", "lookup-warm@3"):
        row = rows[key]
        assert row["answers"] > 0, key
        # An edge of the window may split one call from its answer: close to 1, not 1.
        assert 0.7 <= row["calls_per_event"] <= 1.3, (key, row)
        assert row["errors"] == 0 and row["err66"] == 0, (key, row)
    burst = written["median"]["burst"]
    assert burst["ok"] + burst["backpressure"] + burst["other"] == 12
    assert burst["peak_rss_mb"] >= burst["rss_before_mb"] > 0
    zero = written["median"]["zero"]
    assert zero["identify"]["answers"] > 0 and zero["echo"]["answers"] > 0
    assert written["machine"]["cpus"] >= 1


def test_only_zero_measures_and_prints_that_part_alone(tmp_path: Path) -> None:
    figures = tmp_path / "zero.json"
    out = quick_bench(
        "--only", "zero", "--echo-in-flight", "3", "--window", "0.3", "--json", str(figures)
    )
    assert "Identify RPC/s ÷ echo RPC/s" in out
    assert "| " + " | ".join(MAIN_COLUMNS) + " |" not in out
    assert "Identify at once" not in out
    median = json.loads(figures.read_text())["median"]
    assert median["rows"] == {} and median["burst"] == {}
    assert median["zero"]["identify"]["answers"] > 0


def test_only_cold_measures_the_cold_lookup_burst_alone(tmp_path: Path) -> None:
    """Every cold call is counted once, every Pardot call it cost is attributed to it."""
    figures = tmp_path / "cold.json"
    out = quick_bench(
        "--only", "cold", "--cold", "12", "--cold-deadline", "20", "--cold-latency", "0.02",
        "--json", str(figures),
    )  # fmt: skip
    assert "| cold lookup burst | OK |" in out
    assert "| " + " | ".join(MAIN_COLUMNS) + " |" not in out
    median = json.loads(figures.read_text())["median"]
    assert median["rows"] == {} and median["burst"] == {} and median["zero"] == {}
    cold = median["cold"]
    assert cold["ok"] + sum(cold["failed_codes"].values()) == cold["count"] == 12
    assert cold["unattributed_calls"] == 0
    # Every OK call read once and created (alone or in a batch): at least 12 + 1 calls.
    assert cold["pardot_calls"] >= cold["ok"] + 1
    assert 0 <= cold["wasted_calls"] <= cold["pardot_calls"]


def test_the_shared_state_parts_measure_and_print_alone(tmp_path: Path) -> None:
    """Issue 13's parts: 3 Redis-backed replicas against one embedded process, --workers
    2 against 1, an idle call on Redis against SQLite — every call answered, counted at
    the fake, and an idle Redis-backed call's Redis commands counted at redis-server."""
    redis_server_binary()  # skips (fails on CI) without redis-server
    figures = tmp_path / "shared.json"
    out = quick_bench(
        "--only", "cluster,workers,redis-idle", "--latency", "0.02",
        "--cluster-in-flight", "6", "--echo-in-flight", "3", "--idle-calls", "12",
        "--window", "0.3", "--json", str(figures),
    )  # fmt: skip
    assert '| 3 replicas, state = "redis", load spread over 3 ports | 6 |' in out
    assert "--workers 2 ÷ --workers 1:" in out and "the server had" in out
    assert "Redis p50 - SQLite p50:" in out
    assert "Targets (issue 13, shared state on Redis):" in out
    assert "| " + " | ".join(MAIN_COLUMNS) + " |" not in out

    median = json.loads(figures.read_text())["median"]
    assert median["rows"] == {} and median["zero"] == {} and median["burst"] == {}
    shared = median["cluster"]
    for key in ("single", "one_redis", "spread"):
        row = shared[key]
        assert row["answers"] > 0, key
        assert row["errors"] == 0 and row["err66"] == 0, (key, row)
        assert 0 < row["calls_per_event"] <= 1.3, (key, row)
    # The replicas' CPU is each one's own: three servers and the bench's redis-server.
    replicas = [name for name in shared["spread"]["cpu_cores"] if name.startswith("server")]
    assert len(replicas) == 3 and "redis-cluster" in shared["spread"]["cpu_cores"]
    workers = median["workers"]
    assert workers["one"]["answers"] > 0 and workers["two"]["answers"] > 0
    assert workers["one"]["errors"] == 0 and workers["two"]["errors"] == 0
    # --workers 2: the supervisor and its workers are all watched.
    assert len([n for n in workers["two"]["cpu_cores"] if n.startswith("server")]) >= 3
    assert workers["cpus_usable"] >= 1
    idle = median["redis_idle"]
    assert idle["sqlite"]["ok"] == idle["redis"]["ok"] == 12
    # Only the Redis-backed server talks to redis-server, and every call does.
    assert idle["redis_commands"] >= 1
    assert idle["added_ms"] is not None
