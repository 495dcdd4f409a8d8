"""From what a load generator measured to the figures a table shows, and from several
runs to their medians. Plain data in, plain data out: no I/O, no formatting."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bench.stats import median
from strategies.core.pardot_facts import ERR_CONCURRENCY_LIMIT

OK = "OK"
#: The one status a burst may add to OK: the service's documented backpressure.
BACKPRESSURE = "RESOURCE_EXHAUSTED"

#: Counts of bad things: the table shows their median, and the worst run beside it.
_WORST_TOO = frozenset({"errors", "err66", "warmup_errors", "other", "wasted_share"})


def closed_figures(result: dict[str, Any], ceiling_per_s: float | None) -> dict[str, Any]:
    """One closed-loop measurement. events/s counts OK events only (a failure is not
    throughput); Pardot calls/event divides the fake's calls by every answered event,
    since a failed event costs calls too."""
    if "unavailable" in result:
        return {"unavailable": result["unavailable"]}
    codes = Counter(result["codes"])
    ok = codes.pop(OK, 0)
    window = result["window_s"]
    events_per_s = ok / window if window > 0 else None
    answered = result["events"]
    calls = result.get("fake_calls")
    warmup_codes = Counter(result["warmup"]["codes"])
    warmup_codes.pop(OK, 0)
    return {
        "events_per_s": events_per_s,
        "calls_per_event": calls / answered if calls is not None and answered else None,
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "err66": result.get("err66"),
        "errors": sum(codes.values()),
        "error_codes": dict(codes),
        "warmup_errors": sum(warmup_codes.values()),
        "ceiling_ratio": (
            events_per_s / ceiling_per_s if ceiling_per_s and events_per_s is not None else None
        ),
        "answers": result["answers"],
        "steady": result["steady"],
        "cpu_cores": result.get("cpu_cores", {}),
    }


def burst_figures(
    result: dict[str, Any], memory_kib: dict[str, int], sampled_peak_kib: int, before_kib: int
) -> dict[str, Any]:
    codes = Counter(result["codes"])
    return {
        "count": result["count"],
        "ok": codes.pop(OK, 0),
        "backpressure": codes.pop(BACKPRESSURE, 0),
        "other": sum(codes.values()),
        "other_codes": dict(codes),
        "peak_rss_mb": memory_kib.get("VmHWM", 0) * 1024 / 1e6,
        "sampled_peak_rss_mb": sampled_peak_kib * 1024 / 1e6,
        "rss_before_mb": before_kib * 1024 / 1e6,
        "duration_s": result["duration_s"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
    }


def cold_figures(
    result: dict[str, Any], calls: Sequence[dict[str, Any]], tag: str
) -> dict[str, Any]:
    """The cold lookup burst (issue 12): how many calls answered OK, the Pardot API calls
    the fake recorded (token grants and logins left out: they are nobody's), and the
    share of them spent on calls that then failed.

    A call is attributed to the people it names — in its path (a read or write by
    email) or its form (a batch's entries, an update's lookup value) — by the numbers
    the load generator gave them (``bench-<tag>-<n>@…``, ``<tag>-org-<n>``); a batch
    call counts for each of its people in equal parts. A call that names nobody of
    the burst is reported as unattributed (none is expected)."""
    codes = Counter(result["codes"])
    outcomes: list[str] = result["outcomes"]
    person = re.compile(rf"(?:bench-{re.escape(tag)}-|{re.escape(tag)}-org-)(\d+)\b")
    api = [c for c in calls if c["path"].startswith("/api/") and "/login/" not in c["path"]]
    wasted = 0.0
    unattributed = 0
    for call in api:
        text = call["path"] + " " + json.dumps(call.get("form") or {})
        named = {int(n) for n in person.findall(text) if int(n) < len(outcomes)}
        if not named:
            unattributed += 1
            continue
        wasted += sum(outcomes[n] != OK for n in named) / len(named)
    ok = codes.pop(OK, 0)
    return {
        "count": result["count"],
        "ok": ok,
        "failed_codes": dict(codes),
        "pardot_calls": len(api),
        "wasted_calls": wasted,
        "wasted_share": wasted / len(api) if api else 0.0,
        "unattributed_calls": unattributed,
        "err66": sum(c.get("err_code") == ERR_CONCURRENCY_LIMIT for c in api),
        "duration_s": result["duration_s"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
    }


def median_figures(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median across runs, and for counts of failures the worst run too;
    every status name any run saw is kept (with its median count, maybe 0), so a rare
    error is not hidden by the median; ``steady`` only if every run was."""
    if len(runs) == 1:
        return runs[0]
    merged: dict[str, Any] = {}
    for key in runs[0]:
        values = [run.get(key) for run in runs]
        first = values[0]
        if isinstance(first, dict) and key.endswith("codes"):
            names = sorted({name for value in values for name in value or {}})
            merged[key] = {n: median((value or {}).get(n, 0) for value in values) for n in names}
        elif isinstance(first, dict):
            merged[key] = median_figures([v for v in values if isinstance(v, dict)])
        elif isinstance(first, bool):
            merged[key] = all(values)
        elif isinstance(first, int | float) or first is None:
            merged[key] = median(values)
            if key in _WORST_TOO:
                merged[f"{key}_max"] = max((v for v in values if v is not None), default=None)
        else:
            merged[key] = first
    return merged
