"""Run history: every run's metadata, environment, records and gate verdicts in one SQLite file beside the runs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import USER_ERRORS, UserError
from bench.records.jobkey import FIELDS, JobKey
from bench.records.rundir import RECORDS, RunDir, now_iso

# A job's identity columns are the JobKey's fields (job ids carry a grid index, which may differ across runs).
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, path TEXT NOT NULL, model TEXT, preset TEXT, started_at TEXT,
    git_revision TEXT, env_id TEXT, n_jobs INTEGER, n_ok INTEGER, config TEXT, env TEXT, recorded_at TEXT);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL, job_id TEXT NOT NULL, status TEXT, {", ".join(FIELDS)}, record TEXT NOT NULL,
    PRIMARY KEY (run_id, job_id));
CREATE TABLE IF NOT EXISTS gates (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, kind TEXT NOT NULL, source TEXT,
    passed INTEGER NOT NULL, n_failed INTEGER, checked_at TEXT NOT NULL, result TEXT);
"""
REFS = ("last-pass", "last")
PER_RUN = ("git_revision", "env_id", "gpus")  # what changes between runs of one machine (gpus: their clocks)


def machine_id(env: dict) -> str:
    """A run's machine class: its environment (CPU, cores, OS, runtime versions, GPU names) but what changes from run
    to run of one machine (the git revision, GPU clocks); runs of different classes are never thresholded together."""
    stable = {k: v for k, v in env.items() if k not in PER_RUN}
    stable["gpus"] = [g.get("name") for g in env.get("gpus") or []]
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:12]


def default_db(results_dir: Path) -> Path:
    """The history database of a results folder (where `recbench run --out` puts its run folders)."""
    return Path(results_dir) / "history.sqlite"


class History(AbstractContextManager):
    """The SQLite history database; open with `with History(path) as h:`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.executescript(SCHEMA)
            known = {row[1] for row in self.db.execute("PRAGMA table_info(records)")}
            for column in (c for c in FIELDS if c not in known):  # a database from before a key field existed
                self.db.execute(f"ALTER TABLE records ADD COLUMN {column}")
        except (OSError, sqlite3.Error) as e:
            raise UserError(f"cannot open the history database {self.path}: {e}") from None

    def __exit__(self, *exc) -> None:
        self.db.close()

    def record_run(self, run: RunDir) -> None:
        """Insert or replace one run with its records (idempotent)."""
        records = run.records()
        config_path = run.path / "config.json"
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        env = run.env()
        first = records[0] if records else {}
        started = min((r["started_at"] for r in records if r.get("started_at")), default=None) \
            or datetime.fromtimestamp(run.path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
        with self.db:
            self.db.execute("DELETE FROM records WHERE run_id = ?", (run.run_id,))
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (run.run_id, str(run.path.resolve()), config.get("model", first.get("model")),
                 first.get("preset", config.get("preset")), started, env.get("git_revision"),
                 env.get("env_id"), len(records), sum(r.get("status") == "ok" for r in records),
                 json.dumps(config), json.dumps(env), now_iso()))
            self.db.executemany(
                f"INSERT OR REPLACE INTO records (run_id, job_id, status, {', '.join(FIELDS)}, record) "
                f"VALUES (?,?,?,{','.join('?' * len(FIELDS))},?)",
                [(run.run_id, r["job_id"], r.get("status"), *JobKey.of(r).as_dict().values(), json.dumps(r))
                 for r in records])

    def record_gate(self, run: RunDir, kind: str, source: str, passed: bool, n_failed: int, result: dict) -> None:
        if not self.db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run.run_id,)).fetchone():
            self.record_run(run)
        with self.db:
            self.db.execute("INSERT INTO gates (run_id, kind, source, passed, n_failed, checked_at, result) "
                            "VALUES (?,?,?,?,?,?,?)", (run.run_id, kind, source, int(passed), n_failed, now_iso(),
                                                       json.dumps(result)))

    def rebuild(self, folder: Path) -> int:
        """Re-read every run folder under `folder`; gate verdicts (not stored in run folders) are kept."""
        runs = [RunDir(records.parent) for records in sorted(Path(folder).rglob(RECORDS))]
        with self.db:
            self.db.execute("DELETE FROM records")
            self.db.execute("DELETE FROM runs")
            for run in runs:
                self.record_run(run)
            self.db.execute("DELETE FROM gates WHERE run_id NOT IN (SELECT run_id FROM runs)")
        return len(runs)

    def runs(self, machine: str | None = None) -> list[sqlite3.Row]:
        """Every run (of one machine class), newest first."""
        rows = self.db.execute("SELECT * FROM runs ORDER BY started_at DESC, run_id DESC").fetchall()
        return [r for r in rows if machine is None or machine_id(json.loads(r["env"] or "{}")) == machine]

    def gate_status(self) -> dict[str, bool]:
        """run_id -> whether its latest verdict of every gate kind passed (runs never gated are absent)."""
        rows = self.db.execute(
            "SELECT run_id, MIN(passed) FROM (SELECT run_id, passed, ROW_NUMBER() OVER (PARTITION BY run_id, kind "
            "ORDER BY checked_at DESC, id DESC) AS newest FROM gates) WHERE newest = 1 GROUP BY run_id")
        return {run_id: bool(passed) for run_id, passed in rows}

    def records(self, machine: str | None = None) -> Iterator[tuple[sqlite3.Row, dict]]:
        """(run row, record) for every record (of one machine class), oldest run first."""
        runs = {r["run_id"]: r for r in self.runs(machine)}
        for row in self.db.execute("SELECT r.run_id, r.record FROM records r JOIN runs USING (run_id) "
                                   "ORDER BY runs.started_at, r.run_id, r.job_id"):
            if row["run_id"] in runs:
                yield runs[row["run_id"]], json.loads(row["record"])

    def resolve(self, ref: str, candidate: RunDir) -> RunDir | None:
        """A baseline: `last-pass` (newest run of the same model/preset whose gates all passed), `last`, or a run id.

        None when a ref finds no run yet (a new history); an unknown run id is an error.
        """
        if ref not in REFS:
            row = self.db.execute("SELECT path FROM runs WHERE run_id = ?", (ref,)).fetchone()
            if row is None:
                raise UserError(f"baseline '{ref}' is neither a run folder nor a run id in {self.path}; "
                                f"refs: {', '.join(REFS)}")
            return RunDir(Path(row["path"]))
        first = (candidate.records() or [{}])[0]
        model, passed = (first.get("model"), first.get("preset")), self.gate_status()
        for row in self.runs():
            run = RunDir(Path(row["path"]))  # an incomplete run is never a ref's baseline
            if (row["model"], row["preset"]) == model and row["run_id"] != candidate.run_id and not run.interrupted \
                    and (ref == "last" or passed.get(row["run_id"])):
                return run
        return None


def record_run_quietly(run_path: Path, warn) -> None:
    """Add a finished run to the history beside it; a history problem never fails the run itself."""
    try:
        with History(default_db(run_path.parent)) as h:
            h.record_run(RunDir(run_path))
    except (*USER_ERRORS, sqlite3.Error, OSError) as e:
        warn(f"warning: run not added to the history database: {e}")
