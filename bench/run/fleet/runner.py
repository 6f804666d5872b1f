"""Head side of a fleet sweep: each job a Ray task on a node of its target, replicas in rounds, every result appended
to one run folder as it arrives; the run is begun and finished by the one lifecycle, like a local sweep."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from backends.base import artifact_files
from bench.config.sweep import SweepConfig
from bench.errors import UserError
from bench.measure import env
from bench.measure.jobspec import Job
from bench.records.rundir import RunDir, write_json_atomic
from bench.run.fleet.node import Shipped, Shipper, run_on_node
from bench.run.fleet.spec import Fleet, Target, connect, live_nodes, load_fleet, offering
from bench.run.lifecycle import lifecycle
from bench.run.progress import SweepProgress
from bench.run.sweep import Sweep
from models.fileio import save_atomic

NODE_CHECK_S = 2.0  # how often pending jobs are checked for a target that lost its last node


@dataclass(frozen=True)
class Attempt:
    job: Job  # as planned; replica k of it is what runs
    target: Target
    files: dict[str, list[Shipped]]
    k: int = 0
    number: int = 1


def plan(cfg: SweepConfig, fleet: Fleet, log=print) -> list[tuple[Target, Sweep]]:
    """One sweep per target (its profile and backends), validated before anything connects or runs."""
    return [(t, Sweep(cfg.model_copy(update={"profile": t.profile, "backends": t.backends}), log, target=t.name))
            for t in fleet.targets]


class FleetRun:
    """One fleet sweep: replica k of every job runs (in parallel across nodes) before replica k+1 of any."""

    def __init__(self, ray, sweeps: list[tuple[Target, Sweep]], address: str, progress: SweepProgress | None = None):
        self.ray, self.sweeps, self.address, self.progress = ray, sweeps, address, progress
        self.repeat = sweeps[0][1].repeat
        self.pending: dict = {}  # ObjectRef -> Attempt
        self.failed: set[str] = set()  # jobs with a result that is not ok: their later replicas are not run
        self.remote = ray.remote(run_on_node)
        self.env = {**env.capture(), "nodes": {}}  # the head's environment; each node's is added as it reports
        self.checked = time.monotonic()

    def run(self, fleet: Fleet) -> RunDir:
        first = self.sweeps[0][1]
        self.run_dir = first.new_run()
        config = {**first.config_json(), "fleet": fleet.model_dump(), "cluster": self.address,
                  "targets": {t.name: s.config_json() for t, s in self.sweeps}}
        count = sum(len(list(s.grid())) for _, s in self.sweeps)
        with lifecycle(self.run_dir, self.env, config, count * self.repeat):
            if self.progress:
                self.progress.start(count, self.repeat)
            try:
                jobs = self.prepare()  # replica 0 of each job goes out as soon as its target's jobs are planned
                for k in range(self.repeat):
                    for attempt in jobs if k else []:
                        if attempt.job.job_id not in self.failed:
                            self.submit(replace(attempt, k=k))
                    while self.pending:  # round k ends before round k+1 starts
                        self.collect(timeout=1.0)
            finally:  # Ctrl-C or an error on the head: what arrived stays, nothing keeps running for this run
                for ref in self.pending:
                    self.ray.cancel(ref, force=True)
        return self.run_dir

    def prepare(self) -> list[Attempt]:
        """Plan each target's jobs and submit their first replicas; every file a job needs is shipped once."""
        shipper, nodes, index, jobs = Shipper(self.ray), live_nodes(self.ray), 0, []
        here = {"env_id": self.env["env_id"], "machine": None}  # the head's peaks say nothing of a node
        for target, sweep in self.sweeps:
            skip = None if offering(nodes, target.resource) else f"no node offers {target.resource}"
            for planned in sweep.plan(self.run_dir, here, index, skip):
                if planned.outcome:
                    self.finish(planned.outcome)
                    continue
                job = planned.job
                art, opts = job.artifacts, job.scenario_options
                files = {"artifact": shipper.put(*artifact_files(art.path)), "inputs": shipper.put(art.input_pool),
                         "rows": shipper.put(art.row_pool), "reference": shipper.put(art.reference),
                         "arrivals": shipper.put(opts.arrivals.file),
                         "candidates": shipper.put(opts.candidates and opts.candidates.file)}
                jobs.append(Attempt(job, target, files))
                self.submit(jobs[-1])
            index += len(list(sweep.grid()))
            self.collect(timeout=0)
        return jobs

    def replica(self, attempt: Attempt) -> Job:
        return attempt.job.replica_of(attempt.k, self.repeat, score_quality=attempt.k == 0)

    def submit(self, attempt: Attempt) -> None:
        job = self.replica(attempt)
        ref = self.remote.options(resources={attempt.target.resource: 1}, num_cpus=0, max_retries=0,
                                  name=job.job_id).remote(job, attempt.files, self.env["versions"])
        self.pending[ref] = attempt

    def collect(self, timeout: float) -> None:
        """Record every job that ended; retry or drop those whose node died."""
        ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=timeout)
        for ref in ready:
            attempt = self.pending.pop(ref)
            try:
                result = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as e:  # our own code failed on the node: no point retrying
                self.finish(self.replica(attempt).outcome(
                    "failed", f"on the node: {str(e.cause or e).splitlines()[0][:500]}"), attempt)
            except self.ray.exceptions.RayError as e:  # the node or its worker process died
                self.lost(attempt, e)
            else:
                self.store(attempt, result)
        if time.monotonic() - self.checked > NODE_CHECK_S:
            self.drop_orphans()

    def store(self, attempt: Attempt, result: dict) -> None:
        """The node's record and the files its job wrote (raw, op profiles, logs), under the names the node gave."""
        record = result["record"]
        if record.get("node") and record["node"] not in self.env["nodes"]:
            self.env["nodes"][record["node"]] = result["env"]
            write_json_atomic(self.run_dir.path / "env.json", self.env)
        for folder, name, data in ((f, n, d) for f in ("raw", "ops") for n, d in result[f].items()):
            (self.run_dir.path / folder).mkdir(exist_ok=True)
            save_atomic(self.run_dir.path / folder / name, lambda tmp, data=data: tmp.write_bytes(data))
        for name, data in result["logs"].items():  # after the head's own log of the variant's build
            with open(self.run_dir.path / "logs" / name, "ab") as f:
                f.write(data)
        self.finish({**record, "attempt": attempt.number, "node_env": result["env"]}, attempt)

    def lost(self, attempt: Attempt, error: Exception) -> None:
        """A failed record for this attempt; one retry where another live node offers the target's resource."""
        found = re.search(r"node ID: ([0-9a-f]+)", str(error))
        node = found.group(1) if found else None
        resource = attempt.target.resource
        retry = attempt.number == 1 and bool(offering(live_nodes(self.ray), resource))
        then = "retried on another node" if retry else \
            "already retried once" if attempt.number > 1 else f"not retried: no other live node offers {resource}"
        job = self.replica(attempt)
        record = job.outcome("failed", f"node {node or '(unknown)'} died mid-job ({type(error).__name__}); {then}",
                             job_id=f"{job.job_id}-attempt{attempt.number}", attempt=attempt.number, node=node)
        if retry:
            self.run_dir.append(record)
            self.submit(replace(attempt, number=attempt.number + 1))
        else:
            self.finish(record, attempt)

    def drop_orphans(self) -> None:
        """Jobs waiting for a target whose last node left mid-sweep would wait forever: skip them."""
        nodes = live_nodes(self.ray)
        self.checked = time.monotonic()
        for ref, attempt in list(self.pending.items()):
            if not offering(nodes, attempt.target.resource):
                self.ray.cancel(ref, force=True)
                del self.pending[ref]
                self.finish(self.replica(attempt).outcome(
                    "skipped", f"no node offers {attempt.target.resource} (its last node left mid-sweep)",
                    attempt=attempt.number), attempt)

    def finish(self, record: dict, attempt: Attempt | None = None) -> None:
        self.run_dir.append(record)
        if attempt and record["status"] != "ok":
            self.failed.add(attempt.job.job_id)
        if self.progress:
            self.progress.finished(record)


def run_fleet(cfg: SweepConfig, fleet: Path | None, cluster: str | None, console: Console) -> Path:
    """`recbench run --fleet FILE --cluster ADDRESS`: the run folder, like a local sweep's."""
    if fleet is None:
        raise UserError("--cluster runs a fleet sweep: give the targets with --fleet FILE")
    if cfg.backends is not None or cfg.profile != "default":
        raise UserError("--fleet gives each target its own backends and profile: drop --backends / --profile")
    spec, address = load_fleet(fleet), cluster or "auto"
    sweeps = plan(cfg, spec, console.print)
    with connect(address) as ray, SweepProgress(console) as progress:
        for _, sweep in sweeps:
            sweep.log = progress.log
        return FleetRun(ray, sweeps, address, progress).run(spec).path
