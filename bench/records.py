"""The run folder: append-only records.jsonl, env.json and raw latencies, written so a crash loses nothing."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench import record
from bench.errors import UserError
from bench.record import SCHEMA_VERSION  # noqa: F401 - kept for readers that import it from here
from models.fileio import save_atomic

RECORDS = "records.jsonl"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def lookup(record: dict, path: str):
    """The value at a dotted path of a record (`latency_ms.p99`), or None where any part is missing."""
    value = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def write_json_atomic(path: Path, data) -> None:
    save_atomic(path, lambda t: t.write_text(json.dumps(data, indent=1, default=str)))


class RunDir:
    """One run's folder: `records.jsonl`, `env.json`, `config.json`, `raw/`, `logs/`, `inputs/`."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def create(cls, parent: Path, run_id: str) -> RunDir:
        run = cls(Path(parent) / run_id)
        for sub in ("raw", "logs", "inputs"):
            (run.path / sub).mkdir(parents=True, exist_ok=True)
        return run

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def records_path(self) -> Path:
        return self.path / RECORDS

    def append(self, record: dict) -> None:
        """Append one record and force it to disk before returning."""
        line = json.dumps(record, default=float, allow_nan=True) + "\n"
        with open(self.records_path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def save_raw(self, job_id: str, latencies_ns: np.ndarray) -> Path:
        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.save(f, latencies_ns)

        return save_atomic(self.path / "raw" / f"{job_id}.npy", write)

    def raw(self, job_id: str) -> np.ndarray | None:
        path = self.path / "raw" / f"{job_id}.npy"
        return np.load(path) if path.exists() else None

    def records(self) -> list[dict]:
        """Every complete record; a torn last line (interrupted write) is ignored."""
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

    def env(self) -> dict:
        path = self.path / "env.json"
        return json.loads(path.read_text()) if path.exists() else {}
