"""One job = one (model, variant, backend, device, profile, scenario, batch) measurement: frozen once planned (a later
change, e.g. a node's own cores, is a `dataclasses.replace`), written as JSON beside its log (logs/<job>.job.json)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ConfigDict, TypeAdapter, ValidationError

from bench.config.harness_options import harness_part
from bench.config.scenario_options import ScenarioOptions
from bench.config.sweep import TimingConfig
from bench.errors import UserError
from bench.records.rundir import now_iso, replica_id
from bench.records.schema import SCHEMA_VERSION, build

# the job's own fields every record carries first
RECORDED = ("run_id", "job_id", "replica", "repeat", "model", "preset", "variant", "backend", "device", "profile",
            "scenario", "batch_size", "shapes", "threads", "affinity", "env_id")


@dataclass(frozen=True)
class Artifacts:
    """What planning built for a job: the model file and what is known of it, its quality set, its input pools."""

    path: str = ""  # the model file the backend loads
    format: str = ""
    params: int | None = None
    flops_per_sample: float | None = None
    reference: str | None = None  # eval data for quality, None where quality is not measured
    variant_notes: dict = field(default_factory=dict)  # what the variant did: table bytes, sparsity, steps
    input_pool: str = ""  # InputPool file of the distinct benchmark batches
    row_pool: str = ""  # InputPool file of one long batch that variable-size server calls are cut from (else "")
    item_input: str = ""  # the input whose axis 1 holds a request's candidates (hstu, din): a row is a candidate


@dataclass(frozen=True)
class Job:
    """What one job measures and how (planned by the sweep), and the artifacts it runs."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # a spec of another shape is refused, not half read

    job_id: str
    run_id: str
    run_dir: str
    model: str
    preset: str
    variant: str
    backend: str
    backend_entry: str  # "module:Class", resolved by the worker
    device: str
    profile: str
    scenario: str
    batch_size: int
    threads: int | None  # None: a fleet node counts its own cores
    timing: TimingConfig
    timeout_s: float
    inputs: tuple[str, ...] = ()
    quality_entry: str = "models.quality:evaluate_ranking"  # "module:function" scoring the reference set
    affinity: list[int] | None = None
    memory_cap_bytes: int | None = None
    env_id: str = ""
    backend_options: dict = field(default_factory=dict)
    scenario_options: ScenarioOptions = field(default_factory=ScenarioOptions)
    profile_detail: dict = field(default_factory=dict)  # the whole profile, stored in every record
    target: str | None = None  # fleet runs: the target's name and the Ray node id the job ran on
    node: str | None = None
    op_profile: bool = False  # after the timed phase, a profiled pass writes ops/<job>.json
    machine_peaks: dict | None = None  # `recbench machine`'s cached peaks, for the roofline fields
    shapes: str = "dynamic"  # static: the backend compiles for batch_size (BackendOptions.shapes)
    artifacts: Artifacts = Artifacts()
    replica: int = 0  # replica k of `repeat` processes measuring this job (Job.replica)
    repeat: int = 1
    shared_quality: tuple[str, dict] | None = None  # (job id, quality) scored for this variant x backend already

    @property
    def replica_id(self) -> str:
        """The name of this replica's raw/ and logs/ files."""
        return replica_id(self.job_id, self.replica, self.repeat)

    def replica_of(self, k: int, repeat: int, score_quality: bool, shared: tuple[str, dict] | None = None) -> Job:
        """Replica k of `repeat` of this job: the job's id, its own raw/log names (replica_id); the measured window is
        split across replicas (as pyperf splits values across worker processes), never below `replica_min_s` (1 s)
        or the window asked for if shorter. Quality is scored, or `shared` (job id, quality) is what its line
        carries."""
        t = self.timing
        window = max(t.min_duration_s / repeat, min(t.replica_min_s, t.min_duration_s))
        replica = replace(self, replica=k, repeat=repeat, timing=t.model_copy(update={"min_duration_s": window}),
                          shared_quality=None if score_quality else shared)
        return replica if score_quality else replica.with_artifacts(reference=None)

    def with_artifacts(self, **changes) -> Job:
        """This job with some of its artifacts replaced (a node's local copies; a replica that scores no quality)."""
        return replace(self, artifacts=replace(self.artifacts, **changes))

    def outcome(self, status: str, reason: str | None = None, started_at: str | None = None, **fields) -> dict:
        """The job's record (bench.records.schema.Record, validated): identity, status, then the measured fields."""
        a = self.artifacts
        return build({
            "schema_version": SCHEMA_VERSION, **{k: getattr(self, k) for k in RECORDED}, "params": a.params,
            "flops_per_sample": a.flops_per_sample, "artifact": a.path or None, "artifact_format": a.format or None,
            "backend_options": self.backend_options, "harness_options": harness_part(self.backend_options),
            "timing": self.timing.model_dump(), "profile_detail": self.profile_detail, "variant_notes": a.variant_notes,
            **({"target": self.target, "node": self.node} if self.target else {}), "status": status,
            "reason": reason, "started_at": started_at or now_iso(), "finished_at": now_iso(), **fields})

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(_JSON.dump_json(self))

    @classmethod
    def load(cls, path: str | Path) -> Job:
        """The job `save` wrote to `path`; a file of another shape (an older recbench's) is bad input."""
        try:
            return _JSON.validate_json(Path(path).read_bytes())
        except ValidationError as e:
            raise UserError(f"{path}: not a job spec this recbench reads ({e.error_count()} fields differ)") from None


_JSON = TypeAdapter(Job)


def job_id(index: int, model: str, variant: str, backend: str, scenario: str, batch: int,
           target: str | None = None, shapes: str | None = None) -> str:
    """shapes: named when a run measures a job both ways."""
    where = (f"-{shapes}" if shapes else "") + (f"-{target}" if target else "")
    return f"{index:03d}-{model}-{variant}-{backend}-{scenario}-b{batch}{where}".replace("+", "_").replace("/", "_")
