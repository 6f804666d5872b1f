"""The run folder: append-only records.jsonl (one validated line per replica as it ends), env.json and raw
latencies, written so a crash loses nothing; read back as one record per job (bench.records.pooled)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.errors import UserError
from bench.records import pooled
from bench.records import schema as record
from models.fileio import save_atomic

RECORDS = "records.jsonl"
STATE = "state.json"  # {"state": running | complete | interrupted | failed, "jobs": planned, "done": recorded}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def replica_id(job_id: str, k: int, repeat: int) -> str:
    """The name of replica k's raw and log files: `<job>.r<k>`, or `<job>` for a job measured once."""
    return f"{job_id}.r{k}" if repeat > 1 else job_id


def write_json_atomic(path: Path, data) -> None:
    save_atomic(path, lambda t: t.write_text(json.dumps(data, indent=1, default=str)))


class RunDir:
    """One run's folder: `records.jsonl`, `env.json`, `config.json`, `raw/`, `logs/`, `inputs/`."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, parent: Path, run_id: str) -> RunDir:
        run = cls(Path(parent) / run_id)
        try:
            for sub in ("raw", "logs", "inputs"):
                (run.path / sub).mkdir(parents=True, exist_ok=True)
        except (NotADirectoryError, FileExistsError):
            raise UserError(f"--out {parent}: a file is in the way; --out takes a folder (run folders go "
                            "inside it)") from None
        except OSError as e:
            raise UserError(f"--out {parent}: cannot create a run folder there: {e.strerror}") from None
        run.records_path.touch()  # an interrupted run with no finished job is still a run folder
        return run

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS

    def append(self, result: dict) -> None:
        """Validate one result (`schema.build`) and append it, on disk (fsync) before this returns."""
        line = json.dumps(record.build(result), default=float, allow_nan=True) + "\n"
        with open(self.records_path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def mark(self, state: str, **info) -> None:
        """Say where the run stands: `running` from its start, `complete` or `interrupted` at its end."""
        write_json_atomic(self.path / STATE, {"state": state, **info})

    @property
    def state(self) -> dict:
        """The run's state; a folder without state.json was never finished by recbench: not complete."""
        path = self.path / STATE
        return json.loads(path.read_text()) if path.exists() else {"state": "unknown"}

    def recorded(self) -> int:
        """How many results records.jsonl holds (its complete lines)."""
        if not self.records_path.exists():
            return 0
        return sum(1 for line in self.records_path.read_text().splitlines() if line.endswith("}"))

    @property
    def interrupted(self) -> bool:
        """True unless the run finished its whole job grid (Ctrl-C, a kill, or still running)."""
        return self.state.get("state") != "complete"

    def interruption(self) -> str:
        """One line for readers: what stopped this run and how far it got ('' for a complete run)."""
        if not self.interrupted:
            return ""
        st = self.state
        how = {"interrupted": "was interrupted", "failed": f"failed ({st.get('error')})",
               "unknown": "has no state.json (not finished by recbench)"}.get(
            st.get("state"), "did not finish (killed, or still running)")
        return f"run {self.run_id} {how}: {st.get('done', '?')} of {st.get('jobs', '?')} results recorded"

    def refuse_interrupted(self, what: str, allow: bool) -> None:
        """An incomplete run is no baseline unless the user asks for it."""
        if self.interrupted and not allow:
            raise UserError(f"{self.interruption()}; not used as {what} (pass --allow-interrupted to use it anyway)")

    def save_raw(self, name: str, latencies_ns: np.ndarray) -> Path:
        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.save(f, latencies_ns)

        return save_atomic(self.path / "raw" / f"{name}.npy", write)

    def save_requests(self, name: str, times: dict[str, np.ndarray]) -> Path:
        """raw/<name>.requests.npz: a server replica's per-request times (ns) and rows."""
        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.savez(f, **times)

        return save_atomic(self.path / "raw" / f"{name}.requests.npz", write)

    def requests(self, name: str) -> dict[str, np.ndarray] | None:
        """raw/<name>.requests.npz as saved, or None."""
        path = self.path / "raw" / f"{name}.requests.npz"
        return dict(np.load(path)) if path.exists() else None

    def raw(self, name: str) -> np.ndarray | None:
        """raw/<name>.npy: one replica's per-iteration latencies (ns), or None."""
        path = self.path / "raw" / f"{name}.npy"
        return np.load(path) if path.exists() else None

    def latencies(self, record: dict) -> np.ndarray | None:
        """A job's per-iteration latencies (ms): its measured replicas' samples in replica order, or None."""
        groups = replica_raws(self, record)
        return None if groups is None else np.concatenate(groups)

    def lines(self) -> list[dict]:
        """Every complete line of records.jsonl, migrated and validated; a torn last line (a cut write) is ignored."""
        if not self.records_path.exists():
            raise UserError(f"{self.path} is not a recbench run folder (no {RECORDS})")
        out = []
        for line in self.records_path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            out.append(record.read(rec, str(self.path)))
        return out

    def records(self) -> list[dict]:
        """One record per job, its replicas' lines merged (bench.records.pooled); derived once per state of
        records.jsonl in this process (readers call this often)."""
        stat = self.records_path.stat() if self.records_path.exists() else None
        return [dict(r) for r in _records(self.path, stat and (stat.st_size, stat.st_mtime_ns), not self.interrupted)]

    def op_table(self, record: dict) -> dict | None:
        """A job's op profile (ops/<job>.json), or None where it was not profiled (or the file is gone)."""
        rel = (record.get("op_profile") or {}).get("file")
        try:
            return json.loads((self.path / rel).read_text()) if rel else None
        except (OSError, json.JSONDecodeError):
            return None

    def env(self) -> dict:
        path = self.path / "env.json"
        return json.loads(path.read_text()) if path.exists() else {}


@lru_cache(maxsize=32)
def _records(path: Path, _version: tuple[int, int] | None, complete: bool) -> list[dict]:
    run = RunDir(path)
    return pooled.jobs(run.lines(), lambda line: run.raw(replica_id(line["job_id"], line["replica"],
                                                                     line.get("repeat") or 1)), complete)


def replica_raws(run: RunDir, record: dict) -> list[np.ndarray] | None:
    """Each ok replica's raw latencies (ms); one group (the whole raw file) for a record without replicas."""
    reps = [s["replica"] for s in record.get("replicas") or [] if s["status"] == "ok"]
    raws = [run.raw(replica_id(record["job_id"], k, record["repeat"])) for k in reps] or [run.raw(record["job_id"])]
    if any(r is None or len(r) < 2 for r in raws):
        return None
    return [r.astype(np.float64) / 1e6 for r in raws]
