"""Every variant really changes the model, carries quality measured on held-out data, and composes by name."""

import importlib.util

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from backends import registry
from backends.base import BackendOptions, NotInEffect
from bench.errors import UserError
from models.compress.base import size_breakdown
from models.compress.embedding import MIN_ROWS
from models.errors import ModelError
from models.quality import evaluate_ranking
from models.variants import VARIANTS, get_variant
from tests.conftest import recbench


@pytest.fixture(scope="module")
def built(tiny_ws):
    """Each variant's artifacts, built once: name -> Prepared with every format the variant has."""
    return {name: tiny_ws.prepare(v, set(v.formats)) for name, v in VARIANTS.items()}


def onnx_graph(prepared):
    model = onnx.load(prepared.files["onnx"])
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.op_type for n in model.graph.node}, inits


def gemm_weights(prepared) -> list[np.ndarray]:
    model = onnx.load(prepared.files["onnx"])
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [inits[n.input[1]] for n in model.graph.node if n.op_type in ("Gemm", "MatMul") and n.input[1] in inits]


def test_fp16_stores_half_weights(built):
    ops, inits = onnx_graph(built["fp16"])
    assert "Cast" in ops and any(v.dtype == np.float16 and v.size > 1000 for v in inits.values())
    module = torch.load(built["fp16"].files["torch"], weights_only=False)
    assert {p.dtype for p in module.parameters()} == {torch.float16}


def ov_has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_bf16_runs_bf16_where_the_runtime_can(built):
    v = get_variant("bf16")
    assert "onnx" not in v.formats and v.backend_options("openvino") == {"precision": "bf16"}
    module = torch.load(built["bf16"].files["torch"], weights_only=False)
    assert {p.dtype for p in module.parameters()} == {torch.bfloat16}


def test_bf16_on_openvino_is_read_back_from_the_execution_graph(built, tiny_ws):
    """A CPU without bf16 (AVX2-only) ignores the hint and runs fp32: that job is skipped, never reported as bf16."""
    from backends.ov import precision_not_in_effect

    assert "ignored INFERENCE_PRECISION_HINT=bf16" in precision_not_in_effect("bf16", {"f32": 5})  # AVX2 CPUs
    assert precision_not_in_effect("bf16", {"bf16": 5, "f32": 1}) is None
    assert precision_not_in_effect("f32", {"f32": 5}) is None
    backend = registry.get("openvino")()
    options = BackendOptions(threads=1, inputs=tiny_ws.names, extra={"precision": "bf16"})
    if ov_has_bf16():
        backend.load(built["bf16"].files["openvino"], options)
        assert backend.describe()["runtime_precisions"].get("bf16", 0) > 0
    else:
        with pytest.raises(NotInEffect, match="CPU capabilities"):
            backend.load(built["bf16"].files["openvino"], options)


def test_int8_dynamic_has_integer_matmuls(built):
    ops, inits = onnx_graph(built["int8-dynamic"])
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops and "Gemm" not in ops
    assert any(v.dtype == np.int8 for v in inits.values())
    module = torch.load(built["int8-dynamic"].files["torch"], weights_only=False)
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in module.modules())
    assert 'element_type="u8"' in open(built["int8-dynamic"].files["openvino"]).read()  # NNCF int8 weights


def test_int8_static_is_qdq_with_calibrated_scales(built):
    ops, inits = onnx_graph(built["int8-static"])
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert sum(v.dtype == np.int8 and v.ndim == 2 for v in inits.values()) >= 3  # the MLP weights
    assert "FakeQuantize" in open(built["int8-static"].files["openvino"]).read()  # NNCF
    assert "torch" not in get_variant("int8-static").formats


def test_int8_static_is_the_same_model_on_onnxruntime_and_openvino(built):
    """MLPs int8, tables fp32 on both (NNCF used to store the tables int8 too: 13.9 MB vs 47.6 MB at edge)."""
    from bench.measure.worker import artifact_bytes

    p, tables = built["int8-static"], built["fp32"].notes["embedding_bytes"]
    ort, ov = artifact_bytes(p.files["onnx"]), artifact_bytes(p.files["openvino"])
    assert ort > tables and ov > tables  # every fp32 table is in both artifacts
    assert abs(ort - ov) / ort < 0.15, (ort, ov)


@pytest.mark.parametrize("bits", [8, 4])
def test_embedding_tables_are_rowwise_quantized(built, tiny_ws, bits):
    p = built[f"emb-int{bits}"]
    _, inits = onnx_graph(p)
    codes = [v for v in inits.values() if v.dtype == np.uint8]
    cfg = tiny_ws.preset.config
    big = [c for c in cfg.cardinalities if c >= MIN_ROWS]  # the graph rewrite and the module swap agree
    assert len(codes) == len(big) and 0 < len(big) < len(cfg.cardinalities)
    assert all(c.shape[1] == cfg.embedding_dim * bits // 8 for c in codes)
    assert not any(v.dtype == np.float32 and v.ndim == 2 and v.shape[0] in big for v in inits.values())
    fp32_tables = size_breakdown(tiny_ws.baseline())["embedding_bytes"]
    small = sum(cfg.cardinalities) - sum(big)
    assert p.notes["embedding_bytes"] == sum(big) * (cfg.embedding_dim * bits // 8 + 4) + small * cfg.embedding_dim * 4
    assert fp32_tables / p.notes["embedding_bytes"] == pytest.approx(p.notes["embedding_ratio_vs_fp32"])
    assert p.params == built["fp32"].params  # the same weights, fewer bits each


@pytest.mark.parametrize("name,share", [("prune-50", 0.5), ("prune-90", 0.9)])
def test_magnitude_pruning_zeroes_weights_in_the_artifact(built, name, share):
    weights = gemm_weights(built[name])
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.size for w in weights)
    assert share - 0.01 <= zeros <= share + 0.01
    assert built[name].notes["sparsity"] == pytest.approx(zeros, abs=0.01)


def test_structured_pruning_shrinks_layers(built):
    base = [w.shape for w in gemm_weights(built["fp32"])]
    pruned = [w.shape for w in gemm_weights(built["prune-struct"])]
    assert len(base) == len(pruned) and sum(np.prod(s) for s in pruned) < 0.7 * sum(np.prod(s) for s in base)
    assert built["prune-struct"].params < built["fp32"].params


def test_lowrank_factorises_layers(built):
    p = built["lowrank"]
    assert p.notes["factorised_layers"] >= 2 and len(gemm_weights(p)) > len(gemm_weights(built["fp32"]))
    assert p.notes["dense_bytes"] < built["fp32"].notes["dense_bytes"]


def test_distilled_is_a_smaller_student(built):
    p = built["distilled"]
    assert p.params * 2 <= built["fp32"].params  # edge: >= 3x (its tables shrink 4x); tiny keeps a width floor
    assert p.notes["student"]["embedding_dim"] < 8


def test_composition_applies_both_steps(built):
    p = built["distilled+int8-static"]
    ops, _ = onnx_graph(p)
    assert "QuantizeLinear" in ops and p.params == built["distilled"].params
    assert get_variant("emb-int4+int8-static").formats == ("onnx", "openvino")  # composes outside the registry


def backend_for(variant):
    for name in ("onnxruntime", "openvino", "torch-cpu"):
        cls = registry.get(name)
        fmt = cls.pick_format(variant.formats)
        if fmt:
            return name, cls, fmt


@pytest.mark.parametrize("name", list(VARIANTS))
def test_quality_is_measured_on_held_out_data_through_the_runtime(built, tiny_ws, name):
    variant, p = VARIANTS[name], built[name]
    backend_name, cls, fmt = backend_for(variant)
    if backend_name == "openvino" and name == "bf16" and not ov_has_bf16():
        pytest.skip("this CPU has no bf16: OpenVINO would run fp32 (the job is skipped, see the test above)")
    backend = cls()
    backend.load(p.files[fmt], BackendOptions(threads=1, inputs=tiny_ws.names,
                                              extra=variant.backend_options(backend_name)))
    q = evaluate_ranking(backend.run, p.reference, None)
    ref = np.load(p.reference)
    assert q["eval_samples"] == len(ref["labels"]) == tiny_ws.preset.eval_samples
    assert 0.65 < q["auc"] < 0.9 and q["auc_delta"] > -0.05
    if name == "fp32":
        assert q["max_abs_score_delta"] < 1e-5
    else:
        assert q["max_abs_score_delta"] > 1e-4  # the model really changed


def test_eval_set_is_disjoint_from_training(tiny_ws):
    ref = np.load(tiny_ws.reference())
    x, _ = tiny_ws.train_set()
    train_rows = {r.tobytes() for r in x["dense"]}
    assert not any(r.tobytes() in train_rows for r in ref["x_dense"][:2000])


@pytest.mark.parametrize("name,match", [
    ("int9", "valid: fp32, fp16"), ("int8-static+distilled", "stage order"), ("fp16+int8-static", "stage order"),
    ("prune-50+prune-50", "each step once"), ("", "unknown variant"),
])
def test_bad_names(name, match):
    with pytest.raises(ModelError, match=match):
        get_variant(name)


def test_missing_quantizer_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "nncf" else real(n, *a))
    assert "pip install nncf" in get_variant("int8-static").missing("openvino")
    assert get_variant("int8-static").missing("onnx") is None
    from bench.config.sweep import SweepConfig
    from bench.run.sweep import Sweep

    with pytest.raises(UserError, match="pip install nncf"):
        Sweep(SweepConfig(preset="tiny", variants=["int8-static"], backends=["openvino"]))


def test_cli_bad_variant_exits_2_and_matrix_lists_all():
    bad = recbench("run", "--preset", "tiny", "--variants", "prune-50+nope")
    assert bad.returncode == 2 and "valid for the built-in dlrm:" in bad.stderr and "Traceback" not in bad.stderr
    out = recbench("variants").stdout
    for name in VARIANTS:
        assert name in out
    bf16 = next(line for line in out.splitlines() if line.split("│")[0].strip(" ┃│") == "bf16" or " bf16 " in line)
    assert "-" in bf16


@pytest.mark.parametrize("model", ["dlrm", "sasrec"])
def test_cli_variants_for_one_model_lists_what_applies(model):
    res = recbench("variants", "--model", model, "--preset", "tiny")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    for name in ("fp32", "int8-dynamic", "prune-struct"):
        assert name in res.stdout
