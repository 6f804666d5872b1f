"""`recbench compare`: job matching, ratios B/A, the significance verdict (the gate's ratio and CI), one-sided
jobs, outputs, bad input."""

import json

import pytest

from bench.compare import compare_runs, write
from bench.gate.regression import evaluate_regression
from bench.gate.result import FAIL
from tests.conftest import recbench
from tests.recorded_runs import copy_run, external_references, recorded_run
from tests.runs import replicated_run

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
        assert t.ci[0] <= t.value <= t.ci[1] and t.value == pytest.approx(p.ratios["p50"])
        # one replica a side: the between-process noise is assumed, not read off the iterations, and two recorded
        # runs that cannot show it never call B slower (at most inconclusive: re-run interleaved)
        assert t.ci[1] / t.ci[0] > 1.5 and p.verdict in ("faster", "not slower", "inconclusive")


def test_a_run_against_itself_shows_no_change(runs):
    cmp = compare_runs(runs[0], runs[0])
    assert cmp.pairs and not cmp.only_a and not cmp.only_b
    for p in cmp.pairs:
        assert p.ratios["p50"] == 1.0 and p.verdict not in ("faster", "slower")


@pytest.mark.parametrize(("factor", "between", "called"), [
    (1.0, 0.01, "no difference"), (1.02, 0.01, "no difference"), (1.3, 0.05, "slower"), (0.7, 0.05, "faster"),
    (0.97, 0.01, "faster"), (1.06, 0.05, "inconclusive")])
def test_compare_and_the_gate_give_a_pair_of_runs_one_ratio_and_one_verdict(tmp_path, factor, between, called):
    """Replicated runs: compare prints the gate's ratio and CI and reads it by the gate's rule at the same threshold
    (5%): slower exactly where `gate --baseline --max-regression 5%` fails, faster where the CI clears 1, no
    difference only where the whole CI lies inside ±5% (a real 2% change included), else not slower / inconclusive."""
    a = replicated_run(tmp_path, "a", 1.0, seed=1, between=between)
    b = replicated_run(tmp_path, "b", factor, seed=2, between=between)
    (pair,) = compare_runs(a.path, b.path, threshold=0.05).pairs
    checks = {c.metric: c for c in evaluate_regression(a, b, 0.05).checks}
    for stat in ("p50", "p99"):
        t = pair.tests[stat]
        assert f"x{t.value:.3f} [{t.ci[0]:.3f}, {t.ci[1]:.3f}]" in checks[f"latency_ms.{stat}"].measured
    assert (checks["latency_ms.p50"].verdict == FAIL) == (pair.verdict == "slower")
    assert pair.verdict == called, pair.tests["p50"]


def test_an_aa_pair_with_between_process_noise_is_never_slower(tmp_path):
    """Two runs of one build, 3 replicas each, 5% between-process noise: bootstrapping the pooled iterations called
    such pairs different 10 times in 10; the replicas' ratio never calls B slower, and at ±30% (wider than the noise
    over 3 replicas) reads no difference in at least nine of ten seeds."""
    def run(name: str, seed: int):
        return replicated_run(tmp_path, name, 1.0, seed=seed, replicas=3, between=0.05).path

    pairs = [compare_runs(run(f"a{s}", 100 + s), run(f"b{s}", 200 + s), threshold=0.3).pairs[0] for s in range(10)]
    assert [p.verdict for p in pairs].count("no difference") >= 9, [p.tests["p50"] for p in pairs]
    at_5 = [compare_runs(run(f"c{s}", 300 + s), run(f"d{s}", 400 + s)).pairs[0].verdict for s in range(10)]
    assert "slower" not in at_5, at_5


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
    p50 = out["pairs"][0]["tests"]["p50"]
    assert p50["ci"][0] <= p50["ratio"] <= p50["ci"][1] and "p_value" not in p50
    assert "p (MWU)" not in res.stdout


def test_cli_compare_bad_input(runs, tmp_path):
    res = recbench("compare", str(runs[0]), str(tmp_path))
    assert res.returncode == 2 and "not a recbench run folder" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout and len(res.stderr.strip().splitlines()) == 1


def test_cli_threshold(runs):
    res = recbench("compare", str(runs[0]), str(runs[0]), "--threshold", "20%", "--json")
    out = json.loads(res.stdout)
    assert res.returncode == 0 and out["threshold"] == 0.2 and out["pairs"][0]["tests"]["p50"]["verdict"]
    bad = recbench("compare", str(runs[0]), str(runs[1]), "--threshold", "five")
    assert bad.returncode == 2 and "--threshold takes a percentage" in bad.stderr, bad.stderr[-500:]
