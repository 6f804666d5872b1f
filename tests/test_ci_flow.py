"""The README's CI flow end to end on --preset tiny: run, gate with the shipped budgets and last-pass, history."""

import shutil

from bench.records.history import History, default_db
from bench.records.rundir import RunDir
from tests.conftest import ROOT, recbench

BUDGETS = ROOT / "scripts" / "budgets" / "dlrm.yaml"


def _run(out):
    # the README's `recbench run --preset edge --variants all`, cut to what a test can afford: int8-static on
    # torch-cpu is skipped by design, which the shipped budgets must not count as a failure
    res = recbench("run", "--preset", "tiny", "--quick", "--variants", "fp32,int8-static", "--backends",
                   "onnxruntime,torch-cpu", "--batch-sizes", "1", "--threads", "1", "--no-report", "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    return sorted(p for p in out.iterdir() if p.is_dir())[-1]  # the README's `ls -d results/2*/ | tail -1`


def _gate(run, tmp_path):
    # 50% instead of the README's 5%: this shared 2-core machine drifts more than that between runs
    return recbench("gate", str(run), "--budgets", str(BUDGETS), "--baseline", "last-pass", "--max-regression", "50%",
                    "--record", "--junit", str(tmp_path / "gate.xml"), "--markdown", str(tmp_path / "gate.md"))


def test_readme_ci_flow_passes_on_the_shipped_budgets(tmp_path):
    out = tmp_path / "results"
    first = _run(out)
    res = _gate(first, tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    md = (tmp_path / "gate.md").read_text()
    assert "no last-pass baseline in the history yet" in md and len(md) < 60_000
    second = _run(out)
    res = _gate(second, tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    with History(default_db(out)) as h:  # the first run became last-pass, so the second was checked against it
        assert h.resolve("last-pass", RunDir(second)).run_id == first.name
    md = (tmp_path / "gate.md").read_text()
    # judged against last-pass: pass, or inconclusive where --quick runs cannot resolve a 50% change (never a fail)
    assert "- `regression`:" in md and "no last-pass baseline" not in md
    res = recbench("history", str(out), "--preset", "tiny", "--metric", "latency_ms.p99")
    assert res.returncode == 0, res.stderr
    shutil.rmtree(out)
