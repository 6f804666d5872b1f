"""`--device`: a device no chosen backend runs on is bad input; backends that cannot use it are skipped, saying why."""

import json

import pytest
from typer.testing import CliRunner

from backends import registry
from bench.cli.main import app
from tests.conftest import recbench


@pytest.mark.parametrize("args, expect", [
    (["--device", "cuda:9"], "device cuda:9: none of the chosen backends (torch-cpu, onnxruntime, openvino) runs on "
                             "cuda; backends for cuda: torch-cuda"),
    (["--backends", "onnxruntime", "--device", "npu"], "none of the chosen backends (onnxruntime) runs on npu; "
                                                       "no backend runs on npu"),
])
def test_a_device_no_chosen_backend_runs_on_is_exit_2(args, expect, tmp_path):
    res = recbench("run", "--preset", "tiny", "--quick", "--batch-sizes", "1", "--no-report", "--out", str(tmp_path),
                   *args, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout, res.stdout[-2000:]
    assert len(res.stderr.strip().splitlines()) == 1 and expect in res.stderr, res.stderr


@pytest.fixture
def elsewhere():
    registry.register("elsewhere", "tests.fakes:ElsewhereBackend")
    yield
    registry.BACKENDS.pop("elsewhere")


def test_backends_that_cannot_use_the_device_are_skipped_with_the_reason(tmp_path, elsewhere):
    res = CliRunner().invoke(app, ["run", "--preset", "tiny", "--quick", "--backends", "onnxruntime,elsewhere",
                                   "--device", "cuda:0", "--batch-sizes", "1", "--no-report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output[-3000:]
    run = next(p for p in tmp_path.iterdir() if p.is_dir())  # beside it: the out folder's history.sqlite
    recs = {r["backend"]: r for r in map(json.loads, (run / "records.jsonl").read_text().splitlines())}
    assert recs["onnxruntime"]["status"] == "skipped" and recs["onnxruntime"]["device"] == "cuda:0"
    assert recs["onnxruntime"]["reason"] == "onnxruntime runs on cpu, not cuda:0 (--device)"
    assert recs["elsewhere"]["device"] == "cuda:0" and "nothing to measure on cuda:0" in recs["elsewhere"]["reason"]
    assert "onnxruntime runs on cpu, not cuda:0" in res.output
