"""Summaries of repeated measurements: medians over runs, percentiles over pooled samples."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the value below which `fraction` of the samples lie (no interpolation, so a
    p99 of 100 samples is the 99th smallest, a real observation)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median and p99 of one figure's values (one per run for rates, pooled per item for latencies)."""
    return {
        "median": statistics.median(values),
        "p99": percentile(values, 0.99),
        "min": min(values),
        "max": max(values),
        "n": float(len(values)),
    }


def ratio(value: float, floor: float) -> float:
    """How far a figure is from its floor, as a factor ≥ 1 when the floor is faster (rates: floor / value)."""
    return floor / value if value else math.inf
