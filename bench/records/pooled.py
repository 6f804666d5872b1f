"""A job's pooled view, derived when a run is read and never written: the lines of its replicas (one process each)
merged into one record, as torch.utils.benchmark's Measurement.merge does. Latency statistics come from the
replicas' raw samples pooled, their CIs from the bootstrap over replicas (bench.stats.hboot)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import numpy as np

from bench.stats import hboot
from bench.stats.latency import CV_WARN, latency_summary

NOISE_KEPT = ("others_cpu_share", "steal_share", "loadavg_before", "busy")
RATES = ("achieved_gflops", "achieved_gbps", "fraction_of_peak")  # proportional to the throughput
REPLICA_ONLY = ("replica", "trials")  # facts of one process, not of a job measured in several
# a replica's warnings the pooled view says again from all of them (busy hosts, percentiles too few samples back)
RESTATED = re.compile(r"^(host busy while measuring: |p\d+ not reported: )")

Load = Callable[[dict], "np.ndarray | None"]  # a replica's line -> its raw latencies (ns), None when missing


def quality_key(fields: dict) -> str:
    """Quality depends on the variant, the backend and its options, never on the batch, scenario or replica."""
    return json.dumps([fields.get(k) for k in ("model", "preset", "variant", "backend", "device", "backend_options")],
                      sort_keys=True, default=str)


def summary(line: dict) -> dict:
    """What a job's pooled view keeps of one replica."""
    lat = line.get("latency_ms") or {}
    noise = line.get("noise") or {}
    return {"replica": line.get("replica", 0), "status": line["status"], "reason": line.get("reason"),
            "started_at": line.get("started_at"), "latency_ms": {q: lat.get(q) for q in ("mean", "p50", "p99")},
            **{f: line.get(f) for f in ("throughput_sps", "iterations", "duration_s", "cv", "stable", "cpu_time")},
            "noise": {f: noise.get(f) for f in NOISE_KEPT}}


def _cv(values: list[float | None]) -> float | None:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    return float(v.std(ddof=1) / v.mean()) if len(v) > 1 and v.mean() > 0 else None


def _cpu(lines: list[dict]) -> dict | None:
    """The replicas' CPU time per inference, each weighted by its iterations (None unless every replica has one)."""
    cpu = [(r["cpu_time"], r["iterations"]) for r in lines if r.get("cpu_time")]
    return {k: sum(c[k] * n for c, n in cpu) / sum(n for _, n in cpu) for k in cpu[0][0]} \
        if cpu and len(cpu) == len(lines) else None


def _noise(lines: list[dict]) -> dict:
    noises = [r.get("noise") or {} for r in lines]
    busy = [n for n in noises if n.get("busy")]
    worst = {f: max((n.get(f) or 0.0 for n in noises), default=0.0) for f in ("others_cpu_share", "steal_share")}
    reasons = list(dict.fromkeys(x for n in busy for x in n.get("busy_reasons") or []))
    return {**noises[0], "loadavg_after": noises[-1].get("loadavg_after"), **worst, "busy_replicas": len(busy),
            "busy": bool(busy), "busy_reasons": reasons}


def _energy(oks: list[dict], samples: int, wall: float) -> dict:
    """Joules summed over the replicas: watts over their summed wall time, joules per their summed samples."""
    joules = [r.get("energy_j") for r in oks]
    if any(j is None for j in joules):
        return {}
    total = float(sum(joules))
    return {"energy_j": total, "avg_watts": total / wall, "joules_per_1k_samples": total / samples * 1e3}


def _rates(base: dict, throughput: float) -> dict:
    """The throughput-proportional fields of the base replica at the pooled throughput (the bound, the largest
    share of a peak, is the same roof at any throughput)."""
    if not base.get("throughput_sps"):
        return {}
    scale = throughput / base["throughput_sps"]
    out = {f: base[f] * scale for f in RATES if base.get(f) is not None}
    if base.get("roofline"):
        out["roofline"] = {k: v * scale if v is not None else None for k, v in base["roofline"].items()}
    return out


def merge(lines: list[dict], load: Load, complete: bool = False) -> dict:
    """One job's record from its replicas' lines (in the order they ended); a line written before replicas had
    lines of their own (schema 2: already pooled) is returned as it is."""
    first = lines[0]
    if "replica" not in first:
        return first
    repeat = first.get("repeat") or 1
    view = {k: v for k, v in first.items() if k != "replica"}
    if repeat == 1:
        return view
    summaries = [summary(r) for r in lines]
    notes = [f"replica {r['replica']} {r['status']}: {r.get('reason')}" for r in lines if r["status"] != "ok"]
    groups, oks = [], []
    for r in (r for r in lines if r["status"] == "ok"):
        raw = load(r)
        if raw is None or not len(raw):
            notes.append(f"replica {r['replica']}: its raw latencies are missing, left out")
        else:
            groups.append(raw)
            oks.append(r)
    if not oks:  # its first replica failed (the job was not run again), or nothing it measured is on disk
        return {**view, "replicas": summaries}
    if len(lines) < repeat and not complete:  # a complete run with fewer: a sequential A/B stopped once decided
        notes.append(f"{len(lines)} of {repeat} replicas recorded (the run stopped before the rest): pooled from "
                     "those")
    return {**pool(oks, groups, notes), "repeat": repeat, "replicas": summaries}


def pool(oks: list[dict], groups: list[np.ndarray], notes: list[str]) -> dict:
    """The pooled measurement of ok replicas and their raw latencies (ns): percentiles of every iteration, CIs over
    replicas, throughput = samples / summed wall time, between-replica CV, the noisiest replica's noise."""
    base = next((r for r in oks if r.get("quality") is not None), oks[0])
    ns = np.concatenate(groups)
    lat, warnings = latency_summary(ns)
    ms = [g.astype(np.float64) / 1e6 for g in groups]
    samples, wall = sum(r["samples"] for r in oks), sum(r["duration_s"] for r in oks)
    throughput = samples / wall
    mean = hboot.pooled(ms, "mean")
    ci = {q: list(hboot.pooled(ms, q).ci) if lat[q] is not None else None for q in ("p50", "p99")}
    cv = {"p50": _cv([r["latency_ms"]["p50"] for r in oks]), "throughput_sps": _cv([r["throughput_sps"] for r in oks])}
    noise = _noise(oks)
    unstable = [f"unstable: replicas' {m} differ by CV {v:.0%} > {CV_WARN:.0%}" for m, v in cv.items()
                if v is not None and v > CV_WARN]
    busy = [f"host busy during {noise['busy_replicas']} of {len(oks)} replicas: {'; '.join(noise['busy_reasons'])}"
            ] if noise["busy"] else []
    own = dict.fromkeys(w for r in oks for w in r.get("warnings") or [] if not RESTATED.match(w))
    return {
        **{k: v for k, v in base.items() if k not in REPLICA_ONLY}, "started_at": oks[0].get("started_at"),
        "finished_at": oks[-1].get("finished_at"), "latency_ms": lat, "latency_ci_ms": ci,
        "throughput_sps": throughput, "samples": samples, "iterations": int(len(ns)), "duration_s": wall,
        "throughput_ci_sps": [throughput * mean.value / mean.ci[1], throughput * mean.value / mean.ci[0]],
        "cv": lat["std"] / lat["mean"] if lat["mean"] > 0 else 0.0,  # as one replica's (stats.latency.summarize)
        "replica_cv": cv, "stable": not unstable and all(r.get("stable") for r in oks),
        "warnings": busy + unstable + notes + list(own) + warnings, "noise": noise,
        "peak_rss_bytes": max(r.get("peak_rss_bytes") or 0 for r in oks),
        **_rates(base, throughput), **_energy(oks, samples, wall), "cpu_time": _cpu(oks),
    }


def jobs(lines: list[dict], load: Load, complete: bool = False) -> list[dict]:
    """One record per job (in the order jobs first appear), merged from its lines; a job that did not score
    quality shares that of the job that did for the same variant, backend and options (`quality_from`)."""
    by_job: dict[str, list[dict]] = {}
    for line in lines:
        by_job.setdefault(line.get("job_id"), []).append(line)
    records = [merge(group, load, complete) for group in by_job.values()]
    # reversed: the first job to score a key owns it
    scored = {quality_key(r): r for r in reversed(records) if r["status"] == "ok" and r.get("quality") is not None}
    for r in records:
        owner = scored.get(quality_key(r))
        if r["status"] == "ok" and r.get("quality") is None and owner and owner is not r:
            r.update(quality=owner["quality"], quality_from=owner["job_id"])
    return records
