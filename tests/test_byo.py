"""Bring-your-own models: ONNX files recbench did not produce, OpenVINO IR, torch factories, and bad input."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import recbench


def byo_onnx(path, ids_type=TensorProto.INT64):
    """The acceptance check's model: x float [batch, 16] and ids [batch, 1] gathered from a 1000 x 8 table."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("w1", (24, 32)), ("w2", (32, 1)), ("emb", (1000, 8)))]
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["e"]), helper.make_node("Flatten", ["e"], ["ef"], axis=1),
             helper.make_node("Concat", ["x", "ef"], ["h0"], axis=1), helper.make_node("MatMul", ["h0", "w1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h2"]), helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
             helper.make_node("Sigmoid", ["h3"], ["score"])]
    graph = helper.make_graph(nodes, "byo", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16]),
                                             helper.make_tensor_value_info("ids", ids_type, ["batch", 1])],
                              [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def records(out):
    return [json.loads(line) for f in out.rglob("records.jsonl") for line in f.read_text().splitlines()]


def write(path, text):
    path.write_text(text)
    return path


def test_onnx_runs_on_onnxruntime_and_openvino(tmp_path):
    model = byo_onnx(tmp_path / "byo.onnx")
    spec = write(tmp_path / "spec.yaml", "inputs:\n  - {name: ids, cardinality: 1000}\n")
    res = recbench("run", "--quick", "--model", str(model), "--input-spec", str(spec), "--backends",
                   "onnxruntime,openvino", "--batch-sizes", "8", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    recs = records(tmp_path / "out")
    assert [(r["backend"], r["status"]) for r in recs] == [("onnxruntime", "ok"), ("openvino", "ok")]
    assert all(r["model"] == "byo" and r["variant"] == "as-given" for r in recs)
    assert all(r["quality"]["fidelity"] and r["quality"]["rank_corr"] > 0.9999 for r in recs)  # runtime vs ORT
    assert recs[0]["params"] == 24 * 32 + 32 + 8000


def test_inputs_follow_signature_and_spec(tmp_path):
    from models.byo import open_byo

    model = byo_onnx(tmp_path / "byo.onnx")
    byo = open_byo(str(model), None)  # no spec: the ID range comes from the Gather table's 1000 rows
    x = byo.features(4096, 0)
    assert x["x"].shape == (4096, 16) and x["x"].dtype == np.float32 and abs(float(x["x"].std()) - 1) < 0.05
    ids = x["ids"]
    assert ids.shape == (4096, 1) and ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 1000
    counts = np.sort(np.bincount(ids[:, 0], minlength=1000))[::-1]
    assert counts[:10].sum() > 10 * counts[500:510].sum()  # power law: a few hot IDs
    spec = write(tmp_path / "s.yaml", "inputs:\n  - {name: ids, range: [100, 200], distribution: uniform}\n")
    ids = open_byo(str(model), spec).features(4096, 0)["ids"]
    assert 100 <= ids.min() and ids.max() < 200 and len(np.unique(ids)) == 100


def test_labelled_data_gives_quality(tmp_path):
    from models.byo import open_byo

    model = byo_onnx(tmp_path / "byo.onnx")
    x = open_byo(str(model), None).features(2000, 5)
    np.savez(tmp_path / "data.npz", **x, labels=(x["x"][:, 0] > 0).astype(np.float32))
    spec = write(tmp_path / "s.yaml", "labelled: data.npz\n")
    res = recbench("run", "--quick", "--model", str(model), "--input-spec", str(spec), "--backends", "onnxruntime",
                   "--batch-sizes", "8", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    q = records(tmp_path / "out")[0]["quality"]
    assert q["eval_samples"] == 2000 and abs(q["auc_delta"]) < 1e-9 and q["max_abs_score_delta"] < 1e-6


def test_openvino_ir_goes_to_openvino_only(tmp_path):
    import openvino as ov

    ov.save_model(ov.convert_model(str(byo_onnx(tmp_path / "byo.onnx"))), str(tmp_path / "byo.xml"))
    spec = write(tmp_path / "spec.yaml", "inputs:\n  - {name: ids, cardinality: 1000}\n")
    res = recbench("run", "--quick", "--model", str(tmp_path / "byo.xml"), "--backends", "onnxruntime,openvino",
                   "--batch-sizes", "4", "--input-spec", str(spec), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    status = {r["backend"]: r["status"] for r in records(tmp_path / "out")}
    assert status == {"onnxruntime": "skipped", "openvino": "ok"}


def test_tensorrt_engine_goes_to_tensorrt_only(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"serialized engine bytes")  # never opened by a CPU backend
    spec = write(tmp_path / "spec.yaml", "inputs:\n  - {name: x, dtype: float32, shape: [batch, 16]}\n")
    res = recbench("run", "--quick", "--model", str(engine), "--input-spec", str(spec), "--batch-sizes", "4",
                   "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    recs = records(tmp_path / "out")
    assert {r["backend"] for r in recs} == {"torch-cpu", "onnxruntime", "openvino"}
    assert all(r["status"] == "skipped" and "variant has engine" in r["reason"] for r in recs)


FACTORY_SPEC = "inputs:\n  - {name: x, shape: [batch, 8]}\n  - {name: ids, shape: [batch, 1], cardinality: 500}\n"


def test_factory_exports_through_the_same_path(tmp_path):
    spec = write(tmp_path / "spec.yaml", FACTORY_SPEC)
    res = recbench("run", "--quick", "--model", "tests.byo_factories:build_ranker", "--input-spec", str(spec),
                   "--backends", "torch-cpu,onnxruntime", "--batch-sizes", "4", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr[-2000:]
    recs = records(tmp_path / "out")
    assert [r["status"] for r in recs] == ["ok", "ok"]
    assert recs[1]["artifact"].endswith(".onnx") and recs[0]["params"] == 500 * 4 + 12 * 16 + 16 + 17


def test_unexportable_factory_still_runs_on_torch(tmp_path):
    spec = write(tmp_path / "spec.yaml", "inputs:\n  - {name: x, shape: [batch, 8]}\n")
    res = recbench("run", "--quick", "--model", "tests.byo_factories:build_unexportable", "--input-spec", str(spec),
                   "--backends", "torch-cpu,onnxruntime,openvino", "--batch-sizes", "4", "--out", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr[-2000:]
    recs = {r["backend"]: r for r in records(tmp_path / "o")}
    assert recs["torch-cpu"]["status"] == "ok"
    for name in ("onnxruntime", "openvino"):
        assert recs[name]["status"] == "skipped" and "ONNX export failed" in recs[name]["reason"]
        assert "eigvalsh" in recs[name]["reason"]


def test_a_model_that_does_not_run_in_half_precision_is_skipped_not_failed(tmp_path):
    """eigvalsh has no fp16/bf16 CPU kernel: found while building the variant, its jobs are skipped with why."""
    spec = write(tmp_path / "spec.yaml", "inputs:\n  - {name: x, shape: [batch, 8]}\n")
    res = recbench("run", "--quick", "--model", "tests.byo_factories:build_unexportable", "--input-spec", str(spec),
                   "--variants", "fp16,bf16", "--backends", "torch-cpu", "--batch-sizes", "4", "--no-report",
                   "--out", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr[-2000:]
    recs = {r["variant"]: r for r in records(tmp_path / "o")}
    for name, dtype in (("fp16", "Half"), ("bf16", "BFloat16")):
        assert recs[name]["status"] == "skipped" and "does not run" in recs[name]["reason"]
        assert f"not implemented for '{dtype}'" in recs[name]["reason"]


def _string_input_onnx(path):
    graph = helper.make_graph([helper.make_node("Identity", ["s"], ["out"])], "g",
                              [helper.make_tensor_value_info("s", TensorProto.STRING, ["batch"])],
                              [helper.make_tensor_value_info("out", TensorProto.STRING, ["batch"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("case, expect", [
    ("corrupt", "is not a valid ONNX model"),
    ("string-input", "unsupported input type"),
    ("spec-unknown-input", "has no input of"),
    ("spec-wrong-dtype", "the spec says float32"),
    ("spec-wrong-shape", "does not fit"),
    ("spec-typo", "cardinalty"),
    ("fixed-batch-mismatch", "fixes the batch size"),
    ("not-importable", "cannot import nosuch_pkg"),
    ("no-such-function", "has no callable nosuch"),
    ("not-a-module", "not a torch.nn.Module"),
    ("factory-without-spec", "needs --input-spec"),
    ("ids-without-range", "declare its IDs' cardinality or range"),
    ("engine-without-spec", "needs --input-spec"),
    ("unknown-suffix", "unsupported model file"),
    ("missing-file", "does not exist"),
    ("spec-with-builtin", "--input-spec describes a bring-your-own model"),
    ("variants", "valid for an ONNX file: fp32, fp16"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, case, expect):
    good = byo_onnx(tmp_path / "byo.onnx")
    specs = iter(range(100))

    def spec(text):  # one file per case: the table below builds every case's arguments
        return str(write(tmp_path / f"spec{next(specs)}.yaml", text))

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07not an onnx protobuf" * 10)
    args = {
        "corrupt": ["--model", str(corrupt)],
        "string-input": ["--model", str(_string_input_onnx(tmp_path / "s.onnx"))],
        "spec-unknown-input": ["--model", str(good), "--input-spec", spec("inputs: [{name: user}]\n")],
        "spec-wrong-dtype": ["--model", str(good), "--input-spec",
                             spec("inputs: [{name: ids, dtype: float32}]\n")],
        "spec-wrong-shape": ["--model", str(good), "--input-spec",
                             spec("inputs: [{name: x, shape: [batch, 12]}]\n")],
        "spec-typo": ["--model", str(good), "--input-spec", spec("inputs: [{name: ids, cardinalty: 9}]\n")],
        "fixed-batch-mismatch": ["--model", str(good), "--batch-sizes", "4,8", "--input-spec",
                                 spec("inputs: [{name: x, shape: [8, 16]}]\n")],
        "not-importable": ["--model", "nosuch_pkg.mod:build", "--input-spec", spec(FACTORY_SPEC)],
        "no-such-function": ["--model", "tests.byo_factories:nosuch", "--input-spec", spec(FACTORY_SPEC)],
        "not-a-module": ["--model", "tests.byo_factories:build_not_a_module", "--input-spec",
                         spec(FACTORY_SPEC)],
        "factory-without-spec": ["--model", "tests.byo_factories:build_ranker"],
        "ids-without-range": ["--model", "tests.byo_factories:build_ranker", "--input-spec",
                              spec("inputs: [{name: x, shape: [batch, 8]}, {name: ids, dtype: int64, "
                                   "shape: [batch, 1]}]\n")],
        "engine-without-spec": ["--model", str(write(tmp_path / "m.plan", "bytes"))],
        "unknown-suffix": ["--model", str(write(tmp_path / "model.pb", "x"))],
        "missing-file": ["--model", str(tmp_path / "nothere.onnx")],
        "spec-with-builtin": ["--model", "dcn", "--input-spec", spec("inputs: []\n")],
        "variants": ["--model", str(good), "--variants", "int9"],
    }[case]
    res = recbench("run", "--quick", "--backends", "onnxruntime", "--out", str(tmp_path / "out"), *args)
    assert res.returncode == 2, (res.stdout[-1000:], res.stderr[-1000:])
    assert "Traceback" not in res.stderr + res.stdout
    assert expect in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
