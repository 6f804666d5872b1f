"""Runs a list of jobs R times each, round-robin (replica k of every job before replica k+1 of any), so no job's
replicas run back to back and jobs that are compared see the same stretch of machine time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.measure.jobspec import Job
from bench.records.pooled import quality_key
from bench.records.rundir import RunDir
from bench.run.launcher import launch


@dataclass
class Planned:
    """A job ready to launch (outcome None), or the record it already has (skipped / failed before launch)."""

    job: Job
    run: RunDir
    outcome: dict | None = None
    stopped: bool = False  # its first replica did not measure: not run again
    pin: tuple[str | None, str] | None = None  # A/B: (sha256 of the artifact it must load, who measured that file)


class Interleaver:
    """Launches planned jobs in rounds; quality is scored once per variant x backend, the others' lines carry it."""

    def __init__(self, repeat: int, order: Callable[[int, list[Planned]], list[tuple[Planned, ...]]] | None = None,
                 on_launch: Callable[[Planned, int], None] | None = None, until: Callable[[int], bool] | None = None):
        self.repeat = repeat
        self.until = until or (lambda _rounds: False)  # asked after each round: True stops (a sequential A/B)
        # round k's launches: each a group of plans run in one process (a paired A/B: two), one plan each by default
        self.order = order or (lambda _round, plans: [(p,) for p in plans])
        self.on_launch = on_launch or (lambda _plan, _k: None)
        self.scored: dict[str, tuple[str, dict]] = {}  # quality key -> (the job that scored it, its quality)

    def run(self, plans: list[Planned], done: Callable[[Planned, dict], None]) -> None:
        """Every replica of every plan; `done(plan, line)` gets each replica's line the moment it ends (a plan's
        record before launch once; a job whose first replica did not measure is not run again)."""
        for k in range(self.repeat):
            for group in self.order(k, plans):
                for plan in (p for p in group if p.outcome is not None and k == 0):
                    done(plan, plan.outcome)
                live = [p for p in group if p.outcome is None and not p.stopped]
                if not live:
                    continue
                keys = [quality_key(vars(plan.job)) for plan in live]
                for plan in live:
                    self.on_launch(plan, k)
                lines = launch(*(plan.job.replica_of(k, self.repeat, key not in self.scored, self.scored.get(key))
                                 for plan, key in zip(live, keys, strict=True)))
                for plan, key, line in zip(live, keys, lines, strict=True):
                    if line["status"] == "ok" and line.get("quality") is not None:
                        self.scored.setdefault(key, (plan.job.job_id, line["quality"]))
                    plan.stopped = k == 0 and line["status"] != "ok"
                    done(plan, line)
            if self.until(k + 1):
                return
