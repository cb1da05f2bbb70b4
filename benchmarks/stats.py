"""Small statistics and formatting shared by the benchmarks: medians, percentiles, units.

Numbers are reported, never judged: nothing here compares a timing with a threshold.
"""

from __future__ import annotations

import math
import os
import platform
import statistics


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in [0, 1]) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def rate(per_second: float) -> str:
    return f"{per_second:>10,.0f}/s"


def machine() -> str:
    """Where the numbers came from: CPUs and load (other processes skew every timing)."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}, Python {platform.python_version()}"
