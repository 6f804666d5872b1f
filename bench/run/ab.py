"""Interleaved A/B: measure A and B now, replica by replica (A B, B A, A B, ...), so both see the same machine.

`recbench gate --baseline A B --rerun` re-runs the recorded jobs of two runs (their artifacts and settings, injected
delays included); `recbench ab X Y` runs two models / artifacts / variants given directly.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from itertools import chain
from pathlib import Path

from backends.base import artifact_sha256, file_sha256
from bench.errors import UserError
from bench.measure import env
from bench.measure.jobspec import Job
from bench.records.rundir import RunDir, write_json_atomic
from bench.run.interleave import Interleaver, Planned
from bench.run.lifecycle import lifecycle
from bench.stats.hboot import LOOKS

PAIRED = ("single-stream",)  # the scenarios whose A and B are timed in turns in one process
DEFAULT_PAIRS = LOOKS[-1]  # the most replicas of each side a sequential A/B measures (it stops once decided)
MAX_TIME_S = 180.0  # per pair of jobs: the time a sequential A/B may take before its last look
# each side of a pair measures at least this long: a pair's process start, loads and warm-ups cost ~3.5 s, and a
# replica's p99 from a --quick window (~7 slowest of 662 calls) swings far more than its share of the time (DESIGN.md)
PAIR_WINDOW_S = 2.0

# look(runs, pairs, seconds_left, fraction of the time spent, 1 at the last look): judge the runs measured so far;
# True when every gated metric is decided
Look = Callable[[tuple[RunDir, RunDir], int, float, float], bool]


def abba(round_: int, plans: list[Planned]) -> list[tuple[Planned, ...]]:
    """Plans come as [a0, b0, a1, b1, ...]; odd rounds run each pair B first, so neither side always goes first. A
    single-stream pair is launched together, timed in turns of a few ms (in one process, or a process a side where
    the backend asks: bench.run.launcher.launch), other scenarios one process per side, back to back."""
    pairs = [(a, b) if round_ % 2 == 0 else (b, a) for a, b in zip(plans[::2], plans[1::2], strict=True)]
    return [g for pair in pairs for g in ([pair] if all(p.job.scenario in PAIRED for p in pair) else
                                          [(p,) for p in pair])]


def recorded_job(run: RunDir, record: dict) -> Job:
    """The job spec a run wrote beside its log (logs/<job>.job.json, or replica 0's)."""
    for name in (record["job_id"], f"{record['job_id']}.r0"):
        path = run.path / "logs" / f"{name}.job.json"
        if path.exists():
            return Job.load(path)
    raise UserError(f"{run.path}: no job spec for {record['job_id']} under logs/ (runs recorded before the job spec "
                    "was saved cannot be re-run)")


def new_runs(parent: Path, label_a: str, label_b: str) -> tuple[RunDir, RunDir]:
    """Two fresh run folders under PARENT/ab/."""
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    return RunDir.create(parent / "ab", f"{stamp}-{label_a}"), RunDir.create(parent / "ab", f"{stamp}-{label_b}")


def _rehome(job: Job, run: RunDir) -> Job:
    """The recorded job measured into another run folder (quality is not re-scored: only speed is compared)."""
    return dataclasses.replace(job, run_id=run.run_id, run_dir=str(run.path)).with_artifacts(reference=None)


def paired_window(job: Job) -> Job:
    """The job measuring at least PAIR_WINDOW_S per replica (its own window if longer)."""
    t = job.timing
    return dataclasses.replace(job, timing=t.model_copy(update={
        "replica_min_s": max(t.replica_min_s, PAIR_WINDOW_S), "min_duration_s": max(t.min_duration_s, PAIR_WINDOW_S),
        "max_duration_s": max(t.max_duration_s, PAIR_WINDOW_S)}))


def verify_artifact(job: Job, sha256: str | None, measured_by: str) -> None:
    """Exit 2 unless the file the job would load is the one `measured_by` measured (same sha256, as the worker
    hashes it): a file changed or rebuilt since is another model, never silently measured in its place."""
    path = Path(job.artifacts.path)
    if not path.is_file():
        raise UserError(f"{path}: the artifact {measured_by} measured for {job.job_id} no longer exists")
    if not sha256:
        raise UserError(f"{path}: {measured_by} recorded no artifact_sha256 for {job.job_id}, so there is no telling "
                        "whether this is the file it measured")
    now = artifact_sha256(path)
    if now != sha256 and sha256 == file_sha256(path):
        raise UserError(f"{path}: {measured_by} hashed only this IR's .xml (recorded before recbench hashed its .bin "
                        f"too), so the weights {job.job_id} ran cannot be checked: measure both sides anew "
                        "(`recbench ab`, or `recbench run` and `recbench gate --baseline`)")
    if now != sha256:
        raise UserError(f"{path} changed since {measured_by} measured it (sha256 {sha256[:12]}... then, {now[:12]}... "
                        f"now): re-running {job.job_id} would measure another file; measure both sides anew "
                        "(`recbench ab`, or `recbench run` and `recbench gate --baseline`)")


def sequential(runs: tuple[RunDir, RunDir], jobs: int, repeat: int, max_time: float, look: Look | None,
               on_stop: Callable[[str], None] = lambda _why: None) -> Callable[[int], bool]:
    """When to stop adding rounds of pairs: look at the planned looks (bench.stats.hboot.LOOKS), and for the last time
    when `repeat` rounds are done or the next round would overrun `max_time` per pair of jobs; stop once decided
    (`on_stop` gets why: "decided after 9 pairs")."""
    start, budget = time.monotonic(), max_time * jobs

    def until(rounds: int) -> bool:
        spent = time.monotonic() - start
        last = rounds >= repeat or spent + spent / rounds > budget
        fraction = 1.0 if last else spent / budget
        decided = look is not None and (rounds in LOOKS or last) and look(runs, rounds, budget - spent, fraction)
        if decided or last:
            on_stop(("decided" if decided else "all pairs done" if rounds >= repeat else
                     f"out of time (--max-time {max_time:g} s per pair of jobs)") + f" after {rounds} pairs")
        return decided or last
    return until


def stopped_in(runs: tuple[RunDir, RunDir]) -> Callable[[str], None]:
    """Why a sequential A/B stopped, into both runs' config.json (`stopped`)."""
    def note(why: str) -> None:
        for run in runs:
            write_json_atomic(run.path / "config.json", {**json.loads((run.path / "config.json").read_text()),
                                                         "stopped": why})
    return note


def interleave(pairs: list[tuple[Planned, Planned]], repeat: int,
               on_launch: Callable[[Planned, int], None] | None = None, until: Callable[[int], bool] | None = None
               ) -> None:
    """Run every pair up to `repeat` times (`until` may stop it sooner), A and B of a pair timed in turns (abba)
    or back to back, in ABBA order, each side for at least PAIR_WINDOW_S; each replica's line is appended to its
    side's run as it ends. Before every launch the plan's artifact must still be the pinned file."""
    def launching(plan: Planned, k: int) -> None:
        verify_artifact(plan.job, *plan.pin)
        if on_launch:
            on_launch(plan, k)

    plans = [p for pair in pairs for p in pair]
    for plan in plans:
        plan.job = paired_window(plan.job)
    Interleaver(repeat, order=abba, on_launch=launching, until=until).run(plans,
                                                                          lambda plan, line: plan.run.append(line))


@contextmanager
def both(runs: tuple[RunDir, RunDir], environment: dict, configs: tuple[dict, dict], planned: int
         ) -> Iterator[None]:
    """Both sides' runs begun and finished together by the one run lifecycle (Ctrl-C marks both interrupted)."""
    with ExitStack() as stack:
        for run, config in zip(runs, configs, strict=True):
            stack.enter_context(lifecycle(run, environment, config, planned))
        yield


def rerun(run_a: RunDir, run_b: RunDir, repeat: int, key, on_launch=None, look: Look | None = None,
          max_time: float = MAX_TIME_S) -> tuple[RunDir, RunDir]:
    """Re-measure the jobs the two runs share (matched by `key`), interleaved, until `look` says decided (sequential);
    returns the two new run folders. Exit 2, before anything runs, when an artifact is not the file its run
    measured."""
    by_a = {key(r): r for r in run_a.records() if r.get("status") == "ok"}
    matched = [(by_a[key(r)], r) for r in run_b.records() if r.get("status") == "ok" and key(r) in by_a]
    if not matched:
        raise UserError(f"no ok job of {run_b.path} matches an ok job of {run_a.path}: nothing to re-run")
    olds = (run_a, run_b)
    recorded = [[(recorded_job(old, rec), (rec.get("artifact_sha256"), f"run {old.path}"))
                 for old, rec in zip(olds, pair, strict=True)] for pair in matched]
    for job, pin in chain.from_iterable(recorded):
        verify_artifact(job, *pin)
    runs = new_runs(run_b.path.parent, "rerun-baseline", "rerun-candidate")
    configs = tuple({"rerun_of": str(old.path), "repeat": repeat} for old in olds)
    with both(runs, env.capture(), configs, len(recorded) * repeat):
        pairs = [tuple(Planned(_rehome(job, run), run, pin=pin) for (job, pin), run in zip(pair, runs, strict=True))
                 for pair in recorded]
        interleave(pairs, repeat, on_launch, sequential(runs, len(pairs), repeat, max_time, look, stopped_in(runs)))
    return runs


def side(text: str, default_model: str) -> tuple[str, str]:
    """'MODEL@VARIANT', a variant name (of the default model) or a model (built-in, file, pkg.mod:factory) as fp32."""
    from models.variants import VARIANTS

    if "@" in text:
        model, variant = text.rsplit("@", 1)
        return model, variant
    if text in VARIANTS or all(step in VARIANTS for step in text.split("+")):
        return default_model, text
    return text, "fp32"


def ab_key(record: dict) -> tuple:
    """A and B differ in model or variant by design: jobs pair up on where and how they ran."""
    return tuple(record.get(k) for k in ("backend", "device", "profile", "scenario", "batch_size", "shapes"))


def run_ab(cfg_a, cfg_b, repeat: int, log: Callable[[str], None], look: Look | None = None,
           max_time: float = MAX_TIME_S) -> tuple[RunDir, RunDir]:
    """Plan both sides' jobs (building their variants), then run them interleaved into two new run folders until
    `look` says decided."""
    from bench.run.sweep import Sweep

    sweeps = Sweep(cfg_a, log=log), Sweep(cfg_b, log=log)
    for sw in sweeps:
        sw.repeat = repeat
    runs = new_runs(cfg_a.out, "ab-A", "ab-B")
    environment = sweeps[0].environment()
    planned = max(len(list(sw.grid())) for sw in sweeps) * repeat
    with both(runs, environment, tuple(sw.config_json() for sw in sweeps), planned):
        plans = [sw.plan(run, environment) for sw, run in zip(sweeps, runs, strict=True)]
        if len(plans[0]) != len(plans[1]):
            raise UserError(f"A has {len(plans[0])} jobs and B {len(plans[1])}: give one variant per side")
        for p in (p for side in plans for p in side if p.outcome is None):  # every replica must measure the file
            p.pin = (artifact_sha256(p.job.artifacts.path), "this A/B's build")  # as built now, not one rebuilt since
        interleave(list(zip(*plans, strict=True)), repeat,
                   lambda plan, k: log(f"  {plan.run.run_id} {plan.job.job_id} r{k}"),
                   sequential(runs, len(plans[0]), repeat, max_time, look, stopped_in(runs)))
    return runs
