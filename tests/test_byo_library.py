"""Bring-your-own models written like public recommender libraries' models, on every CPU runtime."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends.registry import BACKENDS
from tests.byo_library import BN_SPEC, CAST_SPEC, MATRIX_SPEC, SPECS

ROOT = Path(__file__).resolve().parents[1]
SHORT = ("timing: {warmup_iters: 2, warmup_s: 0, min_iters: 20, min_duration_s: 0, max_duration_s: 5, pool_size: 2}\n"
         "repeat: 1\n")


def short_config(folder: Path) -> Path:
    (folder / "short.yaml").write_text(SHORT)
    return folder / "short.yaml"


def run_in(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`recbench run` from the user's folder, recbench itself on the path but not the folder."""
    short_config(cwd)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", "run", "--config", "short.yaml", "--out", "out", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for f in out.rglob("records.jsonl") for line in f.read_text().splitlines()]


def spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path




@pytest.mark.parametrize("model", list(SPECS))
def test_library_models_match_pytorch_on_every_cpu_runtime(tmp_path, model):
    """Export, parity at three batch sizes, then each runtime's scores against PyTorch's (in process: fast)."""
    from backends.base import BackendOptions
    from backends.registry import load_class
    from models.byo import open_byo

    byo = open_byo(f"tests.byo_library:build_{model}", spec(tmp_path, SPECS[model]), exporter="auto",
                   batch_sizes=[5])
    notes = byo.notes
    assert notes["exporter"] == "torchscript" and notes["parity_batches"] == [1, 5, 7]
    assert notes["parity_max_abs_gap"] < 1e-5 and (notes["onnx_loop_ops"] > 0) == (model == "bag")
    batch = byo.features(5, 1)
    options = BackendOptions(device="cpu", threads=1, inputs=byo.input_names)
    scores = {}
    for name, fmt in (("torch-cpu", "torch"), ("onnxruntime", "onnx"), ("openvino", "onnx")):
        backend = load_class(BACKENDS[name])()
        backend.load(byo.variant.files[fmt], options)
        scores[name] = backend.run(batch)
    assert scores["torch-cpu"].shape == (5,)
    for name in ("onnxruntime", "openvino"):
        np.testing.assert_allclose(scores[name], scores["torch-cpu"], atol=1e-5)


VARARGS_SWAPPED = """inputs:
  - {name: dense, shape: [batch, 5]}
  - {name: ids, shape: [batch, 1], cardinality: 1000}
"""


@pytest.mark.parametrize("model, spec_text, extra, expect", [
    ("varargs", VARARGS_SWAPPED, [], "in forward's order"),
    ("castnet", CAST_SPEC.replace("  - {name: cat_b, dtype: int64, shape: [batch], cardinality: 50}\n", ""), [],
     "needs cat_b, which the input spec does not give"),
    ("castnet", CAST_SPEC.replace("cardinality: 50}", "cardinality: 5000}"), [],
     "input cat_b: IDs in [0, 5000) fail (IndexError: index out of range in self): its cardinality is probably "
     "larger than the table it indexes (the model's embedding tables have 1000, 500, 200, 50 rows)"),
    ("castnet", CAST_SPEC + "  - {name: age, shape: [batch, 1]}\n", [], "names age, which forward(user_id, "),
    ("castnet", CAST_SPEC, ["--exporter", "onnx2"], "exporter: Input should be 'auto', 'torchscript' or 'dynamo'"),
    ("matrix", "inputs:\n  - {name: x, columns: [{cardinality: 5, dense: true}]}\n", [], "either {cardinality: N}"),
    ("castnet", CAST_SPEC.replace("cardinality: 50}", "cardinality: 50, zipf_a: 1}"), [], "zipf_a must not be"),
])
def test_bad_model_input_is_one_line_exit_2(tmp_path, monkeypatch, capsys, model, spec_text, extra, expect):
    """Checked in the parent before any job (in process here: no job may start)."""
    from bench.cli import main as cli

    monkeypatch.setattr("bench.run.sweep.Interleaver", lambda *a, **k: pytest.fail("a job started"))
    monkeypatch.setattr(sys, "argv", ["recbench", "run", "--model", f"tests.byo_library:build_{model}",
                                      "--input-spec", str(spec(tmp_path, spec_text)), "--backends", "onnxruntime",
                                      "--out", str(tmp_path / "out"), *extra])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert expect in " ".join(err.split()) and "Traceback" not in err, err


def test_factory_from_the_working_directory_exit_1_full_reason_loop_warning(tmp_path):
    """One CLI run: the user's module imported from the working directory; its torch job fails (exit 1, the whole
    reason in the record and the report), its ONNX jobs run with a Loop warning in the record and the summary."""
    shutil.copy(ROOT / "tests" / "byo_factories.py", tmp_path / "mylib.py")
    (tmp_path / "spec.yaml").write_text("inputs:\n  - {name: ids, shape: [batch, 3], cardinality: 100}\n")
    res = run_in(tmp_path, "--model", "mylib:build_fails_in_jobs", "--input-spec", "spec.yaml", "--backends",
                 "torch-cpu,onnxruntime,openvino", "--batch-sizes", "4")
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-2000:]
    failed, *ok = records(tmp_path / "out")
    assert failed["status"] == "failed" and failed["reason"].endswith("END-OF-REASON")  # never cut in the record
    for r in ok:
        assert r["status"] == "ok" and "1 Loop/Scan ops" in " ".join(r["warnings"]), r
    assert "Loop/Scan" in " ".join(res.stdout.split())  # the run summary says it too
    assert "END-OF-REASON" in next((tmp_path / "out").rglob("report.md")).read_text()


def test_all_failed_run_still_gets_a_report(tmp_path):
    from bench.records.rundir import RunDir
    from bench.report.build import build_report

    run = RunDir.create(tmp_path, "allfailed")
    run.append({"run_id": "allfailed", "job_id": "000-x", "model": "m", "preset": "as-given", "variant": "as-given",
                "backend": "onnxruntime", "batch_size": 1, "status": "failed", "reason": "boom " * 100 + "END"})
    page = build_report(run.path, require_ok=False).markdown.read_text()
    assert "boom boom" in page and "END" in page


def test_exporter_fallback_choice_and_cache(tmp_path):
    from models.byo import open_byo

    norm = spec(tmp_path, "inputs:\n  - {name: ids, shape: [batch, 1], cardinality: 1000}\n"
                          "  - {name: dense, shape: [batch, 5]}\n")
    auto = open_byo("tests.byo_library:build_norm", norm, exporter="auto", batch_sizes=[4])
    assert auto.notes["exporter"] == "dynamo" and "rms_norm" in auto.notes["export_failures"]["torchscript"]
    forced = open_byo("tests.byo_library:build_norm", norm, exporter="torchscript", batch_sizes=[4])
    assert set(forced.variant.formats) == {"torch"} and "rms_norm" in forced.variant.unbuilt["onnx"]
    done = Path(auto.variant.files["onnx"]).parent / "byo.json"
    stamp = done.stat().st_mtime_ns
    # same weights, spec, exporter: reused
    again = open_byo("tests.byo_library:build_norm", norm, exporter="auto", batch_sizes=[4])
    assert again.variant.files == auto.variant.files and done.stat().st_mtime_ns == stamp


def test_new_batch_sizes_reuse_the_export(tmp_path):
    """The export cache is keyed on what changes the artifact: other batch sizes only add parity checks."""
    from models.byo import open_byo

    path = spec(tmp_path, CAST_SPEC)
    first = open_byo("tests.byo_library:build_castnet", path, batch_sizes=[4])
    onnx_file = Path(first.variant.files["onnx"])
    stamp = onnx_file.stat().st_mtime_ns
    second = open_byo("tests.byo_library:build_castnet", path, batch_sizes=[1, 32])
    assert second.variant.files == first.variant.files and onnx_file.stat().st_mtime_ns == stamp
    assert {4, 32} <= set(second.notes["parity_batches"])  # checked at the new largest batch, not exported again


def test_every_offered_variant_runs_on_a_batchnorm_library_model(tmp_path):
    """fp16/bf16 on torch cast the inputs a model re-casts with .float(); prune-struct prunes the norms after a
    pruned Linear: nothing offered fails at run time (bf16 on ONNX Runtime is skipped up front)."""
    spec(tmp_path, BN_SPEC)
    res = run_in(tmp_path, "--model", "tests.byo_library:build_bn", "--input-spec", "spec.yaml", "--variants",
                 "fp32,fp16,bf16,prune-struct", "--backends", "torch-cpu,onnxruntime", "--batch-sizes", "8",
                 "--no-report")
    status = {(r["variant"], r["backend"]): (r["status"], r.get("reason")) for r in records(tmp_path / "out")}
    assert res.returncode == 0, (res.stderr[-2000:], status)
    assert {k for k, (s, _) in status.items() if s != "ok"} == {("bf16", "onnxruntime")}, status


def test_half_precision_keeps_ids_stored_as_floats(tmp_path):
    import torch

    from models.byo import open_byo
    from models.variants import get_variant

    byo = open_byo("tests.byo_library:build_matrix", spec(tmp_path, MATRIX_SPEC), batch_sizes=[8])
    half = torch.load(byo.prepare(get_variant("bf16"), {"torch"}).files["torch"], weights_only=False)
    x = torch.from_numpy(byo.features(16, 5)["x"])
    x[:, 5] = 999  # bf16 holds 999 as 1000: a row past the end of the 1000-row table
    with torch.no_grad():
        assert torch.allclose(half(x), byo.module(x), atol=0.02)


def test_prune_struct_keeps_each_norm_channel_with_its_neuron():
    import torch

    from models.compress.prune_struct import shrink_mlp
    from tests.byo_library import build_bn

    mlp = build_bn().mlp
    with torch.no_grad():  # tie every norm channel to its neuron: the Linear before it has the same values
        mlp[1].running_mean.copy_(mlp[0].bias)
        mlp[5].weight.copy_(mlp[4].bias)
    shrink_mlp(mlp, 0.5)
    assert mlp[1].num_features == mlp[0].out_features == 32 and mlp[5].normalized_shape == (16,)
    assert torch.equal(mlp[1].running_mean, mlp[0].bias) and torch.equal(mlp[5].weight, mlp[4].bias)
    assert mlp(torch.randn(3, 21)).shape == (3, 1)


def test_prune_struct_is_skipped_up_front_where_it_cannot_prune():
    from types import SimpleNamespace

    from torch import nn

    from models.compress.prune_struct import StructuredPrune

    def why(*layers):
        return StructuredPrune().applies(SimpleNamespace(skeleton=lambda: nn.Sequential(*layers)), "onnx")

    assert "PReLU" in why(nn.Linear(8, 4), nn.PReLU(4), nn.Linear(4, 1))  # per-channel weights it does not prune
    assert why(nn.Linear(8, 4), nn.PReLU(), nn.BatchNorm1d(4), nn.Linear(4, 1)) is None
    assert "no MLP" in why(nn.Linear(8, 1), nn.Sigmoid())  # nothing to prune: not measured under its name
