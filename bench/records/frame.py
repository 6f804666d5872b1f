"""Runs as data: a run folder as a pandas DataFrame (one row per record, flattened columns) and its export."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.errors import UserError
from bench.records.rundir import RunDir

FORMATS = ("parquet", "csv")


def load_run(path: str | Path, raw: bool = False) -> pd.DataFrame:
    """One row per record of the run folder, nested fields as dotted columns (`latency_ms.p50`); `raw=True` adds
    `raw_latency_ms`, each job's per-iteration latencies (ms, a numpy array; None where not recorded)."""
    run = RunDir(Path(path))
    records = run.records()
    frame = pd.json_normalize(records, sep=".")
    if raw:
        frame["raw_latency_ms"] = [run.latencies(r) for r in records]
    return frame


def _tabular(column: pd.Series) -> pd.Series:
    """A column a file format can hold: lists and mappings as JSON text, mixed scalar types as text."""
    values = column.dropna()
    if any(isinstance(v, list | dict | tuple) for v in values):
        return column.map(lambda v: json.dumps(v, default=str) if isinstance(v, list | dict | tuple) else v)
    if len({type(v) for v in values}) > 1:
        return column.map(lambda v: None if v is None else str(v))
    return column


def export_run(path: str | Path, fmt: str, out: Path | None = None) -> Path:
    """Write the run's records as Parquet (pyarrow) or CSV; returns the file written (default RUN/records.<fmt>)."""
    if fmt not in FORMATS:
        raise UserError(f"--format takes {', '.join(FORMATS)}, bmf, gab or gab-bigger, got '{fmt}'")
    frame = load_run(path)
    frame = frame.apply(lambda c: _tabular(c) if c.dtype == object else c)
    out = Path(out) if out else Path(path) / f"records.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(out, engine="pyarrow", index=False)
    else:
        frame.to_csv(out, index=False)
    return out
