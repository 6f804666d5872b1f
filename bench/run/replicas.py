"""Replicas: one job measured in R separate processes, pooled into one record that keeps each replica's summary."""

from __future__ import annotations

import dataclasses

import numpy as np

from bench.measure.jobspec import Job
from bench.measure.noise import busy_reasons
from bench.records.rundir import RunDir, replica_id
from bench.stats import hboot
from bench.stats.latency import CV_WARN, latency_summary

DEFAULT_REPEAT = 3  # replicas of a normal run; --quick runs one (see DESIGN.md, "Replicas")
QUICK_REPEAT = 1
NOISE_KEPT = ("others_cpu_share", "steal_share", "loadavg_before", "busy")


def default_repeat(quick: bool) -> int:
    return QUICK_REPEAT if quick else DEFAULT_REPEAT


def replica_job(job: Job, k: int, repeat: int, score_quality: bool) -> Job:
    """Replica k of `job`: its own raw/log names; the measured window is split across replicas (as pyperf
    splits values across worker processes), never below one second or the window asked for if shorter."""
    t = job.timing
    window = max(t.min_duration_s / repeat, min(1.0, t.min_duration_s))
    replica = dataclasses.replace(job, job_id=replica_id(job.job_id, k) if repeat > 1 else job.job_id,
                                  timing=t.model_copy(update={"min_duration_s": window}))
    return replica if score_quality else replica.with_artifacts(reference=None)


def summary(k: int, rec: dict) -> dict:
    """What a pooled record keeps of one replica."""
    lat = rec.get("latency_ms") or {}
    noise = rec.get("noise") or {}
    return {"replica": k, "status": rec["status"], "reason": rec.get("reason"), "started_at": rec.get("started_at"),
            "latency_ms": {q: lat.get(q) for q in ("mean", "p50", "p99")}, "throughput_sps": rec.get("throughput_sps"),
            "iterations": rec.get("iterations"), "duration_s": rec.get("duration_s"), "cv": rec.get("cv"),
            "stable": rec.get("stable"), "noise": {f: noise.get(f) for f in NOISE_KEPT}}


def _cv(values: list[float]) -> float | None:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    return float(v.std(ddof=1) / v.mean()) if len(v) > 1 and v.mean() > 0 else None


def _noise(records: list[dict]) -> dict:
    noises = [r.get("noise") or {} for r in records]
    busy = [n for n in noises if n.get("busy")]
    worst = max((n.get("others_cpu_share") or 0.0 for n in noises), default=0.0)
    out = {**noises[0], "loadavg_after": noises[-1].get("loadavg_after"), "others_cpu_share": worst,
           "steal_share": max((n.get("steal_share") or 0.0 for n in noises), default=0.0), "busy_replicas": len(busy)}
    return {**out, "busy": bool(busy), "busy_reasons": busy_reasons(out) if busy else []}


def pool(job: Job, records: list[dict], run: RunDir) -> dict:
    """One record from R replica records: pooled latencies, hierarchical-bootstrap CIs, between-replica CV."""
    ok = [(k, r) for k, r in enumerate(records) if r["status"] == "ok"]
    if not ok:
        return {**records[0], "job_id": job.job_id, "repeat": len(records),
                "replicas": [summary(k, r) for k, r in enumerate(records)]}
    groups = [run.raw(replica_id(job.job_id, k)).astype(np.float64) / 1e6 for k, _ in ok]
    raw = np.concatenate(groups)
    run.save_raw(job.job_id, (raw * 1e6).astype(np.int64))
    oks = [r for _, r in ok]
    base = next((r for r in oks if r.get("quality") is not None), oks[0])
    lat, warnings = latency_summary((raw * 1e6).astype(np.int64))
    samples, wall = sum(r["samples"] for r in oks), sum(r["duration_s"] for r in oks)
    throughput = samples / wall
    mean = hboot.pooled(groups, "mean")
    ci = {q: list(hboot.pooled(groups, q).ci) if lat[q] is not None else None for q in ("p50", "p99")}
    cv = {"p50": _cv([r["latency_ms"]["p50"] for r in oks]), "throughput_sps": _cv([r["throughput_sps"] for r in oks])}
    noise = _noise(oks)
    unstable = [f"unstable: replicas' {m} differ by CV {v:.0%} > {CV_WARN:.0%}" for m, v in cv.items()
                if v is not None and v > CV_WARN]
    failed = [f"replica {k} {r['status']}: {r.get('reason')}" for k, r in enumerate(records) if r["status"] != "ok"]
    busy = [f"host busy during {noise['busy_replicas']} of {len(oks)} replicas: {'; '.join(noise['busy_reasons'])} "
            "(worst replica)"
            ] if noise["busy"] else []
    return {
        **base, "job_id": job.job_id, "started_at": records[0].get("started_at"),
        "finished_at": records[-1].get("finished_at"), "latency_ms": lat, "latency_ci_ms": ci,
        "throughput_sps": throughput, "samples": samples, "iterations": int(len(raw)), "duration_s": wall,
        "throughput_ci_sps": [throughput * mean.value / mean.ci[1], throughput * mean.value / mean.ci[0]],
        "cv": float(raw.std(ddof=1) / raw.mean()) if len(raw) > 1 and raw.mean() > 0 else 0.0,
        "replica_cv": cv, "stable": not unstable and all(r.get("stable") for r in oks),
        "warnings": busy + unstable + failed + warnings, "noise": noise,
        "peak_rss_bytes": max(r.get("peak_rss_bytes") or 0 for r in oks), "repeat": len(records),
        "replicas": [summary(k, r) for k, r in enumerate(records)],
    }
