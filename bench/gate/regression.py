"""Regression gate: is a candidate run worse than a baseline run, by more than a threshold and significantly?"""

from __future__ import annotations

import re

import numpy as np

from bench.errors import UserError
from bench.gate.evaluate import fmt_number, unresolved_in
from bench.gate.result import FAIL, INCONCLUSIVE, SKIP, Check, GateResult
from bench.records.jobkey import JobKey
from bench.records.rundir import RunDir, replica_raws
from bench.records.schema import value_at
from bench.stats import hboot
from bench.stats.percentiles import PERCENTILES

# metric -> the statistic of the raw latencies whose ratio's CI (bench.stats.hboot.ratio) decides significance
CPU = "cpu_time.per_inference_ms"  # compared over the replicas' values (each process's CPU time per inference)
STATISTICS = {**{f"latency_ms.{q}": q for q in (*PERCENTILES, "mean")}, "throughput_sps": "mean", CPU: "mean"}
DEFAULT_METRICS = ("latency_ms.p50", "latency_ms.p99", "throughput_sps")


def parse_threshold(text: str, flag: str = "--max-regression") -> float:
    """'5%' -> 0.05; a plain number is a fraction ('0.05')."""
    m = re.fullmatch(r"\s*(\d+\.?\d*|\.\d+)\s*(%?)\s*", text)
    if not m or (not m.group(2) and float(m.group(1)) >= 1):
        raise UserError(f"{flag} takes a percentage like 5% (or a fraction like 0.05), got '{text}'")
    return float(m.group(1)) / (100 if m.group(2) else 1)


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """'p50,p99,throughput' (or full record paths) -> record metric paths."""
    if not text:
        return DEFAULT_METRICS
    aliases = {**{m.split(".")[-1]: m for m in STATISTICS}, "throughput": "throughput_sps", "cpu": CPU}
    names = tuple(aliases.get(m.strip(), m.strip()) for m in text.split(",") if m.strip())
    bad = [m for m in names if m not in STATISTICS]
    if bad or not names:
        raise UserError(f"--metrics: unknown regression metric {', '.join(bad) or repr(text)}; "
                        f"valid: {', '.join(aliases)} (or {', '.join(STATISTICS)})")
    return names


def unseen_noise(base: dict, cand: dict, replicas: int) -> str | None:
    """Why an unpaired comparison of two recorded runs cannot tell a regression from the machine (None: it can): a
    side with one replica cannot show its between-run noise (a tail percentile's least of all), a busy host's can be
    anything."""
    busy = [side for side, r in (("baseline", base), ("candidate", cand)) if (r.get("noise") or {}).get("busy")]
    if replicas < 2:
        return "one replica on a side: its between-run noise is unseen"
    return f"host busy during the {' and '.join(busy)} run" if busy else None


def decide(worse: hboot.Estimate, threshold: float, paired: bool, reps: str, base: dict, cand: dict
           ) -> tuple[str, str]:
    """(verdict, note): the one decision rule (bench.stats.hboot.decide), except that recorded runs compared
    unpaired never fail on noise they cannot show (unseen_noise): inconclusive, re-run interleaved."""
    verdict, note = hboot.decide(worse, threshold)
    why = None if paired or verdict != FAIL else unseen_noise(base, cand, worse.replicas)
    if why:
        return INCONCLUSIVE, f"{note}, but {why}: re-run interleaved (--rerun) ({reps})"
    return verdict, f"{note} ({reps})"


def _groups(run: RunDir, record: dict) -> list:
    if (groups := replica_raws(run, record)) is None:
        raise UserError(f"{run.path}: no raw latencies for job {record['job_id']} (raw/{record['job_id']}.npy); "
                        "the regression gate needs them")
    return groups


def cpu_groups(record: dict) -> list[np.ndarray] | None:
    """Each ok replica's CPU ms per inference as a group of one (None where a replica timed no CPU)."""
    reps = [s.get("cpu_time") for s in record.get("replicas") or [] if s["status"] == "ok"] or [record.get("cpu_time")]
    return [np.array([c["per_inference_ms"]]) for c in reps] if all(reps) else None


def compare_metric(metric: str, base: dict, cand: dict, groups_a: list, groups_b: list, threshold: float, job: str,
                   paired: bool = False, confidence: float = hboot.CONFIDENCE) -> Check:
    """The decision rule on the ratio's CI (bootstrap over replicas, at `confidence`)."""
    statistic = STATISTICS[metric]
    if metric == CPU and None in (groups := (cpu_groups(base), cpu_groups(cand))):
        return Check("regression", job, metric, "-", "-", "-", SKIP, "no CPU time recorded on a side")
    groups_a, groups_b = groups if metric == CPU else (groups_a, groups_b)
    est = hboot.ratio(groups_a, groups_b, statistic, paired=paired, confidence=confidence)
    if metric == "throughput_sps":  # from the mean latency: its inverse in a closed loop
        value, ci = 1 / est.value, (1 / est.ci[1], 1 / est.ci[0])
        worse, tolerated = 1 - value, threshold / (1 - threshold)  # throughput x(1-T) is mean latency x1/(1-T)
        shown = f"{fmt_number(base['throughput_sps'])} -> {fmt_number(cand['throughput_sps'])} sps"
    else:
        value, ci = est.value, est.ci
        worse, tolerated = value - 1, threshold
        old, new = value_at(base, metric), value_at(cand, metric)
        shown = f"{old:.4g} -> {new:.4g} ms" if new is not None and old is not None else "-"
    measured = f"{shown}, x{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], MDE {est.mde:.1%}"
    reps = f"{min(len(groups_a), len(groups_b))} {'interleaved pairs' if paired else 'replicas'}"
    # a percentile needs the records' own count of iterations (the mean: every replica has >= 2)
    short = [f"{side}: {why}" for side, rec, groups in (("baseline", base, groups_a), ("candidate", cand, groups_b))
             if statistic in PERCENTILES and (why := unresolved_in(rec, statistic, sum(len(g) for g in groups)))]
    verdict, note = (SKIP, f"{statistic} not resolvable; {'; '.join(short)}") if short else \
        decide(est, tolerated, paired, reps, base, cand)
    return Check("regression", job, metric, f"worse by <= {threshold:.0%}", measured, f"{threshold - worse:+.1%}",
                 verdict, note, (value, *ci))


def evaluate_regression(baseline: RunDir, candidate: RunDir, threshold: float,
                        metrics: tuple[str, ...] = DEFAULT_METRICS, paired: bool = False, strict: bool = False,
                        key=JobKey.of, confidence: float = hboot.CONFIDENCE) -> GateResult:
    """Compare every job of the candidate with the same job of the baseline (`paired`: their replicas ran
    interleaved, replica i of each back to back)."""
    result = GateResult("regression", str(baseline.path), strict=strict)
    base = {key(r): r for r in baseline.records()}
    for rec in candidate.records():
        job, old = f"{rec['variant']} {rec['backend']} {rec['scenario']} b{rec['batch_size']}", base.get(key(rec))
        if old is None or old.get("status") != "ok":
            result.checks.append(Check("regression", job, "-", "-", "-", "-", SKIP, "no ok baseline job to compare"))
        elif rec.get("status") != "ok":
            verdict = SKIP if rec.get("status") == "skipped" else FAIL
            result.checks.append(Check("regression", job, "-", "-", "-", "-", verdict,
                                       f"job {rec.get('status')}: {rec.get('reason') or ''} (baseline job was ok)"))
        else:
            groups_a, groups_b = _groups(baseline, old), _groups(candidate, rec)
            result.checks += [compare_metric(m, old, rec, groups_a, groups_b, threshold, job, paired, confidence)
                              for m in metrics]
    if not any(c.verdict != SKIP for c in result.checks):
        result.checks.append(Check("regression", "-", "-", "-", "-", "-", FAIL,
                                   f"no job of {candidate.path.name} matches an ok job of {baseline.path.name}"))
    return result
