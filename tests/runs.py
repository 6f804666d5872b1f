"""Synthetic run folders for the gate and history tests (harness logic only; real runs are made with the CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.records.rundir import RunDir, replica_id
from bench.records.schema import SCHEMA_VERSION
from bench.stats.latency import summarize


def make_run(parent: Path, run_id: str, latencies_ms: dict[str, np.ndarray | list[np.ndarray]], preset: str = "tiny",
             started_at: str = "2026-01-01T00:00:00+00:00", **fields) -> RunDir:
    """One ok job per variant, batch 1, from its per-iteration latencies in ms (a list: one array per replica),
    written as a run writes it (each replica's line and raw file) and marked complete."""
    run = RunDir.create(parent, run_id)
    for i, (variant, groups) in enumerate(latencies_ms.items()):
        groups = groups if isinstance(groups, list) else [groups]
        job_id = f"{i:03d}-dlrm-{variant}-onnxruntime-single-stream-b1"
        for k, ms in enumerate(groups):
            ns = (np.asarray(ms) * 1e6).astype(np.int64)
            run.save_raw(replica_id(job_id, k, len(groups)), ns)
            run.append({"schema_version": SCHEMA_VERSION, "run_id": run_id, "job_id": job_id, "replica": k,
                        "repeat": len(groups), "status": "ok", "reason": None, "model": "dlrm", "preset": preset,
                        "variant": variant, "backend": "onnxruntime", "device": "cpu", "profile": "default",
                        "scenario": "single-stream", "batch_size": 1, "threads": 2, "started_at": started_at,
                        "peak_rss_bytes": 300 * 2**20, "model_bytes": 2_000_000, "gpu_mem_bytes": None,
                        "quality": {"auc": 0.7, "auc_delta": -0.0002}, **summarize(ns, 1, float(ns.sum()) / 1e9),
                        **fields})
    run.mark("complete", jobs=len(latencies_ms), done=run.recorded())
    return run


def latencies(median_ms: float, n: int = 2000, seed: int = 0, spread: float = 0.1) -> np.ndarray:
    """Right-skewed per-iteration latencies around a median, like a real timing loop's."""
    rng = np.random.default_rng(seed)
    return median_ms * rng.lognormal(0.0, spread, n)


def replicated_run(parent: Path, run_id: str, median_ms: float, seed: int, replicas: int = 4, between: float = 0.01,
                   **kw) -> RunDir:
    """A run of `replicas` processes whose medians wander by `between` (CV) around `median_ms`."""
    rng = np.random.default_rng(seed)
    return make_run(parent, run_id, {"fp32": [latencies(median_ms * rng.lognormal(0, between), seed=seed * 10 + k, **kw)
                                              for k in range(replicas)]})
