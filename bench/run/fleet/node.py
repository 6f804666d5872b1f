"""What runs on a fleet node: one Ray task per job, which runs the job in its own process like a local sweep; and the
files a job needs there, put once into Ray's object store on the head and written once per node."""

from __future__ import annotations

import functools
import hashlib
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from backends.registry import load_class
from bench.config.profiles import Profile
from bench.measure import env, machine
from bench.measure.jobspec import Job
from bench.records.rundir import RunDir
from bench.run.launcher import launch
from models.fileio import cache_root, save_atomic

# Artifact formats whose files only the library that wrote them reads reliably (a pickled torch module, an
# OpenVINO IR): a node with another version of that library builds the variant itself. ONNX is versioned by
# its opset, which every runtime checks, and engines are built on the node by their backend anyway.
FORMAT_LIBRARY = {"torch": "torch", "openvino": "openvino"}


@dataclass(frozen=True)
class Shipped:
    name: str
    sha256: str
    ref: object  # a Ray ObjectRef holding the file's bytes


class Shipper:
    """Head side: each file goes into the object store once, however many jobs use it."""

    def __init__(self, ray):
        self.ray = ray
        self.sent: dict[Path, Shipped] = {}

    def put(self, *paths: str | Path | None) -> list[Shipped]:
        """The files named (None and "" name none)."""
        keys = [Path(p).absolute() for p in paths if p]
        for key in keys:
            if key not in self.sent:
                data = key.read_bytes()
                self.sent[key] = Shipped(key.name, hashlib.sha256(data).hexdigest(), self.ray.put(data))
        return [self.sent[key] for key in keys]


def receive(ray, files: list[Shipped]) -> str | None:
    """Node side: write the files into this node's cache (once per content) and return the first one's path."""
    if not files:
        return None
    folder = cache_root() / "fleet" / files[0].sha256
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not (folder / f.name).exists():
            save_atomic(folder / f.name, lambda tmp, f=f: tmp.write_bytes(ray.get(f.ref)))
    return str(folder / files[0].name)


def where_to_build(fmt: str, builtin: bool, head: dict, node: dict) -> tuple[str, str | None]:
    """("head", None) to use the head's file, or ("node", why) when the node must build the artifact itself."""
    lib = FORMAT_LIBRARY.get(fmt)
    if lib is None or head.get(lib) == node.get(lib):
        return "head", None
    why = f"{lib} {node.get(lib)} on the node, {head.get(lib)} on the head"
    if not builtin:
        return "head", f"{why}; a bring-your-own model is only built on the head"
    return "node", why


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
    """The job pointed at local copies of its artifact, input and row pools, reference data, arrival trace and
    candidate counts; and where the artifact came from."""
    from models.registry import FAMILIES

    source, why = where_to_build(job.artifacts.format, job.model in FAMILIES, head_versions, node_env()["versions"])
    job = job.with_artifacts(input_pool=receive(ray, files["inputs"]), row_pool=receive(ray, files["rows"]) or "")
    opts = job.scenario_options
    moved = {name: getattr(opts, name).model_copy(update={"file": Path(path)})
             for name in ("arrivals", "candidates") if (path := receive(ray, files[name]))}
    job = replace(job, scenario_options=opts.model_copy(update=moved))
    if source == "head":  # a replica that scores no quality (reference None) needs no reference data
        job = job.with_artifacts(path=receive(ray, files["artifact"]),
                                 reference=job.artifacts.reference and receive(ray, files["reference"]))
    return build_here(job) if source == "node" else job, {"artifact_source": source, "artifact_source_reason": why}


def result(record: dict, environment: dict, run: RunDir | None = None) -> dict:
    """What the head gets back: the record, this node's env, and every file the job wrote in its run folder (raw
    samples and per-request times, logs, op profiles), by folder."""
    def written(folder: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (run.path / folder).glob("*") if p.is_file()} if run else {}

    return {"record": record, "env": environment, **{folder: written(folder) for folder in WRITTEN}}


WRITTEN = ("raw", "logs", "ops")  # the run folder's subfolders a job writes into


def run_on_node(job: Job, files: dict[str, list[Shipped]], head_versions: dict) -> dict:
    """Ray task body: resolve the profile on this node, run the job in a fresh process, return what it wrote."""
    import ray

    environment = {**node_env(), "machine": machine.cached(node_env())}  # this node's peaks feed the roofline
    profile = Profile(**job.profile_detail)
    job = replace(job, node=ray.get_runtime_context().get_node_id(), env_id=environment["env_id"],
                  machine_peaks=environment["machine"],
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
            record = {**launch(job)[0], **source}
        return result(record, environment, run)
