"""Runs a list of jobs R times each, round-robin (replica k of every job before replica k+1 of any), so no job's
replicas run back to back and jobs that are compared see the same stretch of machine time."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.measure.jobspec import Job
from bench.records.rundir import RunDir
from bench.run import replicas
from bench.run.launcher import launch


@dataclass
class Planned:
    """A job ready to launch (outcome None), or the record it already has (skipped / failed before launch)."""

    job: Job
    run: RunDir
    outcome: dict | None = None
    records: list[dict] = field(default_factory=list)


def quality_key(job: Job) -> str:
    """Quality depends on the variant, the backend and its options, never on the batch, scenario or replica."""
    return json.dumps([job.model, job.preset, job.variant, job.backend, job.device, job.backend_options],
                      sort_keys=True, default=str)


class Interleaver:
    """Launches planned jobs in rounds; quality is scored once per variant x backend and shared."""

    def __init__(self, repeat: int, order: Callable[[int, list[Planned]], list[Planned]] | None = None,
                 on_launch: Callable[[Planned, int], None] | None = None):
        self.repeat = repeat
        self.order = order or (lambda _round, plans: plans)
        self.on_launch = on_launch or (lambda _plan, _k: None)
        self.quality: dict[str, tuple[str, dict]] = {}  # key -> (job id that scored it, quality)

    def _launch(self, plan: Planned, k: int) -> dict:
        key = quality_key(plan.job)
        owner = self.quality.get(key)
        job = replicas.replica_job(plan.job, k, self.repeat, score_quality=owner is None and k == 0)
        self.on_launch(plan, k)
        rec = launch(job)
        if rec["status"] == "ok" and job.artifacts.reference and rec.get("quality") is not None:
            self.quality[key] = (plan.job.job_id, rec["quality"])
        elif rec["status"] == "ok" and plan.job.artifacts.reference and owner and owner[0] != plan.job.job_id:
            rec.update(quality=owner[1], quality_from=owner[0])
        return rec

    def run(self, plans: list[Planned], done: Callable[[Planned, dict], None]) -> None:
        """Every replica of every plan; `done(plan, record)` gets each plan's final (pooled) record as soon as
        its last replica ends (a job whose first replica failed is not run again)."""
        for k in range(self.repeat):
            for plan in self.order(k, plans):
                if plan.outcome is not None:
                    if k == 0:
                        done(plan, plan.outcome)
                    continue
                if plan.records and plan.records[0]["status"] != "ok":
                    continue
                rec = self._launch(plan, k)
                plan.records.append(rec)
                if k == 0 and rec["status"] != "ok":
                    done(plan, {**rec, "job_id": plan.job.job_id})
                elif k == self.repeat - 1:
                    done(plan, rec if self.repeat == 1 else replicas.pool(plan.job, plan.records, plan.run))
