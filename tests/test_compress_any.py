"""Compression variants of any model: graph-level steps on ONNX files, module steps on factories, fidelity."""

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from models.byo import open_byo
from models.errors import ModelError
from models.export import onnx_scores
from models.quality import fidelity
from models.variants import get_variant, variant_matrix
from tests.conftest import recbench
from tests.test_byo import FACTORY_SPEC, byo_onnx, records, write


def initializers(path):
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("byo")
    return open_byo(str(byo_onnx(d / "byo.onnx")), write(d / "s.yaml", "inputs:\n  - {name: ids, cardinality: 1000}\n"))


def test_graph_steps_act_on_an_onnx_file(onnx_model):
    x = onnx_model.features(256, 7)
    base = onnx_scores(onnx_model.onnx_file, x)
    emb = onnx_model.prepare(get_variant("emb-int8"), {"onnx"}).files["onnx"]
    inits = initializers(emb)
    assert "emb" not in inits and inits["emb/rowwise_int8/codes"].dtype == np.uint8
    assert np.abs(onnx_scores(emb, x) - base).max() < 0.05
    pruned = initializers(onnx_model.prepare(get_variant("prune-50"), {"onnx"}).files["onnx"])
    assert all(abs((pruned[w] == 0).mean() - 0.5) < 0.01 for w in ("w1", "w2"))
    static = onnx_model.prepare(get_variant("emb-int8+int8-static"), {"onnx"})
    assert static.notes["calibration_samples"] == 2048 and "spec" in static.notes["calibration_source"]
    assert {"QuantizeLinear", "Gather"} <= {n.op_type for n in onnx.load(static.files["onnx"]).graph.node}


def test_module_steps_on_an_onnx_file_are_skipped_with_the_reason(onnx_model):
    rows = {r["variant"]: r for r in variant_matrix(onnx_model, onnx_model.variant)}
    assert rows["as-given"]["formats"] == ["onnx"] and rows["emb-int4"]["formats"] == ["onnx"]
    assert rows["int8-dynamic"]["formats"] == ["onnx", "openvino"]
    assert "has no PyTorch module" in rows["int8-dynamic"]["reasons"][0]
    assert rows["prune-struct"]["formats"] == []
    assert any("changes torch modules" in r for r in rows["prune-struct"]["reasons"])
    assert any("no PyTorch module to teach" in r for r in rows["distilled"]["reasons"])
    with pytest.raises(ModelError, match="valid for an ONNX file: fp32, fp16, bf16, int8-dynamic"):
        get_variant("int9", onnx_model)


def test_a_table_shared_with_the_output_layer_is_quantized_once(tmp_path):
    spec = write(tmp_path / "s.yaml", "inputs:\n  - {name: history, shape: [batch, 5], cardinality: 300}\n")
    model = open_byo("tests.byo_factories:build_tied", spec)
    p = model.prepare(get_variant("emb-int8"), {"onnx", "torch"})
    inits = initializers(p.files["onnx"])
    assert not any(v.dtype == np.float32 and v.shape in ((300, 8), (8, 300)) for v in inits.values())  # nor .T
    x = model.features(64, 3)
    base = onnx_scores(model.onnx_file, x)
    assert np.abs(onnx_scores(p.files["onnx"], x) - base).max() < 0.05  # scores ~N(0, 2): int8 rows
    import torch

    module = torch.load(p.files["torch"], weights_only=False)
    with torch.no_grad():
        torch_scores = module(torch.from_numpy(x["history"])).numpy().ravel()
    assert np.abs(torch_scores - base).max() < 0.05


def test_fidelity_names_rank_agreement():
    rng = np.random.default_rng(0)
    base = rng.random(1000)
    same, reverse = fidelity(base, base), fidelity(-base, base)
    assert same["rank_corr"] == 1 and same["top10_overlap"] == 1 and same["top100_overlap"] == 1
    assert reverse["rank_corr"] == pytest.approx(-1) and reverse["top100_overlap"] == 0
    rows = fidelity(base.reshape(50, 20) + 1e-3 * rng.random((50, 20)), base.reshape(50, 20))
    assert 0.99 < rows["rank_corr"] < 1 and rows["top10_overlap"] > 0.8 and "top100_overlap" not in rows


def test_distillation_of_a_factory_needs_labels_and_a_student(tmp_path):
    spec = write(tmp_path / "s.yaml", FACTORY_SPEC)
    assert "no student given" in open_byo("tests.byo_factories:build_ranker", spec).student_reason()
    x = open_byo("tests.byo_factories:build_ranker", spec).features(2000, 5)
    np.savez(tmp_path / "data.npz", **x, labels=(x["x"][:, 0] > 0).astype(np.float32))
    labelled = write(tmp_path / "l.yaml", FACTORY_SPEC + "labelled: data.npz\n")
    model = open_byo("tests.byo_factories:build_ranker", labelled, student="tests.byo_factories:build_small_ranker")
    p = model.prepare(get_variant("distilled"), {"onnx"})
    assert p.notes["student"] == "tests.byo_factories:build_small_ranker" and p.params < model.params / 2


def test_factory_variants_run_with_fidelity_and_bad_calibration_is_exit_2(tmp_path):
    spec = write(tmp_path / "spec.yaml", FACTORY_SPEC)
    x = open_byo("tests.byo_factories:build_ranker", spec).features(64, 1)
    np.savez(tmp_path / "calib.npz", **x)
    res = recbench("run", "--quick", "--model", "tests.byo_factories:build_ranker", "--input-spec", str(spec),
                   "--variants", "fp32,int8-static,prune-struct", "--backends", "onnxruntime", "--batch-sizes", "8",
                   "--calibration", str(tmp_path / "calib.npz"), "--out", str(tmp_path / "out"), "--no-report")
    assert res.returncode == 0, res.stderr[-2000:]
    recs = {r["variant"]: r for r in records(tmp_path / "out")}
    assert set(recs) == {"as-given", "int8-static", "prune-struct"} and "fp32 stands for" in res.stdout
    assert all(r["status"] == "ok" and r["quality"]["fidelity"] for r in recs.values())
    assert recs["int8-static"]["variant_notes"]["calibration_samples"] == 64
    np.savez(tmp_path / "bad.npz", x=x["x"][:, :4], ids=x["ids"])
    bad = recbench("run", "--quick", "--model", "tests.byo_factories:build_ranker", "--input-spec", str(spec),
                   "--calibration", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "out2"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "x is float32 [64, 4], the model takes float32 [n, 8]" in bad.stderr


def test_calibration_reads_parquet_columns_and_checks_them(tmp_path):
    import pandas as pd

    from models.compress.calibration import read_calibration

    example = {"ids": np.zeros((2, 1), np.int64), "x": np.zeros((2, 3), np.float32)}
    rows = pd.DataFrame({"ids": [5, 7], "x": [np.ones(3), np.zeros(3)]})
    rows.to_parquet(tmp_path / "c.parquet")
    got = read_calibration(tmp_path / "c.parquet", example)
    assert got["ids"].shape == (2, 1) and got["x"].dtype == np.float32 and got["x"][0].tolist() == [1, 1, 1]
    rows.rename(columns={"x": "dense"}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ModelError, match="the model takes ids, x \\(missing x\\)"):
        read_calibration(tmp_path / "bad.parquet", example)
