"""Typed contracts between the stages: a frozen Job and its JSON spec, InputPool files, and a sweep's jobs re-run alone
from the spec the worker wrote."""

import json
import subprocess
import sys
from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest

from bench.config.scenario_options import ScenarioOptions
from bench.config.sweep import SweepConfig, TimingConfig
from bench.errors import UserError
from bench.measure.inputs import InputPool
from bench.measure.jobspec import Artifacts, Job
from bench.run.sweep import Sweep
from tests.conftest import ROOT

QUICK = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=10, min_duration_s=0.05, quality_samples=4096,
                     resolve=None)


def job(**changes) -> Job:
    return replace(Job(job_id="0", run_id="r", run_dir="d", model="dlrm", preset="tiny", variant="fp32",
                       backend="onnxruntime", backend_entry="", device="cpu", profile="default", scenario="server",
                       batch_size=4, threads=None, timing=QUICK, timeout_s=60), **changes)


def test_a_planned_job_cannot_be_patched():
    j = job(artifacts=Artifacts("model.onnx", "onnx"))
    with pytest.raises(FrozenInstanceError):
        j.threads = 2
    with pytest.raises(FrozenInstanceError):
        j.artifacts.path = "other.onnx"
    moved = j.with_artifacts(path="local.onnx")
    assert moved.artifacts == Artifacts("local.onnx", "onnx") and j.artifacts.path == "model.onnx"


def test_a_job_round_trips_through_its_json_spec(tmp_path):
    trace = tmp_path / "gaps.txt"
    trace.write_text("100\n250\n")
    opts = ScenarioOptions(arrivals={"file": str(trace)}, candidates={"distribution": "fixed", "n": 8}, workers=2)
    j = job(inputs=("dense", "sparse"), affinity=[0, 1], scenario_options=opts, backend_options={"streams": 2},
            artifacts=Artifacts("m.onnx", "onnx", 10, 2.5, "ref.npz", {"table_bytes": 7}, "b4.npz", "rows16.npz",
                                "candidates"))
    j.save(tmp_path / "job.json")
    back = Job.load(tmp_path / "job.json")
    assert back == j and back.inputs == ("dense", "sparse") and back.scenario_options.arrivals.file == trace
    flat = {**json.loads((tmp_path / "job.json").read_text()), "artifact": "m.onnx"}  # an older recbench's spec
    (tmp_path / "old.json").write_text(json.dumps(flat))
    with pytest.raises(UserError, match="old.json: not a job spec this recbench reads"):
        Job.load(tmp_path / "old.json")


def test_an_input_pool_round_trips_in_order(tmp_path):
    batches = [{"dense": np.full((2, 3), i, np.float32), "sparse": np.arange(4) + i} for i in range(12)]
    path = InputPool.path(tmp_path, 2)
    path.parent.mkdir()
    InputPool(batches).save(path)
    back = InputPool.load(path).batches
    assert len(back) == 12 and all(b.keys() == a.keys() for a, b in zip(batches, back, strict=True))
    assert all((a[k] == b[k]).all() for a, b in zip(batches, back, strict=True) for k in a)  # batch 10 after 9
    assert InputPool.path(tmp_path, 16, row_pool=True) != InputPool.path(tmp_path, 16)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server sweep whose requests draw 8 candidates: each job cuts them from a row pool of 16 rows."""
    cfg = SweepConfig(preset="tiny", backends=["onnxruntime"], batch_sizes=[8, 16], scenario="server", timing=QUICK,
                      out=tmp_path_factory.mktemp("runs"),
                      scenario_options={"qps": 200, "candidates": {"distribution": "fixed", "n": 8}})
    return Sweep(cfg, log=lambda s: None).run()


def test_a_row_pool_has_its_own_file_beside_a_batch_pool_of_its_size(served):
    """The row pool of the b8 job (16 rows) once took the b16 job's pool file: that job found 1 batch of its 8."""
    recs = served.records()
    assert [r["status"] for r in recs] == ["ok", "ok"], [r["reason"] for r in recs]
    assert all(r["rows_per_request"]["mean"] == 8 for r in recs)
    assert len(InputPool.load(InputPool.path(served.path, 16)).batches) == QUICK.pool_size
    assert len(InputPool.load(InputPool.path(served.path, 16, row_pool=True)).batches) == 1


def test_the_worker_re_runs_a_job_from_its_spec(served):
    rec = served.records()[0]
    spec = served.path / "logs" / f"{rec['job_id']}.job.json"
    assert Job.load(spec).artifacts.row_pool.endswith("rows16.npz")
    res = subprocess.run([sys.executable, "-m", "bench.measure.worker", str(spec)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    again = json.loads(res.stdout.splitlines()[-1])
    assert again["status"] == "ok" and again["job_id"] == rec["job_id"], res.stderr[-2000:]
    assert again["rows_per_request"]["mean"] == 8 and again["scenario_options"] == rec["scenario_options"]
