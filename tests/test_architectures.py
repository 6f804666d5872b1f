"""The built-in architectures at `tiny`: clean ONNX export, ONNX/PyTorch parity, sane quality through a runtime."""

import numpy as np
import onnx
import pytest
import torch

from backends.base import BackendOptions
from backends.registry import get, load_entry
from models.artifacts import Workspace
from models.export import PARITY_TOL, parity_gap
from models.quality import hit_ndcg, next_item_ranks, overlap_at_k
from models.registry import FAMILIES, get_family
from models.train import predict
from models.variants import VARIANTS
from tests.conftest import recbench

NEW = ("dcn", "two-tower", "two-tower-topk", "sasrec")


@pytest.fixture(scope="module")
def prepared():
    """Each new family's tiny workspace and its fp32 ONNX artifact (the export refuses a parity gap > 1e-5)."""
    out = {}
    for name in NEW:
        ws = Workspace(get_family(name), "tiny")
        out[name] = ws, ws.prepare(VARIANTS["fp32"], {"onnx"})
    return out


def test_models_lists_every_family_first_word_its_name():
    res = recbench("models")
    assert res.returncode == 0
    first = [line.split()[0] for line in res.stdout.splitlines() if line.strip()]
    assert first == list(FAMILIES) and set(NEW) <= set(first)


@pytest.mark.parametrize("name", NEW)
def test_presets_build(name):
    fam = get_family(name)
    assert set(fam.presets) == {"tiny", "edge", "datacenter"} and fam.default_preset == "edge"
    sizes = [sum(p.numel() for p in fam.build(fam.presets[p].config).parameters()) for p in ("tiny", "edge")]
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize("name", NEW)
def test_onnx_graph_is_clean_with_dynamic_batch(prepared, name):
    ws, prep = prepared[name]
    graph = onnx.load(prep.files["onnx"]).graph
    ops = {n.op_type for n in graph.node}
    assert "Gather" in ops and not ops & {"Loop", "Scan", "If"}, ops
    for inp in graph.input:
        assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    if name == "two-tower-topk":
        assert {"MatMul", "TopK"} <= ops


@pytest.mark.parametrize("name", ["dcn", "two-tower", "sasrec"])
def test_parity_at_another_batch_size(prepared, name):
    ws, prep = prepared[name]
    x = ws.data.features(37, 123)
    assert parity_gap(predict(ws.baseline(), x, ws.names).astype(np.float64), prep.files["onnx"], x) <= PARITY_TOL


def test_retrieval_parity_catches_a_wrong_corpus(prepared):
    ws, prep = prepared["two-tower-topk"]
    module, x = ws.baseline(), ws.data.features(64, 123)
    assert ws.family.parity(module, prep.files["onnx"], x) <= PARITY_TOL
    shuffled = get_family("two-tower-topk").build(ws.preset.config)
    shuffled.load_state_dict(module.state_dict())
    with torch.no_grad():
        shuffled.corpus_t.copy_(module.corpus_t[:, torch.randperm(module.corpus_t.shape[1])])
    assert ws.family.parity(shuffled, prep.files["onnx"], x) > 0.01


def quality(prepared, name, backend):
    ws, prep = prepared[name]
    runtime = get(backend)()
    runtime.load(prep.files["onnx"], BackendOptions(threads=1, inputs=ws.names))
    return load_entry(ws.family.quality_entry)(runtime.run, str(ws.reference()), None)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_ctr_quality(prepared, backend):
    for name, floor in (("dcn", 0.56), ("two-tower", 0.6)):
        q = quality(prepared, name, backend)
        assert q["auc"] > floor and abs(q["auc_delta"]) < 1e-4 and q["max_abs_score_delta"] < 1e-4, (name, q)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_retrieval_quality(prepared, backend):
    ws, _ = prepared["two-tower-topk"]
    q = quality(prepared, "two-tower-topk", backend)
    chance = ws.preset.config.k / ws.preset.config.towers.num_items
    assert q["k"] == 20 and q["recall_at_k"] > 0.97, q  # same top-k as PyTorch up to near-ties
    assert q["recall_at_k_truth"] > 3 * chance and abs(q["recall_at_k_truth_delta"]) < 0.03, q


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_next_item_quality(prepared, backend):
    ws, _ = prepared["sasrec"]
    q = quality(prepared, "sasrec", backend)
    chance = 10 / ws.preset.config.num_items
    assert q["hr_at_10"] > 20 * chance and 0 < q["ndcg_at_10"] < q["hr_at_10"], q
    assert abs(q["hr_at_10_delta"]) < 0.01 and q["top10_overlap"] > 0.97, q


def test_metric_definitions():
    assert overlap_at_k(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 2, 9], [7, 8, 9]])).tolist() == [2 / 3, 0]
    scores = np.array([[9.0, 0.1, 0.5, 0.3], [9.0, 0.4, 0.2, 0.3]])  # column 0 (padding) is ignored
    ranks = next_item_ranks(scores, np.array([2, 2]))
    assert ranks.tolist() == [0, 2]
    hr, ndcg = hit_ndcg(ranks, k=2)
    assert hr == 0.5 and ndcg == pytest.approx(0.5)
    hr, ndcg = hit_ndcg(ranks, k=10)
    assert hr == 1.0 and ndcg == pytest.approx((1 + 1 / np.log2(4)) / 2)


def test_quick_run_of_each_new_model(tmp_path):
    for name in NEW:
        res = recbench("run", "--quick", "--model", name, "--preset", "tiny", "--backends", "onnxruntime",
                       "--batch-sizes", "4", "--out", str(tmp_path))
        assert res.returncode == 0 and "1 ok, 0 failed" in res.stdout, (name, res.stdout[-1500:], res.stderr[-1500:])
