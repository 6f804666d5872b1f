"""What runs on a fleet node: one Ray task per job, which runs the job in its own process like a local sweep."""

from __future__ import annotations

import functools
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from backends.registry import load_class
from bench.config.profiles import Profile
from bench.measure import env
from bench.measure.jobspec import Job
from bench.records.rundir import RunDir
from bench.run.fleet.shipping import Shipped, receive, where_to_build
from bench.run.launcher import launch


@functools.cache
def node_env() -> dict:
    """This node's CPU, GPUs and runtime versions (captured once per Ray worker process)."""
    return env.capture()


@contextmanager
def main_not_reimported() -> Iterator[None]:
    """A spawned process re-runs its parent's __main__ script first; in a Ray worker that is Ray's worker script,
    i.e. all of Ray (4.5 s on the busy 2-core VM). The job process needs none of it, as under `python -m bench`."""
    main = sys.modules["__main__"]
    path = main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        if path is not None:
            main.__file__ = path


def build_here(job: Job) -> Job:
    """The job with its variant built by this node's own libraries (their versions differ from the head's)."""
    from models.artifacts import Workspace
    from models.registry import get_family
    from models.variants import resolve_variants

    fmt = job.artifacts.format
    prepared = Workspace(get_family(job.model), job.preset).prepare(resolve_variants([job.variant])[0], {fmt})
    return job.with_artifacts(path=prepared.files[fmt],
                              reference=prepared.reference if job.artifacts.reference else None)


def place_files(ray, job: Job, files: dict[str, list[Shipped]], head_versions: dict) -> tuple[Job, dict]:
    """The job pointed at local copies of its artifact, input and row pools, reference data and arrival trace; and
    where the artifact came from."""
    from models.registry import FAMILIES

    source, why = where_to_build(job.artifacts.format, job.model in FAMILIES, head_versions, node_env()["versions"])
    job = job.with_artifacts(input_pool=receive(ray, files["inputs"]), row_pool=receive(ray, files["rows"]) or "")
    if trace := receive(ray, files["trace"]):
        opts = job.scenario_options
        arrivals = opts.arrivals.model_copy(update={"file": Path(trace)})
        job = replace(job, scenario_options=opts.model_copy(update={"arrivals": arrivals}))
    if source == "head":  # a replica that scores no quality (reference None) needs no reference data
        job = job.with_artifacts(path=receive(ray, files["artifact"]),
                                 reference=job.artifacts.reference and receive(ray, files["reference"]))
    return build_here(job) if source == "node" else job, {"artifact_source": source, "artifact_source_reason": why}


def result(record: dict, environment: dict, run: RunDir | None = None) -> dict:
    """What the head gets back: the record, this node's env, and the raw latencies and logs the job wrote."""
    def written(folder: str, pattern: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (run.path / folder).glob(pattern)} if run else {}

    return {"record": record, "env": environment, "raw": written("raw", "*.npy"), "logs": written("logs", "*.log")}


def run_on_node(job: Job, files: dict[str, list[Shipped]], head_versions: dict) -> dict:
    """Ray task body: resolve the profile on this node, run the job in a fresh process, return what it wrote."""
    import ray

    environment = node_env()
    profile = Profile(**job.profile_detail)
    job = replace(job, node=ray.get_runtime_context().get_node_id(), env_id=environment["env_id"],
                  affinity=profile.pinned(),  # this node's cores, not the head's
                  threads=job.threads or profile.thread_count())  # None from the head: the profile sets no count
    ok, why = load_class(job.backend_entry).available_on(job.device)
    if not ok:
        return result(job.outcome("skipped", f"{job.backend} is not available on node {job.node}: {why}"), environment)
    with tempfile.TemporaryDirectory(prefix="recbench-fleet-") as tmp:
        run = RunDir.create(Path(tmp), job.run_id)
        try:
            job, source = place_files(ray, replace(job, run_dir=str(run.path)), files, head_versions)
        except Exception as e:  # noqa: BLE001 - a node that cannot get the files fails this job only
            return result(job.outcome("failed", f"preparing the job on node {job.node}: {type(e).__name__}: {e}"),
                          environment)
        with main_not_reimported():
            record = {**launch(job), **source}
        return result(record, environment, run)
