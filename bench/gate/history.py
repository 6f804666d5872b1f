"""History gate: each metric of a candidate run against the last N comparable runs (same job, same machine class),
within statistical lower and upper boundaries (Bencher's threshold models), and change points (Apache Otava)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from bench.errors import UserError
from bench.gate.result import FAIL, INCONCLUSIVE, PASS, SKIP, Check, GateResult
from bench.records.history import History, machine_id
from bench.records.jobkey import JobKey
from bench.records.rundir import RunDir
from bench.records.schema import value_at

MODELS = ("t-test", "z-score", "percentage", "iqr")
CONFIDENCE = 0.99  # the one-sided quantile of the t-test and z-score boundaries
FENCE = 1.5  # Tukey's fences: the quartiles -/+ 1.5 interquartile ranges
FRESH = 3  # a change point among the newest 3 runs (the candidate's included) is fresh


def change_points(series: list[float]) -> list[tuple[int, float, float]]:
    """(index of the first point of the new level, mean after / mean before - 1, p-value) of each change point
    (Otava's defaults: its two sides differ by Student's t-test at p <= 0.001, windows of 50 points)."""
    try:
        from otava.analysis import compute_change_points
    except ImportError:
        raise UserError("change points need Apache Otava: pip install 'recbench[continuous]'") from None
    found = compute_change_points([float(x) for x in series])[0] if len(series) > 2 else []
    return [(int(c.index), float(c.stats.forward_rel_change()), float(c.stats.pvalue)) for c in found]


def samples(record: dict, metric: str) -> list[float]:
    """The metric once per ok replica (the record's own value where its replicas do not carry it)."""
    values = [value_at(s, metric) for s in record.get("replicas") or [] if s.get("status") == "ok"]
    return values if values and None not in values else [value_at(record, metric)]


def boundaries(model: str, window: np.ndarray, m: int, threshold: float) -> tuple[float, float]:
    """(lower, upper) limits for the mean of m new samples, from the window's samples (DESIGN.md gives the formulas)."""
    mean, sd, n = window.mean(), window.std(ddof=1), len(window)
    if model == "t-test":
        half = stats.t.ppf(CONFIDENCE, n - 1) * sd * np.sqrt(1 / n + 1 / m)
    elif model == "z-score":
        half = stats.norm.ppf(CONFIDENCE) * sd
    elif model == "percentage":
        half = threshold * mean
    else:
        q1, q3 = np.percentile(window, [25, 75])
        return q1 - FENCE * (q3 - q1), q3 + FENCE * (q3 - q1)
    return mean - half, mean + half


def judge(metric: str, job: str, rec: dict, past: list[dict], model: str, threshold: float) -> Check:
    """Fail when the candidate lies beyond the worse boundary and is worse than the window's mean by more than the
    threshold; inconclusive when the window's noise puts that boundary beyond the threshold (a change of T could hide
    inside it); pass otherwise."""
    cand, pooled = samples(rec, metric), np.concatenate([samples(p, metric) for p in past])
    lo, hi = boundaries(model, pooled, len(cand), threshold)
    value, mean = float(np.mean(cand)), float(pooled.mean())
    worse, width, beyond = (1 - value / mean, 1 - lo / mean, value < lo) if metric == "throughput_sps" else \
        (value / mean - 1, hi / mean - 1, value > hi)
    basis = f"{len(past)} runs, {len(pooled)} replicas, {model}"
    if beyond and worse > threshold:
        verdict, note = FAIL, f"beyond the boundary and worse than {threshold:.0%} ({basis})"
    elif round(width, 9) > threshold:  # percentage: width == T
        verdict, note = INCONCLUSIVE, f"the window's noise puts the boundary {width:.1%} away ({basis}); more runs"
    else:
        verdict, note = PASS, f"within the boundary ({basis})"
    return Check("history", job, metric, f"[{lo:.4g}, {hi:.4g}], worse by <= {threshold:.0%}",
                 f"{value:.4g} vs mean {mean:.4g} ({value / mean - 1:+.1%})", f"{threshold - worse:+.1%}", verdict,
                 note)


def fresh_change(metric: str, job: str, series: list[float]) -> Check:
    """Fail on a change point for the worse among the newest FRESH runs of the series (the candidate last)."""
    bigger = metric == "throughput_sps"
    fresh = [(i, m, p) for i, m, p in change_points(series) if i >= len(series) - FRESH and (m < 0) == bigger]
    note = ", ".join(f"{m:+.1%} from {len(series) - 1 - i} runs before this one (p={p:.1g})" for i, m, p in fresh)
    return Check("change-point", job, metric, f"none in the newest {FRESH} runs", f"{len(series)} runs", "-",
                 FAIL if fresh else PASS, note)


def evaluate_history(candidate: RunDir, db: History, threshold: float, metrics: tuple[str, ...], model: str,
                     window: int, fail_on_change: bool = False, strict: bool = False) -> GateResult:
    """Judge every ok job of the candidate against the same job in the `window` runs of its machine class before it."""
    if model not in MODELS:
        raise UserError(f"--model takes one of {', '.join(MODELS)}, got '{model}'")
    records = candidate.records()
    started = min((r["started_at"] for r in records if r.get("started_at")), default="~")
    earlier: dict[JobKey, list[dict]] = {}
    for row, rec in db.records(machine_id(candidate.env())):  # oldest first
        if row["run_id"] != candidate.run_id and (row["started_at"] or "") < started and rec.get("status") == "ok":
            earlier.setdefault(JobKey.of(rec), []).append(rec)
    result = GateResult("history", f"{db.path} (window {window}, {model})", strict=strict)
    for rec in (r for r in records if r.get("status") == "ok"):
        job, past = f"{rec['variant']} {rec['backend']} {rec['scenario']} b{rec['batch_size']}", \
            earlier.get(JobKey.of(rec), [])[-window:]
        if len(past) < 2:
            result.checks.append(Check("history", job, "-", "-", "-", "-", SKIP,
                                       f"{len(past)} comparable earlier runs on this machine class: 2 needed"))
            continue
        for metric in metrics:
            result.checks.append(judge(metric, job, rec, past, model, threshold))
            if fail_on_change:
                result.checks.append(fresh_change(metric, job, [value_at(r, metric) for r in (*past, rec)]))
    return result
