"""The latency percentiles a record reports and how many samples back each: pure Python, so the config can import
it without pulling numpy or scipy into the CLI's startup."""

from __future__ import annotations

import math
from functools import cache

PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}  # name -> percent
DEFAULT_RESOLVE = "p99"  # a run measures until this percentile is resolvable (`--resolve`)
PERCENTILE_CONFIDENCE = 0.99  # a percentile is reported only when this confident it is not below the true one
OVERSHOOTS = 1  # ... while tolerating one sample above it (MLPerf early stopping: 662 samples for p99)


@cache
def min_samples(percentile: float, confidence: float = PERCENTILE_CONFIDENCE, overshoots: int = OVERSHOOTS) -> int:
    """Fewest samples for which `overshoots` samples above the true percentile happen with prob. <= 1 - confidence.

    This is MLPerf LoadGen's early-stopping bound: for p99 at 99% confidence it gives 662, for p90 64.
    """
    above = 1 - percentile / 100
    n = overshoots + 1
    while sum(math.comb(n, k) * above**k * (1 - above) ** (n - k) for k in range(overshoots + 1)) > 1 - confidence:
        n += 1
    return n
