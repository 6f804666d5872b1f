"""Is B really different from A? Bootstrap CIs of latency ratios and a rank test on raw latencies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

MAX_POINTS = 5_000  # resampling cost grows with n; a random subsample keeps CIs honest and fast


@dataclass(frozen=True)
class Comparison:
    """B relative to A for one statistic: ratio B/A with its bootstrap 95% CI, and a rank test."""

    statistic: str
    a: float
    b: float
    ratio: float
    ci: tuple[float, float]
    p_value: float  # two-sided Mann-Whitney U on the raw latencies

    @property
    def significant(self) -> bool:
        """The CI of the ratio excludes 1 (no difference)."""
        return self.ci[0] > 1.0 or self.ci[1] < 1.0

    def as_dict(self) -> dict:
        return {"statistic": self.statistic, "a": self.a, "b": self.b, "ratio": self.ratio, "ci": list(self.ci),
                "p_value": self.p_value, "significant": self.significant}


def _subsample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return rng.choice(x, MAX_POINTS, replace=False) if len(x) > MAX_POINTS else x


def _stat_fn(statistic: str):
    if statistic == "mean":
        return lambda x, axis: np.mean(x, axis=axis)
    q = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}[statistic]
    return lambda x, axis: np.quantile(x, q, axis=axis)


def compare_latencies(a: np.ndarray, b: np.ndarray, statistic: str = "p50", confidence: float = 0.95,
                      n_resamples: int = 2000, seed: int = 0) -> Comparison:
    """Ratio of `statistic` (p50, p90, p95, p99 or mean) of B over A, with a two-sample bootstrap CI."""
    rng = np.random.default_rng(seed)
    xa, xb = _subsample(a, rng), _subsample(b, rng)
    f = _stat_fn(statistic)
    ratio = float(f(np.asarray(b, np.float64), None) / f(np.asarray(a, np.float64), None))
    res = stats.bootstrap((xa, xb), lambda x, y, axis: f(y, axis) / f(x, axis), vectorized=True, paired=False,
                          n_resamples=n_resamples, confidence_level=confidence, method="percentile", random_state=rng)
    p = float(stats.mannwhitneyu(xa, xb, alternative="two-sided").pvalue)
    return Comparison(statistic, float(f(np.asarray(a, np.float64), None)), float(f(np.asarray(b, np.float64), None)),
                      ratio, (float(res.confidence_interval.low), float(res.confidence_interval.high)), p)
