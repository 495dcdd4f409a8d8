"""The two statistics the benchmark reports: a latency percentile within a run, and
the median of a figure across runs. Nothing else lives here."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none):
    the value that ``fraction`` of the samples are at or below — an observed latency,
    never an interpolated one."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def median(values: Iterable[float | None]) -> float | None:
    """The median of the figures a metric had across runs, ignoring runs without one."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
