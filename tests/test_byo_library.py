"""Bring-your-own models written like public recommender libraries' models, on every CPU runtime."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHORT = "timing: {warmup_iters: 2, warmup_s: 0, min_iters: 20, min_duration_s: 0, max_duration_s: 5, pool_size: 2}\n"
CAST_SPEC = """inputs:
  - {name: user_id, dtype: int64, shape: [batch], cardinality: 1000}
  - {name: item_id, dtype: int64, shape: [batch], cardinality: 500}
  - {name: cat_a, dtype: int64, shape: [batch], cardinality: 200}
  - {name: cat_b, dtype: int64, shape: [batch], cardinality: 50}
  - {name: dense, dtype: float32, shape: [batch, 5]}
"""


def run_in(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`recbench run` from the user's folder, recbench itself on the path but not the folder."""
    (cwd / "short.yaml").write_text(SHORT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", "run", "--config", "short.yaml", "--no-report",
                           "--out", "out", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for f in out.rglob("records.jsonl") for line in f.read_text().splitlines()]


def test_casting_model_from_the_working_directory_runs_everywhere(tmp_path):
    shutil.copy(ROOT / "tests" / "byo_library.py", tmp_path / "mylib.py")
    (tmp_path / "spec.yaml").write_text(CAST_SPEC)
    res = run_in(tmp_path, "--model", "mylib:build_castnet", "--input-spec", "spec.yaml",
                 "--backends", "torch-cpu,onnxruntime,openvino", "--batch-sizes", "3")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert [(r["backend"], r["status"]) for r in records(tmp_path / "out")] == [
        ("torch-cpu", "ok"), ("onnxruntime", "ok"), ("openvino", "ok")]
