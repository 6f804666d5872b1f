"""Head side of a fleet sweep: one Ray task per job on a node of its target, records streamed into one run folder."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from bench.config.sweep import SweepConfig
from bench.measure import env
from bench.measure.jobspec import Job
from bench.records.rundir import RunDir, write_json_atomic
from bench.run.fleet.cluster import Node, connect, live_nodes, offering
from bench.run.fleet.node import run_on_node
from bench.run.fleet.shipping import Shipped, Shipper
from bench.run.fleet.spec import Fleet, Target
from bench.run.progress import progress_bar
from bench.run.sweep import Sweep, new_run_id

NODE_CHECK_S = 2.0  # how often pending jobs are checked for a target that lost its last node


@dataclass
class Attempt:
    job: Job
    target: Target
    files: dict[str, list[Shipped]]
    number: int = 1


def plan(cfg: SweepConfig, fleet: Fleet, log=print) -> list[tuple[Target, Sweep]]:
    """One sweep per target (its profile and backends), validated before anything connects or runs."""
    return [(t, Sweep(cfg.model_copy(update={"profile": t.profile, "backends": t.backends}), log, target=t.name))
            for t in fleet.targets]


class FleetRun:
    """One fleet sweep: submits every job to its target's nodes and records each result as it arrives."""

    def __init__(self, ray, sweeps: list[tuple[Target, Sweep]], address: str, progress: Progress | None = None):
        self.ray, self.sweeps, self.address, self.progress = ray, sweeps, address, progress
        self.pending: dict = {}  # ObjectRef -> Attempt
        self.remote = ray.remote(run_on_node)
        self.env = {**env.capture(), "nodes": {}}  # the head's environment; each node's is added as it reports
        self.checked = time.monotonic()
        self.task = progress.add_task("fleet", total=sum(len(list(s.grid())) for _, s in sweeps)) if progress else None

    def run(self, fleet: Fleet) -> RunDir:
        first = self.sweeps[0][1]
        self.run_dir = RunDir.create(first.cfg.out, new_run_id(first.family.name, first.preset))
        write_json_atomic(self.run_dir.path / "env.json", self.env)
        write_json_atomic(self.run_dir.path / "config.json", {
            **first.config_json(), "fleet": fleet.model_dump(), "cluster": self.address,
            "targets": {t.name: s.config_json() for t, s in self.sweeps}})
        shipper, nodes, index = Shipper(self.ray), live_nodes(self.ray), 0
        try:
            for target, sweep in self.sweeps:
                skip = None if offering(nodes, target.resource) else f"no node offers {target.resource}"
                here = {"env_id": self.env["env_id"], "machine": None}  # the head's peaks say nothing of a node
                for planned in sweep.plan(self.run_dir, here, index, skip):
                    job = planned.job
                    if planned.outcome:
                        self.finish(planned.outcome)
                        continue
                    trace = job.scenario_options.get("arrivals", {}).get("file")
                    files = {"artifact": shipper.artifact(job.artifact), "inputs": [shipper.put(job.inputs_path)],
                             "reference": [shipper.put(job.reference)] if job.reference else [],
                             "trace": [shipper.put(trace)] if trace else []}
                    self.submit(Attempt(job, target, files))
                    self.collect(timeout=0)
                index += len(list(sweep.grid()))
            while self.pending:
                self.collect(timeout=1.0)
        finally:  # Ctrl-C or an error on the head: what is recorded stays, nothing keeps running for this run
            for ref in self.pending:
                self.ray.cancel(ref, force=True)
        return self.run_dir

    def submit(self, attempt: Attempt) -> None:
        ref = self.remote.options(resources={attempt.target.resource: 1}, num_cpus=0, max_retries=0,
                                  name=attempt.job.job_id).remote(attempt.job, attempt.files, self.env["versions"])
        self.pending[ref] = attempt
        if self.progress:
            self.progress.update(self.task, description=f"{attempt.target.name}: {attempt.job.job_id}")

    def collect(self, timeout: float) -> None:
        """Record every job that ended; retry or drop those whose node died."""
        ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=timeout)
        for ref in ready:
            attempt = self.pending.pop(ref)
            try:
                result = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as e:  # our own code failed on the node: no point retrying
                self.finish(attempt.job.outcome("failed", f"on the node: {str(e.cause or e).splitlines()[0][:500]}"))
                continue
            except self.ray.exceptions.RayError as e:  # the node or its worker process died
                self.lost(attempt, e)
                continue
            self.store(attempt, result)
        if time.monotonic() - self.checked > NODE_CHECK_S:
            self.drop_orphans()

    def store(self, attempt: Attempt, result: dict) -> None:
        record = result["record"]
        if record.get("node") and record["node"] not in self.env["nodes"]:
            self.env["nodes"][record["node"]] = result["env"]
            write_json_atomic(self.run_dir.path / "env.json", self.env)
        for name, values in result["raw"].items():
            self.run_dir.save_raw(name, values)
        (self.run_dir.path / "logs" / f"{attempt.job.job_id}.log").write_text(result["log"])
        self.finish({**record, "attempt": attempt.number, "node_env": result["env"]})

    def lost(self, attempt: Attempt, error: Exception) -> None:
        """A failed record for this attempt; one retry where another live node offers the target's resource."""
        found = re.search(r"node ID: ([0-9a-f]+)", str(error))
        node = found.group(1) if found else None
        resource = attempt.target.resource
        others = offering(live_nodes(self.ray), resource)
        retry = attempt.number == 1 and bool(others)
        then = "retried on another node" if retry else \
            "already retried once" if attempt.number > 1 else f"not retried: no other live node offers {resource}"
        self.run_dir.append(attempt.job.outcome(
            "failed", f"node {node or '(unknown)'} died mid-job ({type(error).__name__}); {then}",
            job_id=f"{attempt.job.job_id}-attempt{attempt.number}", attempt=attempt.number, node=node))
        if retry:
            self.submit(Attempt(attempt.job, attempt.target, attempt.files, attempt.number + 1))
        elif self.progress:
            self.progress.advance(self.task)

    def drop_orphans(self) -> None:
        """Jobs waiting for a target whose last node left mid-sweep would wait forever: skip them."""
        nodes: list[Node] = live_nodes(self.ray)
        self.checked = time.monotonic()
        for ref, attempt in list(self.pending.items()):
            if not offering(nodes, attempt.target.resource):
                self.ray.cancel(ref, force=True)
                del self.pending[ref]
                self.finish(attempt.job.outcome("skipped", f"no node offers {attempt.target.resource} "
                                                           "(its last node left mid-sweep)", attempt=attempt.number))

    def finish(self, record: dict) -> None:
        self.run_dir.append(record)
        if self.progress:
            self.progress.advance(self.task)


def run_fleet(cfg: SweepConfig, fleet: Fleet, address: str, console: Console) -> Path:
    """`recbench run --fleet FILE --cluster ADDRESS`: the run folder, like a local sweep's."""
    sweeps = plan(cfg, fleet, console.print)
    with connect(address) as ray, progress_bar(console) as progress:
        for _, sweep in sweeps:
            sweep.log = progress.console.print
        return FleetRun(ray, sweeps, address, progress).run(fleet).path
