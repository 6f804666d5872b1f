"""Regression gate: is a candidate run worse than a baseline run, by more than a threshold and significantly?"""

from __future__ import annotations

import re

from bench.errors import UserError
from bench.gate.evaluate import fmt_number
from bench.gate.result import FAIL, PASS, SKIP, Check, GateResult
from bench.jobkey import JobKey
from bench.records import RunDir
from bench.significance import compare_latencies

# metric -> the statistic of the raw latencies whose bootstrap CI decides significance.
STATISTICS = {"latency_ms.p50": "p50", "latency_ms.p90": "p90", "latency_ms.p95": "p95", "latency_ms.p99": "p99",
              "latency_ms.mean": "mean", "throughput_sps": "mean"}
DEFAULT_METRICS = ("latency_ms.p50", "latency_ms.p99", "throughput_sps")
# A percentile is resolvable only with this many iterations beyond it (n * (1 - q)): with fewer, p99 is the
# sample maximum and the percentile bootstrap gives a CI far narrower than the truth.
MIN_TAIL = 10


def iterations_needed(statistic: str) -> int:
    """Iterations a run needs before the bootstrap CI of `statistic` can be trusted."""
    if statistic == "mean":
        return 2
    q = int(statistic[1:]) / 100
    return int(round(MIN_TAIL / (1 - q)))


def parse_threshold(text: str) -> float:
    """'5%' -> 0.05; a plain number is a fraction ('0.05')."""
    m = re.fullmatch(r"\s*(\d+\.?\d*|\.\d+)\s*(%?)\s*", text)
    if not m or (not m.group(2) and float(m.group(1)) >= 1):
        raise UserError(f"--max-regression takes a percentage like 5% (or a fraction like 0.05), got '{text}'")
    return float(m.group(1)) / (100 if m.group(2) else 1)


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """'p50,p99,throughput' (or full record paths) -> record metric paths."""
    if not text:
        return DEFAULT_METRICS
    aliases = {**{m.split(".")[-1]: m for m in STATISTICS}, "throughput": "throughput_sps"}
    names = tuple(aliases.get(m.strip(), m.strip()) for m in text.split(",") if m.strip())
    bad = [m for m in names if m not in STATISTICS]
    if bad or not names:
        raise UserError(f"--metrics: unknown regression metric {', '.join(bad) or repr(text)}; "
                        f"valid: {', '.join(aliases)} (or {', '.join(STATISTICS)})")
    return names


def _label(record: dict) -> str:
    return f"{record['variant']} {record['backend']} {record['scenario']} b{record['batch_size']}"


def _raw(run: RunDir, record: dict):
    raw = run.raw(record["job_id"])
    if raw is None or len(raw) < 2:
        raise UserError(f"{run.path}: no raw latencies for job {record['job_id']} (raw/{record['job_id']}.npy); "
                        "the regression gate needs them")
    return raw


def compare_metric(metric: str, base: dict, cand: dict, raw_a, raw_b, threshold: float, job: str) -> Check:
    """Fail only when the whole bootstrap CI of the ratio lies beyond `threshold`: worse by more than the
    threshold, and significantly so (a point estimate past the threshold with a CI reaching back inside it is
    the run-to-run noise of tail percentiles on a shared machine, not a regression)."""
    cmp = compare_latencies(raw_a, raw_b, STATISTICS[metric])
    if metric == "throughput_sps":  # higher is better; significance from the mean latency, whose inverse it is
        a, b = base["throughput_sps"], cand["throughput_sps"]
        ratio, ci = b / a, (1 / cmp.ci[1], 1 / cmp.ci[0])
        worse, surely_worse = 1 - ratio, 1 - ci[1]
        shown = f"{fmt_number(a)} -> {fmt_number(b)} sps"
    else:
        ratio, ci = cmp.ratio, cmp.ci
        worse, surely_worse = ratio - 1, ci[0] - 1
        shown = f"{cmp.a / 1e6:.4g} -> {cmp.b / 1e6:.4g} ms"
    measured = f"{shown}, x{ratio:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    needed, n = iterations_needed(STATISTICS[metric]), min(len(raw_a), len(raw_b))
    if n < needed:
        verdict, note = SKIP, f"not resolvable: {n} iterations, {STATISTICS[metric]} needs {needed}"
    else:
        verdict = FAIL if surely_worse > threshold and cmp.significant else PASS
        note = "significant" if cmp.significant else "not significant"
    return Check("regression", job, metric, f"worse by <= {threshold:.0%}", measured, f"{threshold - worse:+.1%}",
                 verdict, note)


def evaluate_regression(baseline: RunDir, candidate: RunDir, threshold: float,
                        metrics: tuple[str, ...] = DEFAULT_METRICS) -> GateResult:
    """Compare every job of the candidate with the same job of the baseline."""
    result = GateResult("regression", str(baseline.path))
    base = {JobKey.of(r): r for r in baseline.records()}
    for rec in candidate.records():
        job, old = _label(rec), base.get(JobKey.of(rec))
        if old is None or old.get("status") != "ok":
            result.checks.append(Check("regression", job, "-", "-", "-", "-", SKIP, "no ok baseline job to compare"))
        elif rec.get("status") != "ok":
            verdict = SKIP if rec.get("status") == "skipped" else FAIL
            result.checks.append(Check("regression", job, "-", "-", "-", "-", verdict,
                                       f"job {rec.get('status')}: {rec.get('reason') or ''} (baseline job was ok)"))
        else:
            raw_a, raw_b = _raw(baseline, old), _raw(candidate, rec)
            result.checks += [compare_metric(m, old, rec, raw_a, raw_b, threshold, job) for m in metrics]
    if not any(c.verdict != SKIP for c in result.checks):
        result.checks.append(Check("regression", "-", "-", "-", "-", "-", FAIL,
                                   f"no job of {candidate.path.name} matches an ok job of {baseline.path.name}"))
    return result
