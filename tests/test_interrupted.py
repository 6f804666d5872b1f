"""Ctrl-C during a run: the run folder is marked, and report, compare, gate and last-pass all see it."""

import json
import os
import signal
import subprocess
import sys
import time

from bench.records.history import History, default_db
from bench.records.rundir import RunDir
from tests.conftest import ROOT, recbench
from tests.runs import latencies, make_run


def test_an_interrupted_run_is_marked_and_never_a_baseline(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--quick", "--preset", "tiny", "--backends",
                             "onnxruntime", "--batch-sizes", "1,2,4,8,16", "--out", str(out)], cwd=ROOT,
                            env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
