"""The typed record: validated at append and on read, one line per replica, a job's pooled view derived when read;
a run written by an earlier schema still reads."""

import dataclasses
import json

import numpy as np
import pytest

from bench.config.sweep import TimingConfig
from bench.errors import UserError
from bench.measure.jobspec import Artifacts, Job
from bench.records.jobkey import JobKey
from bench.records.rundir import RunDir, replica_raws
from bench.records.schema import SCHEMA_VERSION, Record
from bench.stats.latency import summarize
from tests.runs import latencies

# a line as recbench wrote it before the typed record (schema 1): harness options mixed into backend_options
V1 = {"schema_version": 1, "run_id": "r", "job_id": "000-dlrm-fp32-onnxruntime-single-stream-b1", "status": "ok",
      "reason": None, "model": "dlrm", "preset": "tiny", "variant": "fp32", "backend": "onnxruntime", "device": "cpu",
      "profile": "default", "scenario": "single-stream", "batch_size": 1, "threads": 2,
      "backend_options": {"inject_delay_ms": 3, "allow_spinning": False},
      "latency_ms": {"mean": 1.1, "p50": 1.0, "p99": None}, "throughput_sps": 900.5, "peak_rss_bytes": 123456789,
      "quality": None, "curve": [{"target_qps": 10}], "some_later_field": {"kept": True}}


def job(**fields) -> Job:
    return Job(**{"job_id": "000-j", "run_id": "r", "run_dir": "d", "model": "dlrm", "preset": "tiny",
                  "variant": "fp32", "backend": "onnxruntime", "backend_entry": "", "device": "cpu",
                  "profile": "default", "scenario": "single-stream", "batch_size": 1, "threads": 1,
                  "timing": TimingConfig(), "timeout_s": 1, "backend_options": {"inject_delay_ms": 2, "streams": 2},
                  "artifacts": Artifacts(flops_per_sample=1e6), **fields})


def measured(run: RunDir, j: Job, ms: np.ndarray, **fields) -> None:
    """Append one ok replica line as the worker makes it, with its raw file."""
    ns = (ms * 1e6).astype(np.int64)
    run.save_raw(j.replica_id, ns)
    summary = summarize(ns, 1, float(ns.sum()) / 1e9)
    run.append(j.outcome("ok", None, None, **summary, achieved_gflops=1e6 * summary["throughput_sps"] / 1e9,
                         energy_j=2.0, avg_watts=2.0 / summary["duration_s"], **fields))


def test_an_old_run_reads_migrated_with_every_number_unchanged(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.records_path.write_text(json.dumps(V1) + "\n")
    (rec,) = run.records()
    assert rec["schema_version"] == SCHEMA_VERSION == 3 and rec["harness_options"] == {"inject_delay_ms": 3}
    for field in ("latency_ms", "throughput_sps", "peak_rss_bytes", "backend_options", "curve"):
        assert rec[field] == V1[field]
    assert "some_later_field" not in rec  # untyped before v3, read by nothing: dropped
    assert "gpu_mem_bytes" not in rec  # absent fields stay absent (readers tell "not measured" from null)
    assert isinstance(rec["peak_rss_bytes"], int)


def test_a_schema_2_pooled_line_reads_as_written(tmp_path):
    """Before v3 a job's replicas were pooled into one line (and the pooled raw file) when its last one ended."""
    run = RunDir.create(tmp_path, "r")
    groups = [latencies(1.0, n=300, seed=k) for k in range(3)]
    for k, ms in enumerate(groups):
        run.save_raw(f"{V1['job_id']}.r{k}", (ms * 1e6).astype(np.int64))
    replicas = [{"replica": k, "status": "ok", "reason": None, "latency_ms": {"p50": 1.0}, "noise": {"busy": False}}
                for k in range(3)]
    pooled = {**V1, "schema_version": 2, "harness_options": {}, "repeat": 3, "replicas": replicas,
              "replica_cv": {"p50": 0.01, "throughput_sps": None}, "interleaved": True}
    run.records_path.write_text(json.dumps(pooled) + "\n")
    (rec,) = run.records()
    assert rec["repeat"] == 3 and rec["replicas"][2]["replica"] == 2 and "interleaved" not in rec
    assert [len(g) for g in replica_raws(run, rec)] == [300, 300, 300] and len(run.latencies(rec)) == 900


def test_bad_or_newer_records_are_one_line_errors(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.records_path.write_text(json.dumps({**V1, "status": "done"}) + "\n")
    with pytest.raises(UserError, match="not a valid record: status: Input should be 'ok', 'skipped' or 'failed'"):
        run.records()
    run.records_path.write_text(json.dumps({**V1, "schema_version": 9}) + "\n")
    with pytest.raises(UserError, match="schema 9, newer than this recbench understands"):
        run.records()
    run.records_path.write_text(json.dumps({**V1, "schema_version": SCHEMA_VERSION}) + "\n")
    with pytest.raises(UserError, match="not a valid record: unknown key 'some_later_field'"):
        run.records()


def test_an_unknown_field_fails_at_append_and_nothing_is_written(tmp_path):
    run = RunDir.create(tmp_path, "r")
    with pytest.raises(ValueError, match="invalid record: unknown key 'p50_latency'"):
        run.append(job().outcome("ok") | {"p50_latency": 1.0})
    with pytest.raises(ValueError, match=r"invalid record: noise: unknown key 'bussy' \(did you mean 'busy'\?\)"):
        run.append({"status": "ok", "noise": {"bussy": True}})
    assert run.records_path.read_text() == ""


def test_the_worker_s_record_is_typed_and_sources_never_collide():
    rec = job().outcome("ok", None, None, **{**{"gpu_mem_bytes": None, "latency_ms": {"p50": 1.0}},
                                             **{"gpu_mem_bytes": 1024}})
    assert rec["gpu_mem_bytes"] == 1024 and rec["harness_options"] == {"inject_delay_ms": 2}
    assert JobKey.of(Record(**rec).model_dump()) == JobKey.of(vars(job()))
    with pytest.raises(ValueError, match="invalid record: latency_ms.p50: expected a number, got 'fast'"):
        job().outcome("ok", latency_ms={"p50": "fast"})
    line = dataclasses.replace(job(), replica=2, repeat=3).outcome("failed", "boom")
    assert (line["job_id"], line["replica"], line["repeat"]) == ("000-j", 2, 3)  # the job's id, not the replica's


def test_a_job_s_record_is_pooled_from_its_replicas_lines_when_read(tmp_path):
    run = RunDir.create(tmp_path, "r")
    groups = [latencies(m, n=700, seed=k) for k, m in enumerate((1.0, 1.1, 0.9))]
    for k, ms in enumerate(groups):
        measured(run, dataclasses.replace(job(), replica=k, repeat=3), ms)
    assert sorted(p.name for p in (run.path / "raw").iterdir()) == ["000-j.r0.npy", "000-j.r1.npy", "000-j.r2.npy"]
    (rec,) = run.records()
    lines = run.lines()
    assert len(lines) == 3 and "replica" not in rec and rec["repeat"] == 3
    assert [s["replica"] for s in rec["replicas"]] == [0, 1, 2] and rec["iterations"] == 2100
    wall = sum(r["duration_s"] for r in lines)
    assert rec["throughput_sps"] == pytest.approx(2100 / wall) and rec["duration_s"] == pytest.approx(wall)
    assert rec["achieved_gflops"] == pytest.approx(1e6 * rec["throughput_sps"] / 1e9)  # at the pooled throughput
    assert rec["energy_j"] == pytest.approx(6.0) and rec["avg_watts"] == pytest.approx(6.0 / wall)
    assert rec["latency_ms"]["p50"] == pytest.approx(np.median(np.concatenate(groups)), rel=1e-6)
    lo, hi = rec["latency_ci_ms"]["p50"]
    assert lo < rec["latency_ms"]["p50"] < hi and set(rec["replica_cv"]) == {"p50", "throughput_sps"}
    assert len(run.latencies(rec)) == 2100 and [len(g) for g in replica_raws(run, rec)] == [700] * 3


def test_a_job_with_fewer_replicas_than_planned_is_pooled_from_those_and_says_so(tmp_path):
    run = RunDir.create(tmp_path, "r")
    for k in range(2):  # Ctrl-C before the third round
        measured(run, dataclasses.replace(job(), replica=k, repeat=3), latencies(1.0, n=400, seed=k))
    failed = dataclasses.replace(job(job_id="001-j"), repeat=3)
    run.append(failed.outcome("failed", "worker killed by SIGKILL"))
    rec, lost = run.records()
    assert rec["iterations"] == 800 and any("2 of 3 replicas recorded" in w for w in rec["warnings"])
    assert lost["status"] == "failed" and lost["reason"] == "worker killed by SIGKILL" and len(lost["replicas"]) == 1


def test_quality_scored_once_is_shared_by_the_jobs_of_its_variant_and_backend(tmp_path):
    run = RunDir.create(tmp_path, "r")
    measured(run, job(), latencies(1.0, n=100), quality={"auc": 0.7})
    measured(run, job(job_id="001-j", batch_size=8), latencies(2.0, n=100), quality=None)
    measured(run, job(job_id="002-j", backend="torch-cpu"), latencies(2.0, n=100), quality=None)
    b1, b8, other = run.records()
    assert b8["quality"] == b1["quality"] and b8["quality_from"] == "000-j" and "quality_from" not in b1
    assert other["quality"] is None  # another backend: its own quality, not measured here
