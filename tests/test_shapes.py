"""Jobs are measured with the input shapes they would be deployed with: static for a fixed batch, else dynamic."""

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from backends.base import BackendOptions
from backends.ort import OnnxRuntime
from backends.ov import OpenVINO
from bench.config.scenario_options import ScenarioOptions
from bench.records.history import History
from bench.records.jobkey import JobKey
from bench.records.rundir import RunDir
from bench.run.sweep import Sweep
from tests.conftest import recbench


def dense(path: Path, width: int | str = 4) -> Path:
    """x [batch, width] @ w [4, 1]: the smallest model with a dynamic batch axis (and a dynamic width if named)."""
    w = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(4, 1), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "dense",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def dense_onnx(tmp_path_factory) -> Path:
    return dense(tmp_path_factory.mktemp("onnx") / "dense.onnx")


def openvino(path: Path, shapes: str) -> OpenVINO:
    backend = OpenVINO()
    backend.load(str(path), BackendOptions(inputs=("x",), batch_size=1, shapes=shapes))
    return backend


def test_openvino_compiles_a_fixed_batch_static_and_keeps_dynamic_when_asked(dense_onnx):
    static, dynamic = openvino(dense_onnx, "static"), openvino(dense_onnx, "dynamic")
    assert static.compiled.inputs[0].get_partial_shape().is_static
    assert list(static.compiled.inputs[0].get_shape()) == [1, 4]
    assert dynamic.compiled.inputs[0].get_partial_shape().is_dynamic
    assert static.describe()["input_shapes"] == {"x": "[1,4]"}
    x = np.ones((3, 4), dtype=np.float32)  # quality evaluation feeds other batches: a dynamic twin runs them
    assert np.allclose(static.run({"x": x}), dynamic.run({"x": x})) and np.allclose(static.run({"x": x}), 6.0)


def test_axes_beyond_the_batch_are_fixed_by_the_first_batch(tmp_path):
    static = openvino(dense(tmp_path / "wide.onnx", "width"), "static")
    assert static.compiled.inputs[0].get_partial_shape().is_dynamic  # the width is not known at load
    assert np.allclose(static.run({"x": np.ones((1, 4), dtype=np.float32)}), 6.0)
    assert list(static.compiled.inputs[0].get_shape()) == [1, 4]


def test_shapes_follow_the_deployment_unless_asked():
    def shapes(backend, scenario, asked=None, **options):
        sweep = SimpleNamespace(cfg=SimpleNamespace(shapes=asked), scenario_options=ScenarioOptions(**options))
        return Sweep.shapes(sweep, SimpleNamespace(cls=backend), scenario)

    assert shapes(OpenVINO, "single-stream") == ["static"]
    assert shapes(OpenVINO, "server", batching={"max_batch": 64, "max_delay_ms": 1}) == ["dynamic"]
    assert shapes(OpenVINO, "server") == ["static"]  # fixed-size requests
    assert shapes(OpenVINO, "offline", ["static", "dynamic"]) == ["static", "dynamic"]
    assert shapes(OnnxRuntime, "single-stream", ["static", "dynamic"]) == ["dynamic"]  # it runs what the ONNX says


def test_static_shapes_on_a_varying_batch_are_skipped_with_why():
    from bench.config.sweep import TimingConfig
    from bench.measure.jobspec import Job

    job = Job(job_id="0", run_id="r", run_dir="d", model="dlrm", preset="tiny", variant="fp32", backend="openvino",
              backend_entry="", device="cpu", profile="default", scenario="server", batch_size=4, threads=1,
              timing=TimingConfig(), timeout_s=1, shapes="static")
    sweep = SimpleNamespace(scenario_options=ScenarioOptions(candidates={"distribution": "fixed", "n": 8}))
    rec = Sweep._prepare(sweep, job, None, SimpleNamespace(available=True), None, None, {})
    assert rec["status"] == "skipped" and rec["shapes"] == "static" and "vary in rows" in rec["reason"]


def test_records_before_the_field_key_as_dynamic(tmp_path):
    rec = {"model": "dlrm", "backend": "openvino", "batch_size": 1}
    assert JobKey.of(rec) == JobKey.of({**rec, "shapes": "dynamic"}) != JobKey.of({**rec, "shapes": "static"})
    db = tmp_path / "history.sqlite"  # a database written before `shapes` was a key field gains the column
    old = sqlite3.connect(db)
    old.execute("CREATE TABLE records (run_id TEXT NOT NULL, job_id TEXT NOT NULL, status TEXT, model, preset, "
                "variant, backend, device, profile, scenario, batch_size, record TEXT NOT NULL, "
                "PRIMARY KEY (run_id, job_id))")
    old.close()
    run = tmp_path / "run"
    run.mkdir()
    (run / "records.jsonl").write_text(json.dumps({**rec, "status": "ok", "job_id": "000", "shapes": "static"}))
    with History(db) as history:
        history.record_run(RunDir(run))
        row = history.db.execute("SELECT shapes, record FROM records").fetchone()
    assert row["shapes"] == "static" and json.loads(row["record"])["job_id"] == "000"


def test_a_run_records_its_shapes_and_measures_both_when_asked(tmp_path):
    res = recbench("run", "--preset", "tiny", "--quick", "--backends", "openvino,onnxruntime", "--batch-sizes", "1",
                   "--shapes", "static,dynamic", "--no-report", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    recs = RunDir(next(tmp_path.rglob("records.jsonl")).parent).records()
    got = {(r["backend"], r["shapes"]): r for r in recs}
    assert set(got) == {("openvino", "static"), ("openvino", "dynamic"), ("onnxruntime", "dynamic")}
    assert all(r["status"] == "ok" for r in recs) and len({r["job_id"] for r in recs}) == 3
    assert got["openvino", "static"]["backend_settings"]["input_shapes"]["dense"].startswith("[1,")
    assert "?" in got["openvino", "dynamic"]["backend_settings"]["input_shapes"]["dense"]
    assert got["openvino", "static"]["quality"]["auc"] == pytest.approx(got["openvino", "dynamic"]["quality"]["auc"])
