"""Synthetic run folders for the gate and history tests (harness logic only; real runs are made with the CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.records.rundir import RunDir
from bench.stats.latency import summarize


def make_run(parent: Path, run_id: str, latencies_ms: dict[str, np.ndarray], preset: str = "tiny",
             started_at: str = "2026-01-01T00:00:00+00:00", **fields) -> RunDir:
    """One ok record per (variant -> per-iteration latencies in ms), batch 1, with its raw file."""
    run = RunDir.create(parent, run_id)
    for i, (variant, ms) in enumerate(latencies_ms.items()):
        ns = (np.asarray(ms) * 1e6).astype(np.int64)
        job_id = f"{i:03d}-dlrm-{variant}-onnxruntime-single-stream-b1"
        run.save_raw(job_id, ns)
        run.append({"schema_version": 1, "run_id": run_id, "job_id": job_id, "status": "ok", "reason": None,
                    "model": "dlrm", "preset": preset, "variant": variant, "backend": "onnxruntime", "device": "cpu",
                    "profile": "default", "scenario": "single-stream", "batch_size": 1, "threads": 2,
                    "started_at": started_at, "peak_rss_bytes": 300 * 2**20, "model_bytes": 2_000_000,
                    "gpu_mem_bytes": None, "quality": {"auc": 0.7, "auc_delta": -0.0002},
                    **summarize(ns, 1, float(ns.sum()) / 1e9), **fields})
    run.mark("complete", jobs=len(latencies_ms), done=len(latencies_ms))  # finished, as `recbench run` marks it
    return run


def make_replicated_run(parent: Path, run_id: str, groups: list[np.ndarray], **fields) -> RunDir:
    """One ok fp32 record measured in len(groups) replicas (per-replica latencies in ms), as `--repeat` writes it."""
    run = make_run(parent, run_id, {"fp32": np.concatenate(groups)},
                   replicas=[{"replica": k, "status": "ok"} for k in range(len(groups))], repeat=len(groups), **fields)
    job_id = run.records()[0]["job_id"]
    for k, ms in enumerate(groups):
        run.save_raw(f"{job_id}.r{k}", (np.asarray(ms) * 1e6).astype(np.int64))
    return run


def latencies(median_ms: float, n: int = 2000, seed: int = 0, spread: float = 0.1) -> np.ndarray:
    """Right-skewed per-iteration latencies around a median, like a real timing loop's."""
    rng = np.random.default_rng(seed)
    return median_ms * rng.lognormal(0.0, spread, n)


def replicated_run(parent: Path, run_id: str, median_ms: float, seed: int, replicas: int = 4, between: float = 0.01,
                   **kw) -> RunDir:
    """A run of `replicas` processes whose medians wander by `between` (CV) around `median_ms`."""
    rng = np.random.default_rng(seed)
    return make_replicated_run(parent, run_id, [latencies(median_ms * rng.lognormal(0, between), seed=seed * 10 + k,
                                                          **kw) for k in range(replicas)])
