"""One job = one (model, variant, backend, device, profile, scenario, batch) measurement."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bench.config.harness_options import harness_part
from bench.config.sweep import TimingConfig
from bench.records.jobkey import JobKey
from bench.records.rundir import now_iso, replica_id
from bench.records.schema import SCHEMA_VERSION, build


@dataclass
class Job:
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
    inputs_path: str = ""  # npz holding the pool of distinct benchmark batches
    rows_path: str = ""  # npz of one long batch that variable-size server calls are cut from (else "")
    item_input: str = ""  # the input whose axis 1 holds a request's candidates (hstu, din): a row is a candidate
    artifact: str = ""
    artifact_format: str = ""
    params: int | None = None
    flops_per_sample: float | None = None
    reference: str | None = None  # eval data for quality, None where quality is not measured
    quality_entry: str = "models.quality:evaluate_ranking"  # "module:function" scoring the reference set
    affinity: list[int] | None = None
    memory_cap_bytes: int | None = None
    env_id: str = ""
    backend_options: dict = field(default_factory=dict)
    scenario_options: dict = field(default_factory=dict)
    profile_detail: dict = field(default_factory=dict)  # the whole profile, stored in every record
    variant_notes: dict = field(default_factory=dict)  # what the variant did: table bytes, sparsity, steps
    target: str | None = None  # fleet runs: the target's name and the Ray node id the job ran on
    node: str | None = None
    op_profile: bool = False  # after the timed phase, a profiled pass writes ops/<job>.json
    machine_peaks: dict | None = None  # `recbench machine`'s cached peaks, for the roofline fields
    shapes: str = "dynamic"  # static: the backend compiles for batch_size (BackendOptions.shapes)
    replica: int = 0  # replica k of `repeat` processes measuring this job (bench.run.replicas.replica_job)
    repeat: int = 1

    @property
    def replica_id(self) -> str:
        """The name of this replica's raw/ and logs/ files."""
        return replica_id(self.job_id, self.replica, self.repeat)

    @property
    def key(self) -> JobKey:
        return JobKey.of(asdict(self))

    def base_record(self) -> dict:
        """The identity fields every record carries, whatever its status."""
        return {
            "schema_version": SCHEMA_VERSION, "run_id": self.run_id, "job_id": self.job_id,
            "replica": self.replica, "repeat": self.repeat,
            "model": self.model, "preset": self.preset, "variant": self.variant, "backend": self.backend,
            "device": self.device, "profile": self.profile, "scenario": self.scenario,
            "batch_size": self.batch_size, "shapes": self.shapes, "threads": self.threads, "affinity": self.affinity,
            "env_id": self.env_id, "params": self.params, "flops_per_sample": self.flops_per_sample,
            "artifact": self.artifact or None, "artifact_format": self.artifact_format or None,
            "backend_options": self.backend_options, "harness_options": harness_part(self.backend_options),
            "timing": self.timing.model_dump(),
            "profile_detail": self.profile_detail,
            "variant_notes": self.variant_notes,
            **({"target": self.target, "node": self.node} if self.target else {}),
        }

    def outcome(self, status: str, reason: str | None = None, started_at: str | None = None, **fields) -> dict:
        """The job's record (bench.records.schema.Record, validated): identity, status, then the measured fields."""
        rec = self.base_record()
        rec.update(status=status, reason=reason, started_at=started_at or now_iso(), finished_at=now_iso())
        rec.update(fields)
        return build(rec)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["timing"] = self.timing.model_dump()
        return d


def job_id(index: int, model: str, variant: str, backend: str, scenario: str, batch: int,
           target: str | None = None, shapes: str | None = None) -> str:
    """shapes: named when a run measures a job both ways."""
    where = (f"-{shapes}" if shapes else "") + (f"-{target}" if target else "")
    return f"{index:03d}-{model}-{variant}-{backend}-{scenario}-b{batch}{where}".replace("+", "_").replace("/", "_")
