"""The typed record: what every line of records.jsonl holds, validated when it is appended and when a reader loads
it; an unknown field is an error. Older schema versions are migrated on read."""

from __future__ import annotations

import numbers
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError

from bench.config.harness_options import harness_part
from bench.config.validation import describe
from bench.errors import UserError

SCHEMA_VERSION = 3  # 2: validated, `harness_options` split out; 3: one line per replica, every field typed


def _number(value: Any) -> Any:
    """Any real number, kept as given (an int stays an int on disk); bool is not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"expected a number, got {value!r}")
    return value


Real = Annotated[Any, PlainValidator(_number)]
Number = Annotated[Real, "metric"]  # a measurement a budget can judge (bench.gate.metrics lists every one)
Stats = dict[str, Real | None]  # a latency summary of a part of the work (mean, p50, ...: milliseconds)
Fields = dict[str, Any]  # settings echoed as given (options, profile, timing, what the runtime reports)


class Part(BaseModel):
    """A typed part of a record: a field it does not declare is an error."""

    model_config = ConfigDict(extra="forbid")


class Latency(Part):
    """latency_ms: milliseconds; a percentile is None when too few samples back it."""

    mean: Number | None = None
    std: Number | None = None
    min: Number | None = None
    max: Number | None = None
    p50: Number | None = None
    p90: Number | None = None
    p95: Number | None = None
    p99: Number | None = None
    p999: Number | None = None


class Quality(BaseModel):
    """quality: measured through the backend on held-out data, deltas against the fp32 PyTorch model, and fidelity
    to that model's scores on the same inputs (the fields a model family's evaluator in models/quality.py gives).
    Multi-task models add each task's metrics as `<task>_<metric>`: numbers, nothing else."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Real | None]

    auc: Number | None = None
    logloss: Number | None = None
    auc_delta: Number | None = None
    logloss_delta: Number | None = None
    max_abs_score_delta: Number | None = None
    mean_abs_score_delta: Number | None = None
    rank_corr: Number | None = None  # fidelity: Spearman, top-k overlap with the baseline's ranking
    top10_overlap: Number | None = None
    top100_overlap: Number | None = None
    hr_at_10: Number | None = None  # next-item models
    ndcg_at_10: Number | None = None
    hr_at_10_delta: Number | None = None
    ndcg_at_10_delta: Number | None = None
    recall_at_k: Number | None = None  # retrieval models
    recall_at_k_truth: Number | None = None
    recall_at_k_truth_delta: Number | None = None
    ne: Number | None = None  # click models (hstu, din, mmoe: the worse task's): normalized entropy, accuracy at 0.5,
    ne_delta: Number | None = None  # each with its delta and ratio to fp32 (MLPerf DLRMv3: each within 99.9%)
    ne_ratio: Number | None = None
    accuracy: Number | None = None
    accuracy_delta: Number | None = None
    accuracy_ratio: Number | None = None
    auc_ratio: Number | None = None
    logloss_ratio: Number | None = None
    fidelity: bool | None = None  # true: fidelity to the baseline is all there is (no labels)
    k: int | None = None
    eval_samples: int | None = None
    eval_pairs: int | None = None


class Roofline(Part):
    """roofline: the job's share of each machine peak (compute, memory bandwidth, gather bandwidth)."""

    compute: Number | None = None
    memory: Number | None = None
    gather: Number | None = None


class Noise(Part):
    """noise: what else the machine did while the job measured (bench/measure/noise.py)."""

    loadavg_before: list[Real] | None = None
    loadavg_after: list[Real] | None = None
    others_cpu_share: Real | None = None
    own_cpu_share: Real | None = None
    steal_share: Real | None = None
    cores_available: int | None = None
    threads_configured: int | None = None
    threads_running: int | None = None
    seconds: Real | None = None
    governor: str | None = None
    cpu_mhz: Real | None = None
    boost: str | None = None
    busy: bool | None = None
    busy_reasons: list[str] | None = None
    busy_replicas: int | None = None  # a job's pooled view: how many of its replicas were busy


class CpuTime(Part):
    """cpu_time: the process's CPU time over the measured phase (all its threads, spinning ones included)."""

    per_inference_ms: Number  # per infer call, beside latency_ms
    core_s_per_million: Number  # core-seconds per million samples: what serving them costs in cores


class LatencyCI(Part):
    p50: list[Real] | None = None
    p99: list[Real] | None = None


class Trials(Part):
    """The measured phase split into consecutive trials: their p50s and throughputs and how far apart they are."""

    count: int
    p50_ms: list[Real]
    throughput_sps: list[Real]
    p50_spread: Real
    throughput_spread: Real


class UserOrder(Part):
    order: str
    users: int
    users_per_request: Real
    requests_per_user: dict[str, Real]
    history_share_mean: Real


class Replica(Part):
    """What a job's pooled view shows of each of its replicas."""

    replica: int
    status: Literal["ok", "skipped", "failed"]
    reason: str | None = None
    started_at: str | None = None
    latency_ms: Latency | None = None
    throughput_sps: Real | None = None
    iterations: int | None = None
    duration_s: Real | None = None
    cv: Real | None = None
    stable: bool | None = None
    noise: Noise | None = None
    cpu_time: CpuTime | None = None


class Record(Part):
    """One replica's outcome as appended (or a job's pooled view as read). Identity (the JobKey fields), status,
    then measurements; names never change."""

    schema_version: int = SCHEMA_VERSION
    run_id: str | None = None
    job_id: str | None = None  # the job's id; its replicas share it
    replica: int | None = None  # k of `repeat`: its raw file is raw/<rundir.replica_id(job_id, k, repeat)>.npy
    repeat: int | None = None  # replicas planned
    status: Literal["ok", "skipped", "failed"]
    reason: str | None = None
    model: str | None = None
    preset: str | None = None
    variant: str | None = None
    backend: str | None = None
    device: str | None = None
    profile: str | None = None
    scenario: str | None = None
    batch_size: int | None = None
    shapes: Literal["static", "dynamic"] | None = None
    threads: int | None = None
    affinity: list[int] | None = None
    env_id: str | None = None  # points into env.json
    started_at: str | None = None
    finished_at: str | None = None
    artifact: str | None = None
    artifact_format: str | None = None
    artifact_sha256: str | None = None
    backend_options: Fields = {}
    harness_options: Fields = {}
    backend_settings: Fields | None = None
    timing: Fields | None = None
    profile_detail: Fields | None = None
    scenario_options: Fields | None = None
    variant_notes: Fields | None = None
    # latency and throughput
    latency_ms: Latency | None = None
    latency_ci_ms: LatencyCI | None = None
    throughput_sps: Number | None = None
    throughput_ci_sps: list[Real] | None = None
    samples: int | None = None
    iterations: int | None = None
    trials: Trials | None = None
    stable: bool | None = None
    warnings: list[str] | None = None
    device_ms: dict[str, Stats] | None = None
    device_share: dict[str, Real] | None = None
    # memory (bytes)
    peak_rss_bytes: Number | None = None
    gpu_mem_bytes: Number | None = None
    model_bytes: Number | None = None
    rss_start_bytes: Real | None = None
    quality: Quality | None = None
    quality_from: str | None = None  # the job whose quality this one shares (same variant, backend and options)
    # every Number (here, in Latency, Quality, Roofline) is a metric a budget can judge (bench.gate.metrics)
    duration_s: Number | None = None
    cv: Number | None = None
    load_s: Number | None = None
    first_infer_ms: Number | None = None
    footprint_bytes: Number | None = None
    load_rss_bytes: Number | None = None
    peak_rss_load_bytes: Number | None = None
    peak_rss_run_bytes: Number | None = None
    peak_rss_quality_bytes: Number | None = None
    gpu_mem_nvml_bytes: Number | None = None
    gpu_mem_reserved_bytes: Number | None = None
    engine_device_memory_bytes: Number | None = None
    engine_bytes: Number | None = None
    params: Number | None = None
    flops_per_sample: Number | None = None
    achieved_gflops: Number | None = None
    bytes_per_sample: Number | None = None
    gather_bytes_per_sample: Number | None = None
    achieved_gbps: Number | None = None
    peak_gflops: Number | None = None
    fraction_of_peak: Number | None = None
    roofline: Roofline | None = None
    peak_used: str | None = None
    bound: str | None = None
    roofline_note: str | None = None
    avg_watts: Number | None = None
    energy_j: Number | None = None
    joules_per_1k_samples: Number | None = None
    power_source: str | None = None
    power_source_reason: str | None = None
    op_profile: Fields | None = None
    noise: Noise | None = None
    cpu_time: CpuTime | None = None
    # load scenarios (server, max-qps, concurrency, offline, server-loadgen)
    achieved_qps: Number | None = None
    max_qps: Number | None = None
    late_requests: Number | None = None
    dropped_requests: Number | None = None
    target_qps: Real | None = None
    capacity_qps: Real | None = None
    qps_source: str | None = None
    requests: int | None = None
    late_threshold_ms: Real | None = None
    p99_budget_ms: Real | None = None
    workers: int | None = None
    concurrency: int | None = None
    streams: int | None = None
    curve: list[Fields] | None = None
    rows_per_request: dict[str, Real] | None = None
    queue_ms: Stats | None = None
    service_ms: Stats | None = None
    dispatch_lateness_ms: Stats | None = None  # how late dispatchers took calls after they were due
    wakeup_ms: Stats | None = None  # runs from before the live batcher: how late planned calls began
    utilization: Real | None = None
    queue_model: str | None = None
    mg1_queue_ms: Real | None = None
    gg1_queue_ms: Real | None = None
    batching: Fields | None = None
    batches: int | None = None
    batch_sizes_formed: dict[str, int] | None = None
    batch_rows_mean: Real | None = None
    batch_delay_ms: Stats | None = None
    batching_sweep: list[Fields] | None = None
    user_order: UserOrder | None = None
    loadgen: Fields | None = None
    # fleet runs
    target: str | None = None
    node: str | None = None
    node_env: Fields | None = None
    attempt: int | None = None
    artifact_source: Literal["head", "node"] | None = None
    artifact_source_reason: str | None = None
    # a job's pooled view (bench.records.pooled), derived from its replicas' lines when read
    replicas: list[Replica] | None = None
    replica_cv: dict[str, Real | None] | None = None

    def line(self) -> dict[str, Any]:
        """The record as written: the fields that were given, in their order (no nulls added for absent ones)."""
        return self.model_dump(exclude_unset=True)


def value_at(record: dict, path: str):
    """The value at a dotted path of a record (`latency_ms.p99`), or None where any part is missing."""
    value = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def build(fields: dict[str, Any]) -> dict[str, Any]:
    """The one way a record is made: validated (an unknown or mistyped field is a ValueError naming it)."""
    try:
        return Record(**fields).line()
    except ValidationError as e:
        raise ValueError(f"invalid record: {describe(e, Record)}") from None


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """A record of an earlier schema in the current one. v0/v1: no harness_options (they sat in backend_options);
    before v3 fields were not all typed: those no reader knows are dropped (`interleaved`, since kept in
    config.json)."""
    version = raw.get("schema_version", 0)
    if version >= SCHEMA_VERSION:
        return raw
    out = {k: v for k, v in raw.items() if k in Record.model_fields}
    if version < 2:
        out["harness_options"] = harness_part(raw.get("backend_options") or {})
    return {**out, "schema_version": SCHEMA_VERSION}


def read(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A record read from disk: migrated, validated, returned as the dict readers use."""
    if raw.get("schema_version", 0) > SCHEMA_VERSION:
        raise UserError(f"{where}: records use schema {raw['schema_version']}, newer than this recbench understands "
                        f"({SCHEMA_VERSION}); upgrade recbench")
    try:
        return Record(**migrate(raw)).line()
    except ValidationError as e:
        raise UserError(f"{where}: job {raw.get('job_id', '?')}: not a valid record: {describe(e, Record)}") from None
