"""Bootstrap over replicas: resample the replicas (processes); a side of one replica, its iterations.

The noise that matters on a shared machine is between processes and runs (neighbours, placement, frequency), not
between the iterations of one process, so an interval from one process's iterations is far too narrow. Each
statistic is the geometric mean of the replicas' statistics; its log is what is resampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from bench.stats.percentiles import PERCENTILES

INNER = 400  # bootstrap values of each replica's statistic
OUTER = 4000  # resamples of the replicas
MAX_VALUES = 2000  # a replica's iterations are subsampled to this many; the spread is rescaled to the full n
CONFIDENCE = 0.95
SINGLE_REPLICA_CV = 0.20  # between-process CV assumed for a side measured in one process (it cannot show its own)
POWER = 0.80  # the MDE is the change found this often (at a two-sided 5% level)
# a sequential comparison looks after this many interleaved pairs (or when its time is spent, as the last look);
# each look spends alpha by spent() (its error rates hold however early it stops)
LOOKS = (4, 6, 9, 13, 19, 28, 40)
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
NO_DIFFERENCE = "no difference"
TOLERANCE = 0.05  # the change compare, the heatmap and recommend tolerate by default: "no difference" within ±5%


def statistic(x: np.ndarray, name: str, axis: int | None = None) -> np.ndarray | float:
    """mean, or a percentile named as in PERCENTILES (p50, p99, ...)."""
    return np.mean(x, axis=axis) if name == "mean" else np.quantile(x, PERCENTILES[name] / 100, axis=axis)


def _log(values: np.ndarray | float) -> np.ndarray:
    return np.log(np.maximum(values, 1e-300))


def _inner_log_draws(x: np.ndarray, name: str, rng: np.random.Generator, k: int = INNER) -> np.ndarray:
    """k bootstrap values of the log of one replica's statistic (iterations resampled), centred on its full-sample
    value. A subsample's spread is rescaled to the full n on the log scale: rescaled on the linear scale, the draws of
    a percentile between two modes (a p99 on the edge of 4 ms descheduling pauses) went below 0, whose log blew a
    paired A/A interval up to [0.000, 1e19]."""
    x = np.asarray(x, dtype=np.float64)
    m = min(len(x), MAX_VALUES)
    sub = rng.choice(x, m, replace=False) if m < len(x) else x
    logs = _log(statistic(sub[rng.integers(0, m, (k, m))], name, axis=1))
    return _log(statistic(x, name)) + (logs - _log(statistic(sub, name))) * np.sqrt(m / len(x))


def _log_draws(groups: list[np.ndarray], name: str, picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Resampled log geometric means of the replicas chosen by `picks` (OUTER x R). Each replica's statistic already
    carries its iterations' sampling noise, so with two or more their spread shows it and only replicas are
    resampled (resampling the iterations too counts that noise twice: Davison & Hinkley 1997, sec. 3.8); one replica
    is resampled at one of its inner draws."""
    if len(groups) > 1:
        return np.array([_log(statistic(np.asarray(g, np.float64), name)) for g in groups])[picks].mean(axis=1)
    inner = np.stack([_inner_log_draws(g, name, rng) for g in groups])
    cols = rng.integers(0, inner.shape[1], picks.shape)
    return inner[picks, cols].mean(axis=1)


def _centre(groups: list[np.ndarray], name: str) -> float:
    return float(np.mean([_log(float(statistic(np.asarray(g, np.float64), name))) for g in groups]))


def _var(draws: np.ndarray, replicas: int) -> float:
    """The resamples' variance; resampling R replicas underestimates theirs by (R-1)/R: widened back."""
    return float(np.var(draws)) * (replicas / (replicas - 1) if replicas > 1 else 1.0)


@dataclass(frozen=True)
class Estimate:
    """A statistic (or a ratio of two) with its 95% interval and the standard error of its log."""

    value: float
    ci: tuple[float, float]
    se_log: float
    replicas: int = 1  # the fewest replicas (pairs) on a side: the t distribution's degrees of freedom + 1

    @property
    def mde(self) -> float:
        """Minimum detectable effect: the relative change found with 80% power at a two-sided 5% level."""
        z = t_quantile(0.5 + CONFIDENCE / 2, self.replicas) + t_quantile(POWER, self.replicas)
        return float(np.expm1(z * self.se_log))

    @property
    def inverse(self) -> Estimate:
        """1 / the ratio (a speedup read as a slowdown, or back), its CI flipped."""
        return Estimate(1 / self.value, (1 / self.ci[1], 1 / self.ci[0]), self.se_log, self.replicas)


def _estimate(centre: float, var: float, replicas: int, confidence: float = CONFIDENCE) -> Estimate:
    """Student-t interval on the log scale with the bootstrap's variance: with 3-5 replicas a percentile interval of
    the resamples is far too narrow (it has only a handful of distinct values to spread over)."""
    se = float(np.sqrt(var))
    half = min(t_quantile(0.5 + confidence / 2, replicas) * se, 700.0)  # an early look's "anything", not an overflow
    return Estimate(float(np.exp(centre)), (float(np.exp(centre - half)), float(np.exp(centre + half))), se,
                    replicas)


def t_quantile(p: float, replicas: int) -> float:
    """Student t quantile with replicas - 1 degrees of freedom (normal for one replica: iterations only)."""
    return float(sps.t.ppf(p, replicas - 1)) if replicas > 1 else float(sps.norm.ppf(p))


def pooled(groups: list[np.ndarray], name: str, seed: int = 0) -> Estimate:
    """The statistic over replicas (geometric mean of theirs) with a bootstrap interval over them."""
    rng = np.random.default_rng(seed)
    r = len(groups)
    draws = _log_draws(groups, name, rng.integers(0, r, (OUTER, r)), rng)
    return _estimate(_centre(groups, name), _var(draws, r), r)


def ratio(groups_a: list[np.ndarray], groups_b: list[np.ndarray], name: str, paired: bool = False,
          seed: int = 0, confidence: float = CONFIDENCE) -> Estimate:
    """B over A: the one ratio of compare, the gates, the reports' speedups and the fidelity scripts.

    Paired (replica i of A and of B ran back to back, interleaved; as many replicas on both sides, more than one):
    pairs are resampled together, so whatever slowed both of a pair cancels. Otherwise each side's replicas are
    resampled on their own, and a side measured in one process gets the between-process variance it could not show
    (SINGLE_REPLICA_CV)."""
    rng = np.random.default_rng(seed)
    ra, rb = len(groups_a), len(groups_b)
    paired = paired and ra == rb > 1
    picks_a = rng.integers(0, ra, (OUTER, ra))
    picks_b = picks_a if paired else rng.integers(0, rb, (OUTER, rb))
    ca, cb = _centre(groups_a, name), _centre(groups_b, name)
    da, db = _log_draws(groups_a, name, picks_a, rng), _log_draws(groups_b, name, picks_b, rng)
    if paired:
        return _estimate(cb - ca, _var(db - da, ra), ra, confidence)
    unseen = ((ra == 1) + (rb == 1)) * np.log1p(SINGLE_REPLICA_CV) ** 2
    return _estimate(cb - ca, _var(da, ra) + _var(db, rb) + unseen, min(ra, rb), confidence)


def spent(fraction: float, alpha: float = 1 - CONFIDENCE) -> float:
    """The alpha a sequential comparison may have spent by `fraction` of its budget (the last look: 1), Lan & DeMets'
    O'Brien-Fleming-type spending function 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)): early looks decide only clear cases,
    nearly all the alpha is left for the last. A look at the k-th fraction tests at the alpha spent since the one
    before, so the looks' alphas sum to `alpha` (a union bound: valid for any correlation between looks)."""
    t = min(max(fraction, 1e-6), 1.0)
    return float(2 - 2 * sps.norm.cdf(sps.norm.ppf(1 - alpha / 2) / np.sqrt(t)))


def decide(worse: Estimate, threshold: float) -> tuple[str, str]:
    """The one decision rule, on a ratio in its worse direction (> 1: worse) against a tolerated change T: fail when
    the whole CI lies beyond 1+T, pass when it lies within 1+T (improved when it clears 1 on the good side, no
    difference when it lies inside 1±T), inconclusive otherwise. The MDE is information, never the verdict."""
    lo, hi = worse.ci
    if lo > 1 + threshold:
        return FAIL, f"worse than {threshold:.0%} across the whole CI"
    if hi >= 1 + threshold:
        return INCONCLUSIVE, f"the CI reaches past {threshold:.0%} (MDE {worse.mde:.1%})"
    return PASS, "improved" if hi < 1 else NO_DIFFERENCE if lo > 1 - threshold else f"not worse than {threshold:.0%}"


SLOWER, FASTER, NOT_SLOWER = "slower", "faster", "not slower"


def reading(verdict: str, note: str) -> str:
    """A decision as a comparison of two measurements words it (compare, the heatmap, recommend): slower (fail),
    faster (improved: the CI clears 1), no difference (inside ±T), not slower (within T), else inconclusive."""
    if verdict != PASS:
        return SLOWER if verdict == FAIL else INCONCLUSIVE
    return FASTER if note.startswith("improved") else NO_DIFFERENCE if note.startswith(NO_DIFFERENCE) else NOT_SLOWER
