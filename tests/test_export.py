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
    assert r.returncode == 2 and "Traceback" not in r.stderr \
        and "--format takes parquet, csv, bmf, gab or gab-bigger" in r.stderr
    r = recbench("export", str(tmp_path))
    assert r.returncode == 2 and "not a recbench run folder" in r.stderr


# Bencher's published BMF JSON Schema (https://bencher.dev/bmf.json) and its reference page's example
BMF_SCHEMA = {"type": "object", "patternProperties": {".+": {"type": "object", "patternProperties": {".+": {
    "type": "object", "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"},
                                     "upper_value": {"type": "number"}}, "required": ["value"]}}}}}
BMF_EXAMPLE = {"benchmark_name": {"latency": {"value": 88.0, "lower_value": 87.42, "upper_value": 88.88},
                                  "throughput": {"value": 5.55, "lower_value": 3.14, "upper_value": 6.30}},
               "my_binary": {"file-size": {"value": 42.0}}}
# github-action-benchmark's README example of customSmallerIsBetter (customBiggerIsBetter has the same shape)
GAB_EXAMPLE = [{"name": "My Custom Smaller Is Better Benchmark - CPU Load", "unit": "Percent", "value": 50},
               {"name": "My Custom Smaller Is Better Benchmark - Memory Used", "unit": "Megabytes", "value": 100,
                "range": "3", "extra": "Value for Tooltip: 25\nOptional Num #2: 100\nAnything Else!"}]
GAB_SCHEMA = {"type": "array", "items": {"type": "object", "required": ["name", "unit", "value"],
                                         "additionalProperties": False,
                                         "properties": {"name": {"type": "string"}, "unit": {"type": "string"},
                                                        "value": {"type": "number"}, "range": {"type": "string"},
                                                        "extra": {"type": "string"}}}}


def test_bmf_and_gab_exports_match_the_published_formats(run, tmp_path):
    import jsonschema

    from bench.records.rundir import RunDir
    from bench.report.export import benchmark_name

    jsonschema.validate(BMF_EXAMPLE, BMF_SCHEMA)
    jsonschema.validate(GAB_EXAMPLE, GAB_SCHEMA)
    ok = [r for r in RunDir(run).records() if r["status"] == "ok"]
    docs = {}
    for fmt in ("bmf", "gab", "gab-bigger"):
        r = recbench("export", str(run), "--format", fmt, "--out", str(tmp_path / f"{fmt}.json"))
        assert r.returncode == 0, r.stderr
        docs[fmt] = json.loads((tmp_path / f"{fmt}.json").read_text())
    jsonschema.validate(docs["bmf"], BMF_SCHEMA)
    # one benchmark per ok job, named by its identity (no run or job id: stable from run to run)
    assert set(docs["bmf"]) == {benchmark_name(r) for r in ok} and len(docs["bmf"]) == len(ok)
    assert not any(ok[0]["run_id"] in name or ok[0]["job_id"] in name for name in docs["bmf"])
    rec = ok[0]
    p50 = docs["bmf"][benchmark_name(rec)]["latency-p50-ms"]
    assert p50["value"] == rec["latency_ms"]["p50"]
    assert [p50["lower_value"], p50["upper_value"]] == rec["latency_ci_ms"]["p50"]
    for fmt, unit in (("gab", "ms"), ("gab-bigger", "samples/s")):
        jsonschema.validate(docs[fmt], GAB_SCHEMA)
        assert docs[fmt] and {e["unit"] for e in docs[fmt]} == {unit}
    assert len(docs["gab"]) == 2 * len(ok) and len(docs["gab-bigger"]) == len(ok)
