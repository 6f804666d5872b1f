"""How `recommend` judges one measured configuration: budget limits, objective value, misses, Pareto front."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np

from bench.gate.budgets import Budgets, Limit
from bench.gate.evaluate import matches, unit_text
from bench.records.rundir import RunDir, replica_raws
from bench.records.schema import value_at
from bench.report.data import is_load
from bench.stats.hboot import TOLERANCE, decide, ratio, reading
from bench.stats.percentiles import PERCENTILES

# objective name -> (record metric, larger is better)
OBJECTIVES = {"throughput": ("throughput_sps", True), "p99": ("latency_ms.p99", False), "size": ("model_bytes", False),
              "max-qps": ("max_qps", True)}  # max-qps: the highest server QPS within the p99 budget


def metric_value(record: dict, path: str) -> float | None:
    """A record's metric; an unresolved latency percentile is estimated from the job's raw latencies."""
    value = value_at(record, path)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    percent = PERCENTILES.get(path.removeprefix("latency_ms.")) if path.startswith("latency_ms.") else None
    if percent and record.get("status") == "ok" and record.get("run_dir"):
        raw = RunDir(Path(record["run_dir"])).raw(record["job_id"])
        return None if raw is None else float(np.percentile(raw, percent)) / 1e6
    return None


def versus(record: dict, chosen: dict, objective: str, threshold: float = TOLERANCE) -> str | None:
    """The record against the recommendation by the one decision rule (bench.stats.hboot.decide at ±threshold) on
    the objective's latency statistic: p99, or for throughput the mean latency per sample (back to back only). Replicas
    of one run pair up round by round. None where that statistic has no raw latencies (size, max-qps, under load)."""
    stat = {"p99": "p99", "throughput": "mean"}.get(objective)
    if stat is None or (stat == "mean" and (is_load(record) or is_load(chosen))):
        return None
    groups = [replica_raws(RunDir(Path(r["run_dir"])), r) if r.get("run_dir") else None for r in (chosen, record)]
    if None in groups:
        return None
    per = [r["batch_size"] if stat == "mean" else 1 for r in (chosen, record)]
    est = ratio(*([g / n for g in gs] for gs, n in zip(groups, per, strict=True)), stat,
                paired=record["run_dir"] == chosen["run_dir"])
    what = "p99" if stat == "p99" else "mean latency per sample"
    return (f"{reading(*decide(est, threshold))} vs the recommended at ±{threshold:.0%} ({what} "
            f"x{est.value:.2f} [{est.ci[0]:.2f}, {est.ci[1]:.2f}])")


@dataclass(frozen=True)
class Miss:
    """One limit a configuration breaks, and by how much (relative to the limit)."""

    limit: Limit
    value: float | None

    @property
    def relative(self) -> float:
        if self.value is None:
            return float("inf")
        gap = self.value - self.limit.value if self.limit.upper else self.limit.value - self.value
        return gap / abs(self.limit.value) if self.limit.value else gap

    def describe(self) -> str:
        path = self.limit.metric.path
        if self.value is None:
            return f"{path} not measured (budget '{self.limit.text}')"
        return f"{path} {unit_text(self.value, self.limit)} breaks '{self.limit.text}'"


def misses(record: dict, budgets: Budgets, quality_only: bool = False) -> list[Miss]:
    """Every limit of every rule that selects this record and does not hold."""
    limits = [limit for rule in budgets.rules if matches(record, rule.select) for limit in rule.limits.values()
              if not quality_only or limit.metric.path.startswith("quality.")]
    found = [Miss(limit, metric_value(record, limit.metric.path)) for limit in limits]
    return [m for m in found if m.value is None or not m.limit.holds(m.value)]


def objective_value(record: dict, objective: str) -> float:
    """Larger is better, whatever the objective (latencies and sizes are negated); -inf when unknown."""
    path, larger = OBJECTIVES[objective]
    if (value := metric_value(record, path)) is None:
        return float("-inf")
    return value if larger else -value


def rank_key(record: dict, budgets: Budgets, objective: str) -> tuple:
    """Sort key, best first: configurations that meet every budget, by objective; then the closest misses."""
    broken = misses(record, budgets)
    return bool(broken), max((m.relative for m in broken), default=0.0), -objective_value(record, objective)


def quality_axis(budgets: Budgets, records: list[dict]) -> tuple[str, bool] | None:
    """The quality metric the budgets limit (a floor: larger is better), else the first one the records have."""
    limited = ((limit.metric.path, not limit.upper) for rule in budgets.rules for limit in rule.limits.values()
               if limit.metric.path.startswith("quality."))
    known = ("quality.auc_delta", "quality.rank_corr", "quality.recall_at_k_truth_delta", "quality.ndcg_at_10_delta")
    measured = ((path, True) for path in known if any(metric_value(r, path) is not None for r in records))
    return next(chain(limited, measured), None)


def pareto_front(records: list[dict], axes: tuple[tuple[str, bool], ...]) -> list[dict]:
    """Records no other record beats on every axis (each axis: metric path, larger is better)."""
    signs = [1 if larger else -1 for _, larger in axes]
    rows = [(r, [metric_value(r, path) for path, _ in axes]) for r in records]
    points = [(r, [s * v for s, v in zip(signs, values, strict=True)]) for r, values in rows if None not in values]
    return [r for r, p in points
            if not any(q != p and all(a >= b for a, b in zip(q, p, strict=True)) for _, q in points)]
