"""Sweeps end to end on the tiny DLRM: real backends, process isolation, append-only records."""

import json

import pytest

from backends import registry
from bench.config.sweep import SweepConfig, TimingConfig
from bench.records.rundir import RunDir
from bench.run.sweep import Sweep

QUICK = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=10, min_duration_s=0.05, quality_samples=4096,
                     resolve=None)  # harness logic, not percentiles: no extension to 662 iterations


@pytest.fixture(scope="module")
def fakes_registered():
    for name in ("crashing", "hanging"):
        registry.register(name, f"tests.fakes:{name.capitalize()}Backend")
    yield
    for name in ("crashing", "hanging"):
        registry.BACKENDS.pop(name)


def test_crash_and_hang_fail_their_own_jobs_only(tmp_path, fakes_registered):
    cfg = SweepConfig(preset="tiny", backends=["crashing", "onnxruntime", "hanging", "torch-cpu"],
                      batch_sizes=[8], timing=QUICK, timeout_s=20, out=tmp_path)
    run = Sweep(cfg, log=lambda s: None).run()
    recs = {r["backend"]: r for r in run.records()}
    assert recs["crashing"]["status"] == "failed" and "SIGABRT" in recs["crashing"]["reason"]
    assert recs["hanging"]["status"] == "failed" and "timed out" in recs["hanging"]["reason"]
    for ok in ("onnxruntime", "torch-cpu"):
        assert recs[ok]["status"] == "ok", recs[ok]["reason"]
    # every record was on disk as its own line, in job order
    lines = run.records_path.read_text().splitlines()
    assert [json.loads(ln)["backend"] for ln in lines] == ["crashing", "onnxruntime", "hanging", "torch-cpu"]


def test_records_carry_the_design_fields(tmp_path):
    cfg = SweepConfig(preset="tiny", backends=["onnxruntime"], batch_sizes=[1, 16], timing=QUICK, out=tmp_path)
    run = Sweep(cfg, log=lambda s: None).run()
    recs = run.records()
    assert [r["batch_size"] for r in recs] == [1, 16]
    for r in recs:
        assert r["status"] == "ok"
        for key in ("run_id", "job_id", "model", "variant", "backend", "device", "profile", "scenario", "threads",
                    "throughput_sps", "samples", "iterations", "duration_s", "cv", "load_s", "first_infer_ms",
                    "peak_rss_bytes", "model_bytes", "params", "artifact", "artifact_sha256", "quality",
                    "flops_per_sample", "achieved_gflops", "stable", "warnings", "schema_version", "env_id",
                    "started_at", "finished_at"):
            assert key in r, key
        assert set(r["latency_ms"]) >= {"mean", "std", "min", "max", "p50", "p90", "p95", "p99", "p999"}
        assert r["latency_ms"]["p50"] <= (r["latency_ms"]["p99"] or r["latency_ms"]["max"]) <= r["latency_ms"]["max"]
        assert r["peak_rss_bytes"] > r["model_bytes"] > 0
        assert 0.5 < r["quality"]["auc"] < 1 and abs(r["quality"]["auc_delta"]) < 1e-4
        raw = run.raw(r["job_id"])
        assert raw is not None and len(raw) == r["iterations"]
    assert (run.path / "env.json").exists() and RunDir(run.path).env()["env_id"] == recs[0]["env_id"]


def test_torn_last_line_is_ignored(tmp_path):
    run = RunDir.create(tmp_path, "r")
    run.append({"status": "ok", "schema_version": 1})
    with open(run.records_path, "a") as f:
        f.write('{"status": "o')  # a write interrupted by a crash
    assert len(run.records()) == 1
