"""hstu, din and mmoe at `tiny`: each family through every CPU backend with its quality, HSTU's shared-history path
against the naive one, NE / accuracy / AUC definitions, the support matrix and the shipped three-metric budget."""

import dataclasses

import numpy as np
import pytest
import torch

from backends.base import BackendOptions
from backends.registry import get, load_entry
from bench.config.profiles import load_profile
from bench.gate.budgets import load_budgets
from bench.gate.evaluate import evaluate_rule
from bench.measure.serving.request_handles import SizedHandles
from models.artifacts import Workspace
from models.export import PARITY_TOL, parity_gap
from models.quality import accuracy, click_metrics, normalized_entropy
from models.registry import get_family
from models.train import predict
from models.variants import VARIANTS, variant_matrix
from tests.conftest import ROOT

FAMILIES = ("hstu", "din", "mmoe")
BACKENDS = {"torch-cpu": "torch", "onnxruntime": "onnx", "openvino": "onnx"}


@pytest.fixture(scope="module")
def prepared():
    """Each family's tiny workspace with its fp32 torch and ONNX artifacts (the export is parity-checked)."""
    out = {}
    for name in FAMILIES:
        ws = Workspace(get_family(name), "tiny")
        out[name] = ws, ws.prepare(VARIANTS["fp32"], {"torch", "onnx"})
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", FAMILIES)
def test_runs_on_every_cpu_backend_with_quality(prepared, name, backend):
    ws, prep = prepared[name]
    runtime = get(backend)()
    runtime.load(prep.files[BACKENDS[backend]], BackendOptions(threads=1, inputs=ws.names))
    q = load_entry(ws.family.quality_entry)(runtime.run, str(ws.reference()), None)
    aucs = [k for k in q if k.endswith("auc")]
    assert aucs == (["click_auc", "conversion_auc", "auc"] if name == "mmoe" else ["auc"]), q
    assert all(q[k] > 0.65 for k in aucs), q  # well above chance on the planted truth
    assert 0 < q["ne"] < 1 and q["accuracy"] > 0.6, q
    for metric in ("ne", "accuracy", "auc"):
        assert abs(q[f"{metric}_ratio"] - 1) < 1e-4, q  # fp32 on any runtime: the fp32 PyTorch model's quality


def test_hstu_shared_history_scores_equal_naive(prepared):
    ws, _ = prepared["hstu"]
    naive = get_family("hstu").build(dataclasses.replace(ws.preset.config, shared_history=False))
    naive.load_state_dict(ws.baseline().state_dict())
    x = ws.data.features(24, 7)
    history, candidates = torch.from_numpy(x["history"]), torch.from_numpy(x["candidates"])
    assert (history == 0).any() and (history != 0).any()  # padded histories are part of the check
    with torch.inference_mode():
        shared, unshared = ws.baseline()(history, candidates), naive.eval()(history, candidates)
    assert shared.shape == candidates.shape
    assert torch.allclose(shared, unshared, atol=1e-5), (shared - unshared).abs().max()


def test_hstu_candidates_do_not_see_each_other(prepared):
    ws, _ = prepared["hstu"]
    x = ws.data.features(4, 8)
    history, candidates = torch.from_numpy(x["history"]), torch.from_numpy(x["candidates"])
    with torch.inference_mode():
        full = ws.baseline()(history, candidates)
        alone = torch.cat([ws.baseline()(history, candidates[:, j : j + 1]) for j in range(candidates.shape[1])], 1)
    assert torch.allclose(full, alone, atol=1e-5)


def test_ne_accuracy_and_ratios():
    labels = np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32)
    assert normalized_entropy(labels, np.full(8, 0.25)) == pytest.approx(1.0)  # the base rate: no information
    assert normalized_entropy(labels, np.where(labels > 0, 0.9, 0.1)) < 0.5
    assert accuracy(labels, np.where(labels > 0, 0.6, 0.4)) == 1.0
    worse = click_metrics(labels, np.full(8, 0.3), np.full(8, 0.25))
    assert worse["ne_ratio"] > 1 and worse["ne_delta"] > 0 and worse["accuracy_ratio"] == 1.0


def test_hstu_support_matrix_names_a_reason_for_every_skip():
    rows = {r["variant"]: r for r in variant_matrix(Workspace(get_family("hstu"), "tiny"))}
    for name in ("fp32", "fp16", "int8-dynamic", "int8-static", "emb-int8", "emb-int4", "prune-struct", "lowrank",
                 "distilled"):
        assert rows[name]["formats"], rows[name]
    assert all(r["formats"] or r["reasons"] for r in rows.values())


def test_shipped_three_metric_budget_and_profile():
    budgets = load_budgets(ROOT / "scripts" / "budgets" / "mlperf-dlrmv3.yaml")
    rule = next(r for r in budgets.rules if r.name == "three-metric-accuracy")

    def verdicts(**ratios):
        quality = {"ne_ratio": 1.0, "accuracy_ratio": 1.0, "auc_ratio": 1.0, **ratios}
        record = {"job_id": "j", "status": "ok", "model": "hstu", "quality": quality}
        return {c.metric: c.verdict for c in evaluate_rule(rule, "r", [record], strict=False)}

    assert set(verdicts().values()) == {"pass"}
    assert verdicts(ne_ratio=1.0009, auc_ratio=0.9991)["quality.auc_ratio"] == "pass"
    assert verdicts(ne_ratio=1.002)["quality.ne_ratio"] == "fail"  # NE: lower is better
    assert verdicts(accuracy_ratio=0.998)["quality.accuracy_ratio"] == "fail"
    profile = load_profile("mlperf-dlrmv3")
    assert profile.scenario_options.p99_budget_ms == 80 and "server" in profile.scenarios


@pytest.mark.parametrize("name", ["hstu", "din"])
def test_onnx_takes_any_number_of_candidates(prepared, name):
    ws, prep = prepared[name]
    for n in (1, 37):
        x = dataclasses.replace(ws.data, candidates=n).features(3, 11)
        want = predict(ws.baseline(), x, ws.names).astype(np.float64)
        assert want.shape == (3 * n,) and parity_gap(want, prep.files["onnx"], x) <= PARITY_TOL


def test_a_served_request_is_one_history_with_n_candidates():
    rows = {"history": np.arange(12).reshape(3, 4), "candidates": np.arange(100, 130).reshape(3, 10)}
    sized = SizedHandles(lambda batch: batch, rows, batch_size=1, item_input="candidates")
    assert sized.total == 30  # the pool's candidates laid end to end
    call = sized(0, [(0, 0, 25)])
    assert call["history"].shape == (1, 4) and call["candidates"].shape == (1, 25)
    assert set(call["candidates"].ravel()) <= set(rows["candidates"].ravel())
    plain = SizedHandles(lambda batch: batch, rows, batch_size=1)(0, [(0, 0, 2)])  # other models: a row is a sample
    assert plain["history"].shape == (2, 4) and plain["candidates"].shape == (2, 10)
