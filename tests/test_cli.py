"""Bad input gets one line and exit code 2, never a traceback; what the CLI says about itself and a run."""

import json
import os
import subprocess
import sys

import pytest

from bench.config.sweep import TimingConfig
from bench.measure.scenarios import SCENARIOS
from tests.conftest import ROOT, recbench


@pytest.mark.parametrize("args, expect", [
    (["run", "--backends", "nosuch"], "valid: torch-cpu"),
    (["run", "--model", "nosuch"], "valid: dlrm"),
    (["run", "--preset", "huge"], "valid: tiny, edge, datacenter"),
    (["run", "--variants", "int9"], "dlrm: fp32, fp16"),
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
    bad.write_text("model: dlrm\nvariants: [fp32\npreset: tiny\n")
    res = recbench("run", "--config", str(bad))
    assert res.returncode == 2 and "line 3, column" in res.stderr, res.stderr
    bad.write_text("varients: [fp32]\n")
    res = recbench("run", "--config", str(bad))
    assert res.returncode == 2 and "varients" in res.stderr


def test_out_pointing_at_a_file_is_bad_input(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    res = recbench("run", "--quick", "--preset", "tiny", "--backends", "onnxruntime", "--out", str(afile))
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    assert len(res.stderr.strip().splitlines()) == 1 and "--out" in res.stderr and "folder" in res.stderr


def test_version_and_run_help_say_what_they_should():
    res = recbench("--version")
    assert res.returncode == 0 and res.stdout.startswith("recbench ")
    text = " ".join(recbench("run", "--help").stdout.replace("│", " ").split())
    assert all(name in text for name in SCENARIOS)
    q = TimingConfig.quick()
    assert f"measure >= {q.min_duration_s:g} s" in text and f"({q.target_iters()} iterations)" in text
    assert f"at most {q.max_duration_s:g} s per job" in text and f"{q.quality_samples:,} held-out" in text


def test_help_prints_its_text_as_written():
    """No rich emoji codes or markup in help texts: `pkg.mod:factory:` is no 🏭, `[auto]` defaults stay."""
    res = subprocess.run([sys.executable, "-m", "bench", "run", "--help"], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "COLUMNS": "120"}, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "🏭" not in res.stdout
    text = " ".join(res.stdout.split())
    assert "pkg.mod:factory: distillation student" in text and "torchscript or dynamo [auto]" in text


def test_user_strings_print_as_written():
    """The CLI's consoles read no emoji codes, and a job's reason is not markup ("[extras]" stays)."""
    from bench.cli.main import console, err_console
    from bench.report.tables import print_summary

    for c in (console, err_console):
        with c.capture() as cap:
            c.print("pkg.mod:factory: x")
        assert "pkg.mod:factory: x" in cap.get()
    record = {"job_id": "j1", "status": "skipped", "reason": "pip install recbench[openvino] or my.mod:factory:",
              "variant": "fp32", "backend": "openvino", "batch_size": 1}
    with console.capture() as cap:
        print_summary(console, [record], "t")
    assert "pip install recbench[openvino] or my.mod:factory:" in " ".join(cap.get().split())


def test_listing_commands():
    res = recbench("backends")
    assert res.returncode == 0
    for name in ("torch-cpu", "onnxruntime", "openvino", "torch-cuda", "tensorrt"):
        assert name in res.stdout
    from backends import registry

    out = recbench("variants")
    assert out.returncode == 0
    names = [n for n in registry.BACKENDS if n not in registry.PRESET_OPTIONS]
    unavailable = [n for n in names if not registry.get(n).available()[0]]
    assert ("yes*" in out.stdout) == bool(unavailable)  # 'yes' only where the backend can run here
    assert recbench("models").stdout.startswith("dlrm")


def test_quick_run_prints_summary(tmp_path):
    res = recbench("run", "--quick", "--preset", "tiny", "--backends", "onnxruntime,torch-cpu", "--batch-sizes",
                   "4", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "p99 ms" in res.stdout and "2 ok, 0 failed" in res.stdout
    # piped (not a terminal): one line per finished job, as it finishes, before the summary
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith(("[1/2] ", "[2/2] "))]
    assert len(lines) == 2 and "-onnxruntime-" in lines[0] and "-torch-cpu-" in lines[1]
    assert all(" ok p50 " in ln and " ms " in ln and "samples/s" in ln for ln in lines), lines
    assert res.stdout.index("[2/2]") < res.stdout.index("p99 ms")
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    config = json.loads((run / "config.json").read_text())  # what ran, not the flags' None defaults
    assert config["preset"] == "tiny" and config["backends"] == ["onnxruntime", "torch-cpu"]
    assert config["batch_sizes"] == [4] and config["scenarios"] == ["single-stream"]
    assert json.loads((run / "state.json").read_text()) == {"state": "complete", "jobs": 2, "done": 2}
    for log in (run / "logs").glob("*.log"):  # each job's log names the job and ends with its outcome (a variant
        lines = log.read_text().splitlines()  # build's library output comes first in the job that triggered it)
        assert any(ln.startswith(f"job {log.stem}:") for ln in lines) and lines[-1] == "ok", lines
    for r in map(json.loads, (run / "records.jsonl").read_text().splitlines()):
        if r["iterations"] >= 662:  # --quick measures until p99 is resolvable ...
            assert r["latency_ms"]["p99"] is not None
        else:  # ... unless its 10 s cap stops a slow job first (a busy machine): then it says what p99 needs
            assert r["duration_s"] >= 9.9 and r["latency_ms"]["p99"] is None
            assert any("--max-duration" in w and "--resolve" not in w for w in r["warnings"])
