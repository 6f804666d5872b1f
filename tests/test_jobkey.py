"""One JobKey for every reader: compare, the regression gate, history, reports; preset belongs to it."""

import json
from pathlib import Path

from bench.compare import compare_runs
from bench.measure.jobspec import Job
from bench.records.history import History
from bench.records.jobkey import FIELDS, SERIES_FIELDS, JobKey
from bench.report.tables import IDENTITY as TABLE_IDENTITY

RECORD = {"status": "ok", "model": "dlrm", "variant": "fp32", "backend": "onnxruntime", "device": "cpu",
          "profile": "default", "scenario": "single-stream", "batch_size": 16, "latency_ms": {"p50": 1.0, "p99": 2.0},
          "throughput_sps": 16000.0, "schema_version": 1}


def write_run(path: Path, preset: str) -> Path:
    path.mkdir()
    (path / "records.jsonl").write_text(json.dumps({**RECORD, "preset": preset, "job_id": "000"}) + "\n")
    (path / "state.json").write_text(json.dumps({"state": "complete", "jobs": 1, "done": 1}))
    return path


def test_every_reader_uses_the_same_key(tmp_path):
    with History(tmp_path / "h.sqlite") as h:  # the history's records carry the key's columns
        assert set(FIELDS) <= {row[1] for row in h.db.execute("PRAGMA table_info(records)")}
    assert "preset" in FIELDS
    assert SERIES_FIELDS == tuple(f for f in FIELDS if f != "batch_size")
    assert TABLE_IDENTITY == SERIES_FIELDS and "target" in FIELDS  # the report's tables and chart series
    key = JobKey.of({**RECORD, "preset": "tiny"})
    assert key == JobKey.of({**RECORD, "preset": "tiny", "threads": 9}) and hash(key)
    assert key != JobKey.of({**RECORD, "preset": "edge"})
    assert tuple(key.as_dict()) == FIELDS


def test_compare_never_pairs_jobs_of_different_presets(tmp_path):
    same = compare_runs(write_run(tmp_path / "a", "tiny"), write_run(tmp_path / "b", "tiny"))
    assert len(same.pairs) == 1
    cross = compare_runs(tmp_path / "a", write_run(tmp_path / "c", "edge"))
    assert not cross.pairs and len(cross.only_a) == len(cross.only_b) == 1
    assert cross.as_dict()["only_in_b"][0]["preset"] == "edge"


def write_targets(path: Path, targets: list[str]) -> Path:
    path.mkdir()
    (path / "records.jsonl").write_text("".join(json.dumps({**RECORD, "preset": "edge", "job_id": f"00{i}-{t}",
                                                            "target": t}) + "\n" for i, t in enumerate(targets)))
    (path / "state.json").write_text(json.dumps({"state": "complete", "jobs": len(targets), "done": len(targets)}))
    return path


def test_targets_stay_apart_unless_asked(tmp_path):
    """Two fleet targets of one profile and backend are two jobs; a local record (no target, or '') is neither."""
    both = compare_runs(write_targets(tmp_path / "a", ["edge-a", "edge-b"]), tmp_path / "a")
    assert sorted(p.a["target"] + p.b["target"] for p in both.pairs) == ["edge-aedge-a", "edge-bedge-b"]
    cross = compare_runs(tmp_path / "a", write_targets(tmp_path / "b", ["edge-c"]))
    assert not cross.pairs
    asked = compare_runs(write_targets(tmp_path / "c", ["edge-a"]), tmp_path / "b", across_targets=True)
    assert [(p.a["target"], p.b["target"]) for p in asked.pairs] == [("edge-a", "edge-c")]
    assert JobKey.of({**RECORD, "target": ""}) == JobKey.of(RECORD) and JobKey.of(RECORD).target is None


def test_history_trends_keep_targets_apart(tmp_path):
    from bench.records.rundir import RunDir
    from bench.report.trend import chart, trend

    run = RunDir(write_targets(tmp_path / "run", ["edge-a", "edge-b"]))
    local = RunDir(write_run(tmp_path / "local", "edge"))
    with History(tmp_path / "h.sqlite") as h:
        h.record_run(run)
        h.record_run(local)
        rows = {(r["run_id"], r["job_id"]): r for r in h.db.execute("SELECT * FROM records")}
        df = trend(h, {}, "latency_ms.p50")
    assert sorted(str(r["target"]) for r in rows.values()) == ["None", "edge-a", "edge-b"]
    assert sorted(df["target"]) == ["-", "edge-a", "edge-b"]  # three series, a local run's among them
    assert chart(df, "latency_ms.p50", tmp_path / "c.png").is_file()


def test_history_from_before_targets_gets_the_column(tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "h.sqlite")  # a history written before target joined the key
    db.execute("CREATE TABLE records (run_id TEXT NOT NULL, job_id TEXT NOT NULL, status TEXT, model TEXT, "
               "record TEXT NOT NULL, PRIMARY KEY (run_id, job_id))")
    db.execute("INSERT INTO records VALUES ('r', '000', 'ok', 'dlrm', '{}')")
    db.commit()
    db.close()
    with History(tmp_path / "h.sqlite") as h:
        assert h.db.execute("SELECT target FROM records").fetchall()[0][0] is None  # a local run: no target


def test_a_job_knows_its_key():
    from bench.config.sweep import TimingConfig

    job = Job(job_id="0", run_id="r", run_dir="d", model="dlrm", preset="tiny", variant="fp32", backend="openvino",
              backend_entry="", device="cpu", profile="edge", scenario="offline", batch_size=4, threads=1,
              timing=TimingConfig(), timeout_s=1)
    assert JobKey.of(vars(job)) == JobKey.of(job.outcome("ok"))
