"""Replicas: one job measured in R separate processes, each appending its own line (bench.records.pooled merges
them when the run is read)."""

from __future__ import annotations

import dataclasses

from bench.measure.jobspec import Job

DEFAULT_REPEAT = 3  # replicas of a normal run; --quick runs one (see DESIGN.md, "Replicas")
QUICK_REPEAT = 1


def default_repeat(quick: bool) -> int:
    return QUICK_REPEAT if quick else DEFAULT_REPEAT


def replica_job(job: Job, k: int, repeat: int, score_quality: bool) -> Job:
    """Replica k of `repeat` of `job`: the job's id, its own raw/log names (Job.replica_id); the measured window is
    split across replicas (as pyperf splits values across worker processes), never below one second or the
    window asked for if shorter."""
    t = job.timing
    window = max(t.min_duration_s / repeat, min(1.0, t.min_duration_s))
    replica = dataclasses.replace(job, replica=k, repeat=repeat, timing=t.model_copy(update={"min_duration_s": window}))
    return replica if score_quality else replica.with_artifacts(reference=None)
