"""The tables and targets of the shared-state parts (issue 13, ``bench.cluster``), in the
same Markdown as ``bench.report``'s. Formatting only."""

from __future__ import annotations

from typing import Any

from bench.report import count, errors, latency, per_event, rate, table


def cores_of(figures: dict[str, Any], prefix: str) -> str:
    used = (figures.get("cpu_cores") or {}).items()
    mine = [cores for name, cores in used if name.startswith(prefix)]
    return f"{sum(mine):.2f}" if mine else "—"


def cluster_table(part: dict[str, Any], machine: dict[str, Any]) -> str:
    n, replicas = part["in_flight"], part["replicas"]
    rows = []
    for key, label in (
        ("single", "1 process, embedded state (SQLite)"),
        ("one_redis", '1 process, state = "redis"'),
        ("spread", f'{replicas:g} replicas, state = "redis", load spread over {replicas:g} ports'),
    ):
        figures = part[key]
        rows.append(
            [
                label,
                f"{n:g}",
                rate(figures["events_per_s"]),
                per_event(figures["calls_per_event"]),
                latency(figures["p50_ms"], bool(figures.get("steady", True))),
                latency(figures["p99_ms"], bool(figures.get("steady", True))),
                count(figures["err66"], figures.get("err66_max")),
                errors(figures),
                cores_of(figures, "server"),
                cores_of(figures, "redis"),
            ]
        )
    columns = (
        "Identify, EmailV3 (v3), new people, one Pardot account",
        "in flight",
        "events/s",
        "Pardot calls/event",
        "p50",
        "p99",
        "err 66",
        "errors",
        "server CPU (cores, all processes)",
        "redis-server CPU",
    )
    text = table(columns, rows)
    if part.get("ratio") is not None:
        text += (
            f"\n\n{replicas:g} replicas ÷ 1 embedded process: {part['ratio'] * 100:.0f} % "
            f"({machine['cpus_usable']} cores for everything: replicas, redis-server, "
            "fakepardot, load generator)"
        )
    return text


def workers_table(part: dict[str, Any]) -> str:
    rows = []
    for key, label in (("one", "--workers 1"), ("two", "--workers 2")):
        figures = part[key]
        rows.append(
            [
                f'{label}, state = "redis"',
                f"{part['in_flight']:g} over {part['channels']:g} connections",
                rate(figures["events_per_s"]),
                latency(figures["p50_ms"]),
                latency(figures["p99_ms"]),
                errors(figures),
                cores_of(figures, "server"),
                cores_of(figures, "redis"),
                cores_of(figures, "fakepardot"),
                cores_of(figures, "loadgen"),
            ]
        )
    columns = (
        "server (Pardot latency 0)",
        "in flight",
        "RPC/s",
        "p50",
        "p99",
        "errors",
        "server CPU (cores)",
        "redis-server",
        "fakepardot",
        "load generator",
    )
    text = table(columns, rows)
    if part.get("ratio") is not None:
        text += (
            f"\n\n--workers 2 ÷ --workers 1: {part['ratio'] * 100:.0f} % — the server had "
            f"{part['cpus_usable']:g} cores, shared with the load generator, fakepardot and "
            "redis-server (the CPU columns: what each used)"
        )
    return text


def idle_table(part: dict[str, Any]) -> str:
    rows = []
    for key, label in (("sqlite", "embedded (SQLite)"), ("redis", 'state = "redis"')):
        figures = part[key]
        rows.append(
            [
                label,
                f"{part['calls']:g}, one at a time",
                latency(figures["p50_ms"]),
                latency(figures["p99_ms"]),
            ]
        )
    text = table(("state (Pardot latency 0)", "Identify calls", "p50", "p99"), rows)
    if part.get("added_ms") is not None:
        text += f"\n\nRedis - SQLite, median of the rounds' differences: {part['added_ms']:+.2f} ms"
    if part.get("p50_gap_ms") is not None:
        text += f" (Redis p50 - SQLite p50: {part['p50_gap_ms']:+.2f} ms)"
    trips = part.get("redis_round_trips_per_call")
    if trips is not None:
        text += f"; Redis round trips per call: {trips:.2f}"
    if (ping := part.get("round_trip_p50_ms")) is not None:
        text += f" (one round trip, a PING through redis-py: {ping:.2f} ms p50)"
    commands = part.get("redis_commands_per_call") or {}
    if commands:
        named = ", ".join(f"{name} {calls:.2f}" for name, calls in sorted(commands.items()))
        total = part["redis_commands"]
        text += f"; commands per call (a script's own included): {total:.2f} ({named})"
    return text


def render_shared(summary: dict[str, Any], machine: dict[str, Any]) -> str:
    """The parts measured, then their targets; empty when none was."""
    parts: list[str] = []
    if summary.get("cluster"):
        parts += ["", cluster_table(summary["cluster"], machine)]
    if summary.get("workers"):
        parts += ["", workers_table(summary["workers"])]
    if summary.get("redis_idle"):
        parts += ["", idle_table(summary["redis_idle"])]
    if parts:
        parts += ["", "Targets (issue 13, shared state on Redis):", *cluster_targets(summary)]
    return "\n".join(parts)


def cluster_targets(summary: dict[str, Any]) -> list[str]:
    """Issue 13's targets, ✓ or ✗ with the figures judged; the workers ratio has no
    target (it is reported)."""
    lines: list[str] = []

    def check(ok: bool, text: str) -> None:
        lines.append(f"- {'✓' if ok else '✗'} {text}")

    part = summary.get("cluster") or {}
    if part.get("ratio") is not None:
        spread = part["spread"]
        calls = spread["calls_per_event"]
        check(
            part["ratio"] >= 0.9
            and calls is not None
            and calls <= 0.03
            and not spread["err66"]
            and not spread.get("err66_max"),
            f"{part['replicas']:g} replicas on one account: ≥ 90 % of one process's events/s, "
            f"≤ 0.03 calls/event, no err 66 — measured {part['ratio'] * 100:.0f} % "
            f"({rate(spread['events_per_s'])} against {rate(part['single']['events_per_s'])}), "
            f"{per_event(calls)} calls/event, err 66 "
            f"{count(spread['err66'], spread.get('err66_max'))}",
        )
    workers = summary.get("workers") or {}
    if workers.get("ratio") is not None:
        lines.append(
            f"- (reported) --workers 2 ÷ --workers 1 at zero latency: "
            f"{workers['ratio'] * 100:.0f} % on {workers['cpus_usable']:g} shared cores"
        )
    idle = summary.get("redis_idle") or {}
    if idle.get("added_ms") is not None:
        check(
            idle["added_ms"] <= 2.0,
            f"an idle Redis-backed call: ≤ 2 ms over SQLite (median of paired "
            f"differences) — measured {idle['added_ms']:+.2f} ms (p50 "
            f"{latency(idle['redis']['p50_ms'])} against {latency(idle['sqlite']['p50_ms'])})",
        )
    return lines
