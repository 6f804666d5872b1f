"""The typed record: validated on write and on read; a run written by the previous schema still reads."""

import json

import pytest

from bench.config.sweep import TimingConfig
from bench.errors import UserError
from bench.measure.jobspec import Job
from bench.records.jobkey import JobKey
from bench.records.rundir import RunDir
from bench.records.schema import SCHEMA_VERSION, Record

# a line as recbench wrote it before the typed record (schema 1): harness options mixed into backend_options
V1 = {"schema_version": 1, "run_id": "r", "job_id": "000-dlrm-fp32-onnxruntime-single-stream-b1", "status": "ok",
      "reason": None, "model": "dlrm", "preset": "tiny", "variant": "fp32", "backend": "onnxruntime", "device": "cpu",
      "profile": "default", "scenario": "single-stream", "batch_size": 1, "threads": 2,
      "backend_options": {"inject_delay_ms": 3, "allow_spinning": False},
      "latency_ms": {"mean": 1.1, "p50": 1.0, "p99": None}, "throughput_sps": 900.5, "peak_rss_bytes": 123456789,
      "quality": None, "curve": [{"target_qps": 10}], "some_later_field": {"kept": True}}


def job() -> Job:
    return Job(job_id="0", run_id="r", run_dir="d", model="dlrm", preset="tiny", variant="fp32", backend="onnxruntime",
               backend_entry="", device="cpu", profile="default", scenario="single-stream", batch_size=1, threads=1,
               timing=TimingConfig(), timeout_s=1, backend_options={"inject_delay_ms": 2, "streams": 2})


def test_an_old_run_reads_migrated_with_every_number_unchanged(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.records_path.write_text(json.dumps(V1) + "\n")
    (rec,) = run.records()
    assert rec["schema_version"] == SCHEMA_VERSION == 2 and rec["harness_options"] == {"inject_delay_ms": 3}
    for field in ("latency_ms", "throughput_sps", "peak_rss_bytes", "backend_options", "curve", "some_later_field"):
        assert rec[field] == V1[field]
    assert "gpu_mem_bytes" not in rec  # absent fields stay absent (readers tell "not measured" from null)
    assert isinstance(rec["peak_rss_bytes"], int)


def test_bad_or_newer_records_are_one_line_errors(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.records_path.write_text(json.dumps({**V1, "status": "done"}) + "\n")
    with pytest.raises(UserError, match="not a valid record: status: Input should be 'ok', 'skipped' or 'failed'"):
        run.records()
    run.records_path.write_text(json.dumps({**V1, "schema_version": 9}) + "\n")
    with pytest.raises(UserError, match="schema 9, newer than this recbench understands"):
        run.records()


def test_the_worker_s_record_is_typed_and_sources_never_collide():
    rec = job().outcome("ok", None, None, **{**{"gpu_mem_bytes": None, "latency_ms": {"p50": 1.0}},
                                             **{"gpu_mem_bytes": 1024}})
    assert rec["gpu_mem_bytes"] == 1024 and rec["harness_options"] == {"inject_delay_ms": 2}
    assert Record(**rec).key == JobKey.of(vars(job()))
    with pytest.raises(ValueError, match="invalid record: latency_ms.p50: expected a number, got 'fast'"):
        job().outcome("ok", latency_ms={"p50": "fast"})
