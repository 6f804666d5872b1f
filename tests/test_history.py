"""Run history: runs recorded in SQLite, gate verdicts, last-pass baselines, rebuild, the trend table and chart."""

from __future__ import annotations

import sqlite3

import pytest

from bench.errors import UserError
from bench.records.history import History, default_db, record_run_quietly
from bench.records.rundir import RunDir
from bench.report.trend import trend
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
