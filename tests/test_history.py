"""Run history: runs recorded in SQLite, gate verdicts, last-pass baselines, rebuild, the trend table and chart."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from scipy import stats

from bench.errors import UserError
from bench.gate.history import MODELS, boundaries, judge
from bench.gate.result import FAIL, PASS
from bench.records.history import History, default_db, machine_id, record_run_quietly
from bench.records.rundir import RunDir
from bench.report.trend import changes, trend
from tests.conftest import recbench
from tests.runs import latencies, make_run


def _runs(tmp_path):
    """Three tiny runs an hour apart and one edge run, newest last."""
    return [make_run(tmp_path, f"run{i}", {"fp32": latencies(1.0 + i / 10, seed=i)}, preset=preset,
                     started_at=f"2026-01-01T0{i}:00:00+00:00") for i, preset in enumerate(["tiny"] * 3 + ["edge"])]


def test_runs_and_records_are_recorded_and_trended(tmp_path):
    runs = _runs(tmp_path)
    with History(default_db(tmp_path)) as h:
        for run in runs:
            h.record_run(run)
        h.record_run(runs[0])  # idempotent
        assert [r["run_id"] for r in h.runs()] == ["run3", "run2", "run1", "run0"]
        row = h.runs()[-1]
        assert (row["model"], row["preset"], row["n_jobs"], row["n_ok"]) == ("dlrm", "tiny", 1, 1)
        df = trend(h, {"preset": "tiny", "variant": "fp*"}, "latency_ms.p50")
    assert list(df["run_id"]) == ["run0", "run1", "run2"]
    assert df["latency_ms.p50"].is_monotonic_increasing and set(df["gate"]) == {"-"}


def test_last_pass_picks_the_newest_passing_run_of_the_same_model_and_preset(tmp_path):
    run0, run1, run2, run3 = _runs(tmp_path)
    with History(default_db(tmp_path)) as h:
        for run in (run0, run1, run2, run3):
            h.record_run(run)
        assert h.resolve("last-pass", run2) is None  # nothing has passed a gate yet
        h.record_gate(run0, "budgets", "b.yaml", True, 0, {})
        h.record_gate(run1, "budgets", "b.yaml", False, 2, {})
        h.record_gate(run3, "budgets", "b.yaml", True, 0, {})  # passes, but another preset
        assert h.resolve("last-pass", run2).run_id == "run0"
        h.record_gate(run1, "budgets", "b2.yaml", True, 0, {})  # its latest budgets verdict now passes
        assert h.resolve("last-pass", run2).run_id == "run1"
        h.record_gate(run1, "regression", "run0", False, 1, {})  # but its regression gate failed
        assert h.resolve("last-pass", run2).run_id == "run0"
        assert h.resolve("last", run2).run_id == "run1"
        assert h.resolve("run3", run2).run_id == "run3"
        with pytest.raises(UserError, match="neither a run folder nor a run id"):
            h.resolve("nosuch", run2)


def test_rebuild_from_run_folders_keeps_gate_verdicts(tmp_path):
    runs = _runs(tmp_path)
    db = default_db(tmp_path)
    with History(db) as h:
        h.record_gate(runs[0], "budgets", "b.yaml", True, 0, {})  # records the run on the fly
        assert [r["run_id"] for r in h.runs()] == ["run0"]
    db_copy = sqlite3.connect(db)
    db_copy.execute("DELETE FROM records")
    db_copy.commit()
    db_copy.close()
    with History(db) as h:
        assert h.rebuild(tmp_path) == 4
        assert len(h.runs()) == 4 and len(list(h.records())) == 4
        assert h.gate_status() == {"run0": True}


def test_history_cli_table_chart_rebuild_and_bad_input(tmp_path):
    for run in _runs(tmp_path):
        record_run_quietly(run.path, print)
    res = recbench("history", str(tmp_path), "--preset", "tiny", "--metric", "latency_ms.p50")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("run") >= 3 and "run3" not in res.stdout
    chart = tmp_path / "history-latency_ms.p50-preset-tiny.png"  # a filtered chart has its own file
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (tmp_path / "history-latency_ms.p50.png").exists()
    default_db(tmp_path).unlink()
    res = recbench("history", str(tmp_path))
    assert res.returncode == 2 and "--rebuild" in res.stderr
    res = recbench("history", "--rebuild", str(tmp_path), "--chart", str(tmp_path / "c.png"), "--last", "2")
    assert res.returncode == 0 and "from 4 run folders" in res.stdout
    assert "run3" in res.stdout and "run1" not in res.stdout and (tmp_path / "c.png").exists()
    res = recbench("history", str(tmp_path), "--metric", "latency_ms.p42")
    assert res.returncode == 2 and "unknown metric 'latency_ms.p42'" in res.stderr


def test_gate_stores_its_verdict_and_last_pass_uses_it(tmp_path):
    base = make_run(tmp_path, "base", {"fp32": latencies(1.0, seed=1)}, started_at="2026-01-01T00:00:00+00:00")
    cand = make_run(tmp_path, "cand", {"fp32": latencies(1.0, seed=2)}, started_at="2026-01-01T01:00:00+00:00")
    budgets = tmp_path / "b.yaml"
    budgets.write_text('rules:\n  - {select: {variant: fp32}, limits: {latency_ms.p99: "<= 1 s"}}\n')
    res = recbench("gate", "--baseline", "last-pass", str(base.path), "--budgets", str(budgets), "--record")
    assert res.returncode == 0 and "1 passed, 0 failed, 1 skipped" in res.stdout  # a new history: no baseline yet
    res = recbench("gate", "--baseline", "last-pass", str(cand.path), "--max-regression", "10%", "--record")
    assert res.returncode == 0, res.stdout + res.stderr
    with History(default_db(tmp_path)) as h:
        assert h.gate_status() == {"base": True, "cand": True}


def test_an_unwritable_history_warns_but_never_fails_the_run(tmp_path):
    run = make_run(tmp_path, "r", {"fp32": latencies(1.0)})
    default_db(tmp_path).mkdir()  # a folder where the database file should be
    warnings = []
    record_run_quietly(run.path, warnings.append)
    assert len(warnings) == 1 and "not added to the history" in warnings[0]
    assert RunDir(run.path).records()


def _series(parent, medians, env=None, first=0):
    """A run per median (3 replicas each, medians wandering 1% between them), an hour apart, recorded in the history."""
    runs = []
    for i, median in enumerate(medians, start=first):
        rng = np.random.default_rng(i)
        reps = [latencies(median * rng.lognormal(0, 0.01), n=400, seed=10 * i + k) for k in range(3)]
        runs.append(make_run(parent, f"r{i:02d}", {"fp32": reps}, started_at=f"2026-01-01T{i:02d}:00:00+00:00"))
        if env:
            (runs[-1].path / "env.json").write_text(json.dumps(env))
    with History(default_db(parent)) as h:
        for run in runs:
            h.record_run(run)
    return runs


def test_machine_class_ignores_what_changes_run_to_run():
    env = {"cpu": "Xeon", "logical_cores": 8, "versions": {"onnxruntime": "1.20"}, "git_revision": "a", "env_id": "x",
           "gpus": [{"name": "H100", "sm_clock_mhz": 1900}]}
    same = env | {"git_revision": "b", "env_id": "y", "gpus": [{"name": "H100", "sm_clock_mhz": 1200}]}
    assert machine_id(env) == machine_id(same)
    assert machine_id(env) != machine_id(env | {"cpu": "EPYC"}) != machine_id(env | {"versions": {"onnxruntime": "2"}})


@pytest.mark.parametrize("model", MODELS)
def test_each_threshold_model_fails_a_step_and_passes_noise(model):
    rng = np.random.default_rng(0)
    past = [{"status": "ok", "latency_ms": {"p50": 1 + 0.01 * rng.standard_normal()}} for _ in range(10)]
    def check(p50):
        return judge("latency_ms.p50", "job", {"latency_ms": {"p50": p50}}, past, model, 0.05)
    assert check(1.3).verdict == FAIL and check(1.005).verdict == PASS
    lo, hi = boundaries(model, np.array([1.0, 2.0, 3.0, 4.0]), 1, 0.05)
    want = {"t-test": 2.5 + stats.t.ppf(0.99, 3) * np.std([1, 2, 3, 4], ddof=1) * np.sqrt(1.25),
            "z-score": 2.5 + stats.norm.ppf(0.99) * np.std([1, 2, 3, 4], ddof=1), "percentage": 2.5 * 1.05,
            "iqr": 3.25 + 1.5 * 1.5}[model]
    assert hi == pytest.approx(want) and lo < 2.5


def test_gate_history_fails_a_step_passes_before_it_and_never_crosses_machines(tmp_path):
    runs = _series(tmp_path, [1.0] * 8 + [1.25] * 2)
    res = recbench("gate", "--history", str(runs[8].path), "--max-regression", "10%")
    assert res.returncode == 1 and "fail" in res.stdout, res.stdout + res.stderr
    res = recbench("gate", "--history", str(runs[6].path), "--max-regression", "10%", "--window", "4")
    assert res.returncode == 0 and "6 runs" not in res.stdout and "4 runs" in res.stdout, res.stdout + res.stderr
    other = _series(tmp_path, [1.6], env={"cpu": "another"}, first=10)[0]  # slower, but on another machine class
    res = recbench("gate", "--history", str(other.path), "--max-regression", "10%")
    assert res.returncode == 0 and "0 comparable earlier runs" in res.stdout, res.stdout + res.stderr
    res = recbench("gate", "--history", str(runs[8].path), "--model", "bogus")
    assert res.returncode == 2 and "--model takes" in res.stderr


def test_change_points_name_the_step_mark_the_chart_and_can_fail_the_gate(tmp_path):
    runs = _series(tmp_path, [1.0] * 10 + [1.25] * 4)
    _series(tmp_path, [2.0] * 3, env={"cpu": "another"}, first=20)  # another machine: its own series
    res = recbench("history", str(tmp_path), "--change-points", "--metric", "latency_ms.p50", "--chart",
                   str(tmp_path / "c.png"))
    assert res.returncode == 0 and "1 change points" in res.stdout and (tmp_path / "c.png").exists(), res.stdout
    line = next(s.split() for s in res.stdout.splitlines() if s.strip().startswith("r10 "))  # ..., magnitude, 1-p, p
    assert float(line[-3]) == pytest.approx(0.25, abs=0.03) and float(line[-1]) < 0.001
    with History(default_db(tmp_path)) as h:
        df = trend(h, {}, "latency_ms.p50")
        assert df["machine"].nunique() == 2
        mine = df["machine"].iloc[0]
        assert set(changes(trend(h, {}, "latency_ms.p50", mine), "latency_ms.p50")["run_id"]) == {"r10"}
    res = recbench("history", str(tmp_path), "--machine", mine, "--metric", "latency_ms.p50")
    assert res.returncode == 0 and "r20" not in res.stdout and "r01" in res.stdout
    fresh = ("gate", "--history", "--fail-on-change", "--max-regression", "50%", "--metrics", "p50")
    res = recbench(*fresh, str(runs[10].path))
    assert res.returncode == 1 and "change-point" in res.stdout, res.stdout + res.stderr
    assert recbench(*fresh, str(runs[7].path)).returncode == 0
