"""The typed record: what every line of records.jsonl holds, validated when the worker writes it and when a
reader loads it; older schema versions are migrated on read."""

from __future__ import annotations

import numbers
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError

from bench.config.harness_options import harness_part
from bench.config.validation import describe
from bench.errors import UserError
from bench.records.jobkey import JobKey

SCHEMA_VERSION = 2  # 2: validated against Record; `harness_options` split out of backend_options


def _number(value: Any) -> Any:
    """Any real number, kept as given (an int stays an int on disk); bool is not a number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"expected a number, got {value!r}")
    return value


Number = Annotated[Any, PlainValidator(_number)]


class Open(BaseModel):
    """A record part whose known fields are typed; fields added later are kept as they are."""

    model_config = ConfigDict(extra="allow")


class Latency(Open):
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


class Quality(Open):
    """quality: measured through the backend on held-out data, deltas against the fp32 PyTorch model, and fidelity
    to that model's scores on the same inputs (the fields a model family's evaluator in models/quality.py gives)."""

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


class Roofline(Open):
    """roofline: the job's share of each machine peak (compute, memory bandwidth, gather bandwidth)."""

    compute: Number | None = None
    memory: Number | None = None
    gather: Number | None = None


class Record(Open):
    """One job's outcome. Identity (the JobKey fields), status, then measurements; names never change."""

    schema_version: int = SCHEMA_VERSION
    run_id: str | None = None
    job_id: str | None = None
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
    env_id: str | None = None  # points into env.json
    attempt: int | None = None  # fleet runs: 1, or 2 for a retry on another node; the node's env.json-like capture
    node_env: dict[str, Any] | None = None
    # latency and throughput
    latency_ms: Latency | None = None
    throughput_sps: Number | None = None
    iterations: int | None = None
    # memory (bytes)
    peak_rss_bytes: Number | None = None
    gpu_mem_bytes: Number | None = None
    model_bytes: Number | None = None
    quality: Quality | None = None
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
    avg_watts: Number | None = None
    energy_j: Number | None = None
    joules_per_1k_samples: Number | None = None
    achieved_qps: Number | None = None
    max_qps: Number | None = None
    late_requests: Number | None = None
    dropped_requests: Number | None = None
    backend_options: dict[str, Any] = {}
    harness_options: dict[str, Any] = {}

    @property
    def key(self) -> JobKey:
        return JobKey.of(self.model_dump())

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
    """Validate a record the worker is about to write; a bad field fails the job naming it."""
    try:
        return Record(**fields).line()
    except ValidationError as e:
        raise ValueError(f"invalid record: {describe(e, Record)}") from None


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """A record of any earlier schema in the current one (v0/v1: no harness_options; they sat in backend_options)."""
    if raw.get("schema_version", 0) >= 2:
        return raw
    return {**raw, "schema_version": SCHEMA_VERSION, "harness_options": harness_part(raw.get("backend_options") or {})}


def read(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A record read from disk: migrated, validated, returned as the dict readers use."""
    if raw.get("schema_version", 0) > SCHEMA_VERSION:
        raise UserError(f"{where}: records use schema {raw['schema_version']}, newer than this recbench understands "
                        f"({SCHEMA_VERSION}); upgrade recbench")
    try:
        return Record(**migrate(raw)).line()
    except ValidationError as e:
        raise UserError(f"{where}: job {raw.get('job_id', '?')}: not a valid record: {describe(e, Record)}") from None
