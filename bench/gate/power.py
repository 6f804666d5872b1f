"""A regression verdict that knows its power: fail, pass, or inconclusive when the noise hides the threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.gate.result import FAIL, INCONCLUSIVE, PASS
from bench.stats import hboot

BUSIER = 0.10  # of the cores' time: how much more other processes must take during the candidate to call it busier


@dataclass(frozen=True)
class Judged:
    """B relative to A on one metric, oriented so that `worse` > 0 means B is worse."""

    ratio: float
    ci: tuple[float, float]
    worse: float  # by how much B is worse (point estimate)
    surely_worse: float  # ... at the optimistic end of the CI
    mde: float  # minimum detectable effect at the observed noise (80% power, 5% two-sided)
    verdict: str
    note: str


def busier_candidate(base: dict, cand: dict) -> bool:
    """The candidate's record says its host was busy (noise.busy), and other processes took a larger share of its
    cores than during the baseline, by more than BUSIER: contention alone could make it look slower."""
    share = [(r.get("noise") or {}).get("others_cpu_share") or 0.0 for r in (base, cand)]
    return bool((cand.get("noise") or {}).get("busy")) and share[1] - share[0] > BUSIER


def judge(statistic: str, groups_a: list[np.ndarray], groups_b: list[np.ndarray], threshold: float,
          higher_is_better: bool, paired: bool, busier: bool) -> Judged:
    """Fail when the whole CI lies beyond the threshold; inconclusive when the minimum detectable effect exceeds
    the threshold (or, comparing runs made at different times, when the candidate's host was busier and the CI
    says fail: that cannot be told from a regression); pass otherwise."""
    est = hboot.ratio(groups_a, groups_b, statistic, paired=paired)
    if higher_is_better:  # throughput from the mean latency, its inverse in a closed loop
        ratio, ci = 1 / est.value, (1 / est.ci[1], 1 / est.ci[0])
        worse, surely_worse = 1 - ratio, 1 - ci[1]
    else:
        ratio, ci = est.value, est.ci
        worse, surely_worse = ratio - 1, ci[0] - 1
    reps = f"{min(len(groups_a), len(groups_b))} {'interleaved pairs' if paired else 'replicas'}"
    if surely_worse > threshold and busier and not paired:
        verdict, note = INCONCLUSIVE, ("host busier during the candidate run: a sequential comparison cannot tell "
                                       "that from a regression; use --rerun")
    elif surely_worse > threshold:
        verdict, note = FAIL, f"worse beyond the threshold across the whole CI ({reps})"
    elif est.mde > threshold:
        verdict, note = INCONCLUSIVE, (f"noise too high: MDE {est.mde:.0%} > {threshold:.0%} ({reps}); "
                                       "more replicas (--repeat) or --rerun")
    else:
        verdict, note = PASS, f"MDE {est.mde:.1%} ({reps})"
    return Judged(ratio, ci, worse, surely_worse, est.mde, verdict, note)
