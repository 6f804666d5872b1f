"""Ctrl-C during a run: the run folder is marked, and report, compare, gate and last-pass all see it."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.records.history import History, default_db
from bench.records.rundir import RunDir
from bench.run import interleave
from tests.conftest import ROOT, recbench, sigint_default
from tests.runs import latencies, make_run


def test_an_interrupted_run_is_marked_and_never_a_baseline(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--quick", "--preset", "tiny", "--backends",
                             "onnxruntime", "--batch-sizes", "1,2,4,8,16", "--out", str(out)], cwd=ROOT,
                            env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    deadline = time.time() + 300
    while time.time() < deadline and not any(p.read_text() for p in out.glob("*/records.jsonl")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # Ctrl-C after the first job
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    assert "interrupted" in stderr
    run = next(p for p in out.iterdir() if p.is_dir())
    state = json.loads((run / "state.json").read_text())
    assert state["state"] == "interrupted" and state["jobs"] == 5 and 1 <= state["done"] < 5
    res = recbench("report", str(run))
    assert res.returncode == 0 and "INCOMPLETE" in res.stdout and "was interrupted" in res.stdout
    assert "(INCOMPLETE)" in (run / "report" / "report.md").read_text()
    res = recbench("compare", str(run), str(run))
    assert res.returncode == 2 and "--allow-interrupted" in res.stderr
    assert recbench("compare", str(run), str(run), "--allow-interrupted").returncode == 0
    res = recbench("gate", "--baseline", str(run), str(run), "--max-regression", "50%")
    assert res.returncode == 2 and "was interrupted" in res.stderr
    with History(default_db(out)) as h:  # a ref never resolves to it, even once recorded
        h.record_run(RunDir(run))
        assert h.resolve("last", make_run(tmp_path, "candidate", {"fp32": latencies(1.0)})) is None


def _cli(monkeypatch, *args: str) -> int:
    """`recbench ARGS` in this process (so a test can fake the launcher); its exit code."""
    from bench.cli import main

    monkeypatch.setattr(sys, "argv", ["recbench", *args])
    with pytest.raises(SystemExit) as done:
        main.main()
    return done.value.code


def _interrupt_after(monkeypatch, launches: int) -> list[str]:
    """The real launcher for the first `launches` launches (a job's replica, or a paired A/B's two), then Ctrl-C (as a
    KeyboardInterrupt in the launcher)."""
    real, seen, done = interleave.launch, [], []

    def launch(*jobs):
        if len(done) == launches:
            raise KeyboardInterrupt
        done.append(jobs)
        seen.extend(job.replica_id for job in jobs)
        return real(*jobs)

    monkeypatch.setattr(interleave, "launch", launch)
    return seen


def test_ctrl_c_after_a_round_keeps_its_replicas(tmp_path, monkeypatch):
    """--repeat 3 over two jobs, Ctrl-C as the second round starts: both jobs' first replicas stay, pooled from
    what exists, the run is marked interrupted and the CLI exits 130."""
    seen = _interrupt_after(monkeypatch, 2)
    code = _cli(monkeypatch, "run", "--quick", "--repeat", "3", "--preset", "tiny", "--backends", "onnxruntime",
                "--batch-sizes", "1,8", "--no-report", "--out", str(tmp_path))
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    run = RunDir(folder)
    assert code == 130 and seen == [f"{r['job_id']}.r0" for r in run.records()]
    assert run.state == {"state": "interrupted", "jobs": 6, "done": 2}
    for rec in run.records():
        assert rec["status"] == "ok" and rec["repeat"] == 3 and len(rec["replicas"]) == 1
        assert any("1 of 3 replicas recorded" in w for w in rec["warnings"])
    assert recbench("export", str(folder), "--format", "csv").returncode == 0
    assert len((folder / "records.csv").read_text().splitlines()) == 3  # a header and both jobs


def test_ctrl_c_in_a_real_repeat_run_keeps_what_ended(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--quick", "--preset", "tiny", "--repeat", "3",
                             "--backends", "onnxruntime", "--batch-sizes", "1,8", "--no-report", "--out", str(out)],
                            cwd=ROOT, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("*/raw/*.npy"))) < 2 and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    assert "[1/6] " in stdout and " r0 ok p50 " in stdout  # piped: a line per replica as it ends
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    assert json.loads((folder / "state.json").read_text())["state"] == "interrupted"
    res = recbench("export", str(folder), "--format", "csv", "--out", str(tmp_path / "kept.csv"))
    assert res.returncode == 0 and len((tmp_path / "kept.csv").read_text().splitlines()) >= 2


def test_a_run_folder_without_state_json_is_no_baseline(tmp_path):
    """Written by something other than recbench's lifecycle (or before it): not known to be complete."""
    base = make_run(tmp_path, "base", {"fp32": latencies(1.0)})
    cand = make_run(tmp_path, "cand", {"fp32": latencies(1.0, seed=1)})
    (base.path / "state.json").unlink()
    for args in (("compare", str(base.path), str(cand.path)), ("gate", "--baseline", str(base.path), str(cand.path))):
        res = recbench(*args)
        assert res.returncode == 2 and "has no state.json" in res.stderr and "--allow-interrupted" in res.stderr
        assert recbench(*args, "--allow-interrupted").returncode in (0, 1)


def test_ctrl_c_during_ab_marks_both_sides_and_exits_130(tmp_path, monkeypatch):
    seen = _interrupt_after(monkeypatch, 1)  # the first pair's process ends (A and B: one process), then Ctrl-C
    code = _cli(monkeypatch, "ab", "fp32", "fp32", "--preset", "tiny", "--backends", "onnxruntime", "--batch-sizes",
                "1", "--quick", "--repeat", "2", "--out", str(tmp_path))
    side_a, side_b = sorted((tmp_path / "ab").iterdir())
    assert code == 130 and len(seen) == 2
    for side in (side_a, side_b):
        assert RunDir(side).state == {"state": "interrupted", "jobs": 2, "done": 1}
        (rec,) = RunDir(side).records()
        assert rec["status"] == "ok" and rec["replicas"][0]["replica"] == 0
