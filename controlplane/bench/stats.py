"""Small, pure statistics for the benchmarks: percentiles, latency summaries, CDF points.

No I/O and no clock: callers pass the samples (seconds) and get plain dicts back, in
milliseconds, ready for JSON and tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["cdf_points", "percentile", "ratio", "summarize_latencies", "summarize_values"]

PERCENTILES = (50, 90, 99)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0-100) of already sorted values, by linear interpolation
    between closest ranks (numpy's default). `ValueError` on an empty sequence."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * p / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


def summarize_latencies(samples_s: Sequence[float]) -> dict[str, float | int]:
    """count, mean, p50, p90, p99, min and max of latencies given in seconds, in ms."""
    if not samples_s:
        return {"count": 0}
    ms = sorted(s * 1000 for s in samples_s)
    out: dict[str, float | int] = {"count": len(ms), "mean_ms": round(sum(ms) / len(ms), 3)}
    for p in PERCENTILES:
        out[f"p{p}_ms"] = round(percentile(ms, p), 3)
    out["min_ms"] = round(ms[0], 3)
    out["max_ms"] = round(ms[-1], 3)
    return out


def summarize_values(values_ms: Sequence[float]) -> dict[str, float | int]:
    """count, min, median, mean and max of a few values already in ms (failover times)."""
    if not values_ms:
        return {"count": 0}
    ms = sorted(values_ms)
    return {
        "count": len(ms),
        "min_ms": round(ms[0], 1),
        "median_ms": round(percentile(ms, 50), 1),
        "mean_ms": round(sum(ms) / len(ms), 1),
        "max_ms": round(ms[-1], 1),
    }


def cdf_points(samples_s: Sequence[float], points: int = 200) -> list[tuple[float, float]]:
    """At most `points` (latency ms, cumulative fraction) pairs describing the empirical CDF,
    always including the minimum and the maximum."""
    if not samples_s:
        return []
    ms = sorted(s * 1000 for s in samples_s)
    n = len(ms)
    if n <= points:
        idx = list(range(n))
    else:
        idx = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)})
    return [(round(ms[i], 4), round((i + 1) / n, 5)) for i in idx]


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b rounded to 2 decimals; None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)
