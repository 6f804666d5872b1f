"""Bad input gets one line and exit code 2, never a traceback."""

import pytest

from tests.conftest import recbench


@pytest.mark.parametrize("args, expect", [
    (["run", "--backends", "nosuch"], "valid: torch-cpu"),
    (["run", "--model", "nosuch"], "valid: dlrm"),
    (["run", "--preset", "huge"], "valid: tiny, edge, datacenter"),
    (["run", "--variants", "int9"], "valid: fp32"),
    (["run", "--batch-sizes", "0"], "positive"),
    (["run", "--batch-sizes", "-4,8"], "positive"),
    (["run", "--batch-sizes", "x"], "integers"),
    (["run", "--config", "/nonexistent.yaml"], "cannot read"),
    (["run", "--profile", "nosuch"], "valid: default, edge, datacenter"),
    (["run", "--backends", "torch-cuda"], "not available"),
])
def test_bad_input_exits_2_with_one_line(args, expect):
    res = recbench(*args)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert expect in res.stderr


def test_malformed_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("variants: [fp32\n")
    res = recbench("run", "--config", str(bad))
    assert res.returncode == 2 and "not valid YAML" in res.stderr
    bad.write_text("varients: [fp32]\n")
    res = recbench("run", "--config", str(bad))
    assert res.returncode == 2 and "varients" in res.stderr


def test_listing_commands():
    res = recbench("backends")
    assert res.returncode == 0
    for name in ("torch-cpu", "onnxruntime", "openvino", "torch-cuda", "tensorrt"):
        assert name in res.stdout
    assert recbench("variants").returncode == 0
    assert recbench("models").stdout.startswith("dlrm")


def test_quick_run_prints_summary(tmp_path):
    res = recbench("run", "--quick", "--preset", "tiny", "--backends", "onnxruntime,torch-cpu", "--batch-sizes",
                   "4", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "p99 ms" in res.stdout and "2 ok, 0 failed" in res.stdout
