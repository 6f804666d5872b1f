"""What a job's process holds and leaves behind: only its backend's runtime, and a traceback whenever it fails."""

import json
import subprocess
import sys

import numpy as np
import pytest

from backends import registry
from bench.config.sweep import SweepConfig, TimingConfig
from bench.run.sweep import Sweep
from tests.conftest import ROOT, recbench

QUICK = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=10, min_duration_s=0.05, quality_samples=4096,
                     resolve=None)
FAKES = {"crashing": "CrashingBackend", "unreportable": "UnreportableBackend", "ort-modules": "ModulesOnnxRuntime"}


@pytest.fixture(scope="module")
def fakes_registered():
    for name, cls in FAKES.items():
        registry.register(name, f"tests.fakes:{cls}")
    yield
    for name in FAKES:
        registry.BACKENDS.pop(name)


def _sweep(tmp_path, backends: list[str]) -> tuple[dict, object]:
    cfg = SweepConfig(preset="tiny", backends=backends, batch_sizes=[1], timing=QUICK, timeout_s=60, out=tmp_path)
    run = Sweep(cfg, log=lambda s: None).run()
    return {r["backend"]: r for r in run.records()}, run


def test_a_trace_file_replays_through_the_cli(tmp_path):
    gaps = tmp_path / "gaps.txt"
    gaps.write_text("\n".join(map(str, np.random.default_rng(0).integers(1000, 9000, 3000))) + "\n")
    config = tmp_path / "tr.yaml"
    config.write_text(f"scenario: server\nscenario_options:\n  qps: 200\n  arrivals: {{file: {gaps}}}\n")
    res = recbench("run", "--preset", "tiny", "--quick", "--config", str(config), "--backends", "onnxruntime",
                   "--batch-sizes", "1", "--no-report", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    run = next((tmp_path / "out").iterdir())
    (rec,) = map(json.loads, (run / "records.jsonl").read_text().splitlines())
    assert rec["status"] == "ok" and rec["scenario"] == "server", rec["reason"]
    assert rec["scenario_options"]["arrivals"] == {**rec["scenario_options"]["arrivals"], "kind": "file",
                                                   "file": str(gaps)}
    assert rec["achieved_qps"] == pytest.approx(200, rel=0.25)


def test_a_job_process_that_dies_before_its_record_leaves_its_traceback(tmp_path, fakes_registered):
    recs, run = _sweep(tmp_path, ["crashing", "unreportable"])
    for backend, signature in (("crashing", "Fatal Python error: Aborted"), ("unreportable", "_UnprintableError")):
        rec = recs[backend]
        log = (run.path / "logs" / f"{rec['job_id']}.log").read_text()
        assert rec["status"] == "failed" and ("before sending a record" in rec["reason"] or "SIGABRT" in rec["reason"])
        assert signature in rec["reason"] and signature in log, (rec["reason"], log)
        assert "tests/fakes.py" in rec["reason"] and "in load" in rec["reason"]  # the frame it died in
        assert "Extension modules" not in rec["reason"]


def test_a_job_process_holds_only_its_backends_runtime(tmp_path, fakes_registered):
    recs, _ = _sweep(tmp_path, ["ort-modules", "torch-cpu"])
    assert recs["ort-modules"]["status"] == "ok", recs["ort-modules"]["reason"]
    assert recs["ort-modules"]["backend_settings"]["runtimes_imported"] == ["onnxruntime"]
    # torch-cpu's footprint carries torch, as ONNX Runtime's carries onnxruntime
    torch_import = subprocess.run(
        [sys.executable, "-c", "import numpy, psutil; p = psutil.Process(); a = p.memory_info().rss; import torch; "
                               "print(p.memory_info().rss - a)"], capture_output=True, text=True, check=True, cwd=ROOT)
    assert recs["torch-cpu"]["status"] == "ok", recs["torch-cpu"]["reason"]
    assert recs["torch-cpu"]["footprint_bytes"] > 0.9 * int(torch_import.stdout)


def test_the_forkserver_preload_imports_no_runtime():
    """Every job process forks from a server that imported bench.measure.worker: that must not bring any runtime."""
    code = ("import sys, bench.run.launcher; "
            "print([m for m in ('torch', 'onnxruntime', 'openvino') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_a_pair_in_two_processes_goes_on_alone_when_the_other_dies(tmp_path, fakes_registered):
    """An OpenVINO side is paired in a process of its own (Backend.pairs_in_one_process): when the other side's
    process aborts while loading, the launcher says it is gone and OpenVINO's side is measured alone, not timed out."""
    from bench.measure.jobspec import Job
    from bench.run.launcher import launch

    recs, run = _sweep(tmp_path, ["openvino", "crashing"])
    jobs = [Job.load(run.path / "logs" / f"{recs[b]['job_id']}.job.json") for b in ("openvino", "crashing")]
    ov, crashed = launch(*(job.replica_of(1, 2, False) for job in jobs))
    assert ov["status"] == "ok" and ov["replica"] == 1, ov.get("reason")
    assert crashed["status"] == "failed" and "SIGABRT" in crashed["reason"], crashed["reason"]
