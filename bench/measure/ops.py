"""Per-operator profiles: one normalized table per job (ops/<job>.json) and a top-op summary for the record (read
back by RunDir.op_table and compared between runs by report/explain.py)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from backends.base import Backend
from bench.records.rundir import write_json_atomic

TOP_TYPES = 8  # op types named in the record's summary (the rest is "other")
PROFILE_S = 1.0  # the profiled pass runs about this long ...
PROFILE_ITERS = (20, 200)  # ... within these iteration counts


def profile_job(backend: Backend, batches: list[dict[str, np.ndarray]], mean_ms: float, run_dir: Path,
                job_id: str) -> dict:
    """Run the profiler pass, save ops/<job>.json, return the record's summary (or why none: it never fails the job)."""
    lo, hi = PROFILE_ITERS
    iterations = int(min(hi, max(lo, PROFILE_S * 1e3 / mean_ms))) if mean_ms > 0 else lo
    try:
        raw = backend.op_profile(batches, iterations)
    except Exception as e:  # noqa: BLE001 - the profile is extra information, the measurement stands
        return {"error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
    if raw is None:
        return {"error": f"{backend.name} has no operator profiler"}
    table = normalize(raw, mean_ms)
    return summary(table, save(run_dir, job_id, table))


def normalize(raw: dict, measured_mean_ms: float) -> dict:
    """The backend's raw rows ({op_type, node, calls, total_ms} over `iterations` profiled iterations) as one table:
    per node and per op type, time per iteration and its share of the *measured* (unprofiled) mean iteration time.
    `unattributed_ms` = measured mean - the ops' sum: framework overhead outside operators (negative when the
    profiler's own cost inflates the ops)."""
    iters = max(1, int(raw["iterations"]))
    nodes = {}
    for row in raw["rows"]:
        key = (row["op_type"], row["node"])
        n = nodes.setdefault(key, {"op_type": row["op_type"], "node": row["node"], "calls": 0, "total_ms": 0.0,
                                   **({"kernel": row["exec_type"]} if row.get("exec_type") else {})})
        n["calls"] += int(row["calls"])
        n["total_ms"] += float(row["total_ms"])
    types: dict[str, dict] = defaultdict(lambda: {"calls": 0, "total_ms": 0.0, "nodes": 0})
    for n in nodes.values():
        n["mean_ms"] = n["total_ms"] / n["calls"] if n["calls"] else 0.0
        n["ms_per_iter"] = n["total_ms"] / iters
        n["share"] = n["ms_per_iter"] / measured_mean_ms if measured_mean_ms > 0 else None
        t = types[n["op_type"]]
        t["calls"] += n["calls"]
        t["total_ms"] += n["total_ms"]
        t["nodes"] += 1
    op_types = sorted(({"op_type": k, **v, "ms_per_iter": v["total_ms"] / iters,
                        "share": v["total_ms"] / iters / measured_mean_ms if measured_mean_ms > 0 else None}
                       for k, v in types.items()), key=lambda t: -t["ms_per_iter"])
    ops_ms = sum(t["ms_per_iter"] for t in op_types)
    return {"profiler": raw["profiler"], "iterations": iters, "measured_mean_ms": measured_mean_ms,
            "ops_ms_per_iter": ops_ms, "share_sum": ops_ms / measured_mean_ms if measured_mean_ms > 0 else None,
            "unattributed_ms": measured_mean_ms - ops_ms,
            "runtime_ms_per_iter": raw.get("runtime_ms_per_iter"),  # the profiled pass's own iteration time
            "profiled_share_sum": ops_ms / raw["runtime_ms_per_iter"] if raw.get("runtime_ms_per_iter") else None,
            "op_types": op_types, "nodes": sorted(nodes.values(), key=lambda n: -n["ms_per_iter"])}


def summary(table: dict, file: str) -> dict:
    """The record's `op_profile`: the top op types by time (the rest summed as "other") and the coverage."""
    top = [{"op_type": t["op_type"], "ms_per_iter": t["ms_per_iter"], "share": t["share"]}
           for t in table["op_types"][:TOP_TYPES]]
    if rest := table["op_types"][TOP_TYPES:]:
        top.append({"op_type": "other", "ms_per_iter": sum(t["ms_per_iter"] for t in rest),
                    "share": sum(t["share"] or 0.0 for t in rest)})
    return {"profiler": table["profiler"], "iterations": table["iterations"], "share_sum": table["share_sum"],
            "profiled_share_sum": table["profiled_share_sum"], "unattributed_ms": table["unattributed_ms"], "top": top,
            "top_node": (table["nodes"] or [{}])[0].get("node"), "file": file}


def save(run_dir: Path, job_id: str, table: dict) -> str:
    """Write ops/<job>.json; returns its path relative to the run folder."""
    (run_dir / "ops").mkdir(exist_ok=True)
    rel = f"ops/{job_id}.json"
    write_json_atomic(run_dir / rel, table)
    return rel
