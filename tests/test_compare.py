"""`recbench compare`: job matching, ratios B/A, the significance verdict, one-sided jobs, outputs, bad input."""

import json

import numpy as np
import pytest

from bench.compare import compare_runs, write
from tests.conftest import recbench
from tests.recorded_runs import copy_run, external_references, read_records, recorded_run, write_records

A_GRID = (("onnxruntime", "torch-cpu"), (1, 8))
B_GRID = (("onnxruntime", "openvino"), (1, 8))


@pytest.fixture(scope="module")
def runs():
    return recorded_run(*A_GRID), recorded_run(*B_GRID)


def test_matches_jobs_and_lists_one_sided_ones(runs):
    a, b = runs
    cmp = compare_runs(a, b)
    assert sorted((p.a["backend"], p.a["batch_size"]) for p in cmp.pairs) == [("onnxruntime", 1), ("onnxruntime", 8)]
    assert {r["backend"] for r in cmp.only_a} == {"torch-cpu"} and {r["backend"] for r in cmp.only_b} == {"openvino"}
    for p in cmp.pairs:
        assert p.ratios["p50"] == p.b["latency_ms"]["p50"] / p.a["latency_ms"]["p50"]
        assert p.ratios["throughput"] == p.b["throughput_sps"] / p.a["throughput_sps"]
        assert p.ratios["peak_rss"] == p.b["peak_rss_bytes"] / p.a["peak_rss_bytes"]
        t = p.tests["p50"]
        assert t.ci[0] <= t.ratio <= t.ci[1] and 0 <= t.p_value <= 1
        assert p.verdict in ("faster", "slower", "no sig. change")


def test_a_run_against_itself_shows_no_change(runs):
    cmp = compare_runs(runs[0], runs[0])
    assert cmp.pairs and not cmp.only_a and not cmp.only_b
    for p in cmp.pairs:
        assert p.ratios["p50"] == 1.0 and p.verdict == "no sig. change"


def _with_raw(run, dst, factor: float, rng_seed: int = 0):
    """A copy of `run` whose raw latencies are one fixed lognormal sample times `factor` (a known change)."""
    out = copy_run(run, dst)
    recs = read_records(out)
    base = np.random.default_rng(rng_seed).lognormal(np.log(1e6), 0.2, 3000)
    for r in recs:
        raw = (base * factor).astype(np.int64)
        np.save(out / "raw" / f"{r['job_id']}.npy", raw)
        r["latency_ms"] = {**r["latency_ms"], "p50": float(np.median(raw) / 1e6),
                           "p99": float(np.quantile(raw, 0.99) / 1e6)}
    write_records(out, recs)
    return out


def test_verdict_finds_a_known_slowdown_and_speedup(runs, tmp_path):
    a = _with_raw(runs[0], tmp_path / "a", 1.0, rng_seed=1)
    slower = _with_raw(runs[0], tmp_path / "slower", 1.3, rng_seed=2)
    faster = _with_raw(runs[0], tmp_path / "faster", 0.7, rng_seed=3)
    same = _with_raw(runs[0], tmp_path / "same", 1.0, rng_seed=4)
    assert {p.verdict for p in compare_runs(a, slower).pairs} == {"slower"}
    assert {p.verdict for p in compare_runs(a, faster).pairs} == {"faster"}
    assert {p.verdict for p in compare_runs(a, same).pairs} == {"no sig. change"}
    p = compare_runs(a, slower).pairs[0]
    assert p.tests["p50"].ci[0] > 1.2 and p.tests["p50"].ci[1] < 1.4


def test_missing_raw_is_not_tested(runs, tmp_path):
    b = copy_run(runs[0], tmp_path / "b")
    for f in (b / "raw").iterdir():
        f.unlink()
    assert {p.verdict for p in compare_runs(runs[0], b).pairs} == {"not tested"}


def test_markdown_and_html_outputs(runs, tmp_path):
    cmp = compare_runs(*runs)
    written = write(cmp, out_dir=tmp_path)
    assert {p.name for p in written} == {"compare.md", "compare.html", "compare-latency-ratios.png",
                                         "compare-latency-ratios.svg"}
    page = (tmp_path / "compare.html").read_text()
    assert external_references(page) == [] and "data:image/png;base64," in page
    assert "Jobs in one run only" in page and "openvino" in page and "torch-cpu" in page
    md = (tmp_path / "compare.md").read_text()
    assert "](compare-latency-ratios.png)" in md and "| verdict |" in md
    chart = (tmp_path / "compare-latency-ratios.svg").read_text()
    assert "onnxruntime" in chart and "p99 latency" in chart


def test_cli_compare_table_and_json(runs, tmp_path):
    res = recbench("compare", str(runs[0]), str(runs[1]), "--markdown", str(tmp_path / "c.md"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "p50 B/A" in res.stdout and "Jobs in one run only" in res.stdout and (tmp_path / "c.md").exists()
    res = recbench("compare", str(runs[0]), str(runs[1]), "--json")
    out = json.loads(res.stdout)
    assert len(out["pairs"]) == 2 and [j["backend"] for j in out["only_in_a"]] == ["torch-cpu", "torch-cpu"]
    assert out["pairs"][0]["tests"]["p50"]["ci"][0] <= out["pairs"][0]["ratios_b_over_a"]["p50"]


def test_cli_compare_bad_input(runs, tmp_path):
    res = recbench("compare", str(runs[0]), str(tmp_path))
    assert res.returncode == 2 and "not a recbench run folder" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout and len(res.stderr.strip().splitlines()) == 1
