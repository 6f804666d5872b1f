"""Runs as data: bench.load_run and `recbench export` round-trip a real run with the same numbers."""

import json

import numpy as np
import pandas as pd
import pytest

import bench
from tests.conftest import recbench
from tests.recorded_runs import recorded_run

GRID = (("onnxruntime", "torch-cpu"), (1, 8))  # the report tests' run: recorded once per session


@pytest.fixture(scope="module")
def run():
    return recorded_run(*GRID)


def test_load_run_is_one_row_per_record_with_flat_columns(run):
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    frame = bench.load_run(run, raw=True)
    assert len(frame) == len(records) and {"latency_ms.p50", "latency_ms.p99", "throughput_sps"} <= set(frame.columns)
    ok = frame[frame["status"] == "ok"]
    assert list(ok["latency_ms.p50"]) == [r["latency_ms"]["p50"] for r in records if r["status"] == "ok"]
    raw = ok["raw_latency_ms"].iloc[0]
    assert raw.size == ok["iterations"].iloc[0] and np.isclose(np.median(raw), ok["latency_ms.p50"].iloc[0])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_round_trips_the_numbers(run, tmp_path, fmt):
    out = tmp_path / f"r.{fmt}"
    r = recbench("export", str(run), "--format", fmt, "--out", str(out))
    assert r.returncode == 0, r.stderr
    back = pd.read_parquet(out) if fmt == "parquet" else pd.read_csv(out)
    frame = bench.load_run(run)
    for column in ("latency_ms.p50", "latency_ms.p99", "throughput_sps", "peak_rss_bytes", "batch_size"):
        assert np.allclose(back[column], frame[column], rtol=0 if fmt == "parquet" else 1e-12, equal_nan=True)
    assert list(back["backend"]) == list(frame["backend"])


def test_export_bad_input_is_one_line(tmp_path):
    r = recbench("export", str(tmp_path), "--format", "xlsx")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "--format takes parquet or csv" in r.stderr
    r = recbench("export", str(tmp_path))
    assert r.returncode == 2 and "not a recbench run folder" in r.stderr
