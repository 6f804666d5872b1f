"""Release gates: budgets (units, validation, verdicts, JUnit/Markdown) and the regression gate, on real runs too."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from bench.errors import UserError
from bench.gate.budgets import Limit, load_budgets
from bench.gate.evaluate import evaluate_budgets
from bench.gate.metrics import METRICS
from bench.gate.output import summary, write_junit, write_markdown
from bench.gate.regression import evaluate_regression, parse_metrics, parse_threshold
from bench.gate.result import FAIL, INCONCLUSIVE, PASS, SKIP, Check, GateResult
from bench.records.history import History, default_db
from models.quality import ranking_quality
from tests.conftest import ROOT, recbench
from tests.runs import latencies, make_run, replicated_run


@pytest.mark.parametrize("metric, text, stored", [
    ("latency_ms.p99", "<= 5 ms", 5.0),
    ("latency_ms.p99", "<= 500us", 0.5),
    ("latency_ms.p99", "< 2 s", 2000.0),
    ("latency_ms.p99", "<= 250000 ns", 0.25),
    ("latency_ms.p99", "<= 3", 3.0),  # a plain number is in the field's own unit
    ("load_s", "<= 1500 ms", 1.5),
    ("peak_rss_bytes", "<= 512MiB", 512 * 2**20),
    ("model_bytes", "<= 50 MB", 50e6),
    ("gpu_mem_bytes", "<= 2GiB", 2 * 2**30),
    ("throughput_sps", ">= 20000", 20000.0),
    ("quality.auc_delta", ">= -0.001", -0.001),
    ("quality.auc_delta", "> -1e-3", -0.001),
])
def test_limits_parse_units(metric, text, stored):
    limit = Limit.parse(metric, text)
    assert limit.value == pytest.approx(stored)
    assert limit.op == text.split()[0].rstrip("0123456789.-+")


def test_example_budgets_for_the_dlrm_presets_are_valid():
    spec = load_budgets(ROOT / "scripts" / "budgets" / "dlrm.yaml")
    assert {r.select.get("preset") for r in spec.rules} >= {"tiny", "edge", "datacenter"}
    assert [r.name for r in spec.rules if not r.optional] == ["quality-near-lossless"]


def test_every_measurement_a_record_carries_is_gateable(tmp_path):
    """Quality, fidelity, footprint, energy and roofline fields can be limited, as the record names them."""
    rng = np.random.default_rng(0)
    base = rng.random(500)
    quality = ranking_quality((rng.random(500) > 0.7).astype(float), base + rng.normal(0, 1e-3, 500),
                              {"scores": base, "auc": 0.7, "logloss": 0.5})
    measured = {f"quality.{k}" for k, v in quality.items() if isinstance(v, float)}
    measured |= {"quality.ndcg_at_10_delta", "quality.hr_at_10_delta", "quality.recall_at_k_truth_delta",
                 "footprint_bytes", "peak_rss_run_bytes", "energy_j", "avg_watts", "joules_per_1k_samples",
                 "achieved_gbps", "fraction_of_peak", "roofline.compute", "roofline.gather", "bytes_per_sample"}
    assert {"quality.rank_corr", "quality.top10_overlap", "quality.top100_overlap"} <= measured
    assert measured <= set(METRICS), measured - set(METRICS)
    rec = {**make_run(tmp_path, "r1", {"fp32": latencies(1.0)}).records()[0], "quality": quality,
           "footprint_bytes": 60 * 2**20, "energy_j": 2.5, "roofline": {"compute": 0.1, "memory": None, "gather": 0.3}}
    spec = load_budgets(budgets_file(tmp_path, """
rules:
  - select: {model: dlrm}
    limits: {quality.rank_corr: ">= 0.999", quality.top100_overlap: ">= 0.9", footprint_bytes: "<= 64 MiB",
             energy_j: "<= 3", roofline.gather: "< 0.5"}
"""))
    checks = evaluate_budgets(spec, [rec], "b").checks
    assert [(c.metric, c.verdict) for c in checks] == [
        ("quality.rank_corr", PASS), ("quality.top100_overlap", PASS), ("footprint_bytes", PASS), ("energy_j", PASS),
        ("roofline.gather", PASS)]
    assert checks[2].measured == "60 MiB"
    assert [Limit.parse(m, "<= 1").metric.unit for m in ("first_infer_ms", "load_s", "max_qps")] == ["ms", "s", "qps"]


def test_design_and_gate_help_list_every_gateable_metric():
    design = (ROOT / "DESIGN.md").read_text()
    assert [m for m in METRICS if f"`{m}`" not in design] == []
    listed = recbench("gate", "--help").stdout.split("Budget metrics (limits: keys):")[1]
    names = "".join(listed.replace("│", "").split()).split(",")  # rich wraps the list between names
    assert [m for m in METRICS if m not in names] == [], listed


def budgets_file(tmp_path, text: str):
    path = tmp_path / "budgets.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("body, expect", [
    ('- {select: {backend: onnxruntime}, limits: {no_such_metric: "<= 3"}}',
     "rule 'rule1' (#1): unknown metric 'no_such_metric'; valid: latency_ms"),
    ('- {name: lat, select: {backend: x}, limits: {latency_ms.p99: "<= 5 parsecs"}}',
     "rule 'lat' (#1): limit latency_ms.p99: unit 'parsecs'"),
    ('- {select: {backend: x}, limits: {latency_ms.p99: "<= 5 MB"}}', "unit 'MB' does not fit latency_ms.p99"),
    ('- {select: {backend: x}, limits: {quality.auc_delta: ">= -1 ms"}}', "valid units: none"),
    ('- {select: {backend: x}, limits: {latency_ms.p99: "5 ms"}}', "is not '<op> <value> [unit]'"),
    ('- {select: {backend: x}, limits: {latency_ms.p99: "<= fast"}}', "cannot read 'fast'"),
    ('- {select: {backend: x}, limits: {latency_ms.p99: 5}}', "is not '<op> <value> [unit]'"),
    ('- {select: {backend: x}, limits: {}}', "limits must be a non-empty mapping"),
    ('- {name: all, select: {}, limits: {latency_ms.p99: "<= 5 ms"}}', "rule 'all' (#1): select: select is empty"),
    ('- {limits: {latency_ms.p99: "<= 5 ms"}}', "needs 'select'"),
    ('- {select: {backend: x}, limts: {latency_ms.p99: "<= 5 ms"}}', "limts"),
    ("[]", "rules: no rules"),
])
def test_malformed_budgets_are_one_line_naming_the_rule(tmp_path, body, expect):
    text = f"rules: {body}\n" if body == "[]" else f"rules:\n  {body}\n"
    with pytest.raises(UserError) as err:
        load_budgets(budgets_file(tmp_path, text))
    assert expect in str(err.value) and "\n" not in str(err.value)


def test_budget_verdicts(tmp_path):
    run = make_run(tmp_path, "r1", {"fp32": latencies(1.0), "int8_dynamic": latencies(0.5, seed=1)},
                   latency_ci_ms={"p50": [0.9, 1.1], "p99": [1.0, 1.6]})
    spec = load_budgets(budgets_file(tmp_path, """
rules:
  - name: int8
    select: {variant: "int8*", batch_size: [1, 64]}
    limits: {latency_ms.p99: "<= 5 ms", peak_rss_bytes: "<= 512MiB", quality.auc_delta: ">= -0.001"}
  - name: fp32-tight
    select: {variant: fp32}
    limits: {latency_ms.p50: "<= 500 us", throughput_sps: ">= 100"}
  - name: gpu
    optional: true
    select: {device: "cuda*"}
    limits: {gpu_mem_bytes: "<= 2GiB"}
  - name: typo
    select: {backend: onnxruntme}
    limits: {latency_ms.p99: "<= 1 s"}
  - name: not-measured
    select: {variant: fp32}
    limits: {gpu_mem_bytes: "<= 2GiB"}
"""))
    res = evaluate_budgets(spec, run.records(), "budgets.yaml")
    verdicts = {(c.rule, c.metric): c.verdict for c in res.checks}
    assert verdicts[("int8", "latency_ms.p99")] == PASS
    assert verdicts[("int8", "quality.auc_delta")] == PASS
    assert verdicts[("fp32-tight", "latency_ms.p50")] == FAIL  # ~1 ms > 500 us
    assert verdicts[("fp32-tight", "throughput_sps")] == PASS
    assert verdicts[("gpu", "-")] == SKIP  # optional and nothing selected
    assert verdicts[("typo", "-")] == FAIL  # a typo must not pass
    assert verdicts[("not-measured", "gpu_mem_bytes")] == FAIL
    assert not res.passed and len(res.failures) == 3
    assert {c.job for c in res.checks if c.rule == "int8"} == {"001-dlrm-int8_dynamic-onnxruntime-single-stream-b1"}
    p50 = next(c for c in res.checks if c.metric == "latency_ms.p50")
    assert "us [900 us, 1100 us]" in p50.measured  # shown in the limit's unit, with the CI


def test_strict_judges_the_pessimistic_ci_end(tmp_path):
    run = make_run(tmp_path, "r1", {"fp32": latencies(1.0)}, latency_ci_ms={"p50": [0.9, 1.1], "p99": [1.0, 1.6]},
                   throughput_ci_sps=[800.0, 1200.0])
    spec = load_budgets(budgets_file(tmp_path, """
rules:
  - select: {variant: fp32}
    limits: {latency_ms.p50: "<= 1.05 ms", throughput_sps: ">= 850", latency_ms.p90: "<= 1 s"}
"""))
    rec = run.records()[0]
    rec["latency_ms"]["p50"], rec["throughput_sps"] = 1.0, 1000.0
    lenient = {c.metric: c for c in evaluate_budgets(spec, [rec], "b").checks}
    strict = {c.metric: c for c in evaluate_budgets(spec, [rec], "b", strict=True).checks}
    assert lenient["latency_ms.p50"].verdict == PASS and strict["latency_ms.p50"].verdict == FAIL
    assert lenient["throughput_sps"].verdict == PASS and strict["throughput_sps"].verdict == FAIL
    assert strict["latency_ms.p90"].verdict == PASS and "no CI recorded" in strict["latency_ms.p90"].note


def test_failed_jobs_fail_and_skipped_ones_only_where_the_rule_asks(tmp_path):
    run = make_run(tmp_path, "r1", {"fp32": latencies(1.0)})
    recs = run.records()
    spec = load_budgets(budgets_file(tmp_path, """
rules:
  - {name: must, select: {variant: fp32}, limits: {latency_ms.p99: "<= 1 s"}}
  - {name: may, optional: true, select: {variant: fp32}, limits: {latency_ms.p99: "<= 1 s"}}
  - {name: ran, fail_skipped: true, select: {variant: fp32}, limits: {latency_ms.p99: "<= 1 s"}}
"""))
    for status, verdict in (("failed", FAIL), ("skipped", SKIP)):
        rec = {**recs[0], "status": status, "reason": "bf16 not in effect"}
        verdicts = {c.rule: c.verdict for c in evaluate_budgets(spec, [rec], "b").checks}
        assert verdicts == {"must": verdict, "may": verdict, "ran": FAIL}


def test_a_budget_on_an_unresolvable_percentile_says_what_it_needs(tmp_path):
    rec = {**make_run(tmp_path, "r1", {"fp32": latencies(1.0)}).records()[0], "iterations": 151, "duration_s": 10.0}
    rec["latency_ms"] = {**rec["latency_ms"], "p99": None, "p999": None}
    rule = '- {select: {variant: fp32}, limits: {latency_ms.p99: "<= 1 s", latency_ms.p999: "<= 1 s"}}'
    spec = load_budgets(budgets_file(tmp_path, f"rules:\n  {rule}\n"))
    p99, p999 = evaluate_budgets(spec, [rec], "b").checks
    assert p99.verdict == p999.verdict == FAIL
    assert "p99 not resolvable: needs >= 662 iterations" in p99.note and "have 151" in p99.note
    # --resolve p99 is the default: the cap stopped it; 662 iterations at 10 s / 151 = 66 ms each, +50%: 66 s
    assert "`recbench run --max-duration 66` measures that many at the measured 66.2 ms" in p99.note, p99.note
    assert "`recbench run --resolve p999 --max-duration 660`" in p999.note, p999.note  # 6,636 iterations


def test_select_key_that_no_record_has_is_bad_input(tmp_path):
    run = make_run(tmp_path, "r1", {"fp32": latencies(1.0)})
    spec = load_budgets(budgets_file(tmp_path, 'rules:\n  - {select: {modle: dlrm}, limits: {cv: "<= 1"}}\n'))
    with pytest.raises(UserError, match="select key 'modle' is not a field of any record; fields: .*model"):
        evaluate_budgets(spec, run.records(), "b")


def test_junit_and_markdown(tmp_path):
    run = make_run(tmp_path, "r1", {"fp32": latencies(1.0), "int8_dynamic": latencies(0.5, seed=1)})
    spec = load_budgets(budgets_file(tmp_path, """
rules:
  - {name: fast, select: {backend: onnxruntime}, limits: {latency_ms.p99: "<= 0.8 ms", model_bytes: "<= 50MB"}}
  - {name: small, select: {variant: "*"}, limits: {model_bytes: "<= 50MB"}}
  - {name: gpu, optional: true, select: {device: cuda}, limits: {gpu_mem_bytes: "<= 2GiB"}}
"""))
    res = evaluate_budgets(spec, run.records(), "budgets.yaml")
    write_junit([res], tmp_path / "j.xml", run.run_id)
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 2 + 2 + 1  # one per rule x job (the optional rule that selects nothing: one skipped case)
    failed = [c.get("classname") + "/" + c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["budgets.fast/000-dlrm-fp32-onnxruntime-single-stream-b1"]  # p99 of ~1 ms > 0.8 ms
    assert suite.get("tests") == "5" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    write_markdown([res], tmp_path / "s.md", run.run_id)
    md = (tmp_path / "s.md").read_text()
    assert md.startswith("### ❌ recbench gate FAILED: 5 passed, 1 failed, 1 skipped")
    assert md.splitlines()[8].startswith("| fast | 000-dlrm-fp32")  # failures first
    assert "- `small`: 2 checks over 2 jobs" in md  # passes grouped by rule


def test_markdown_fits_a_pull_request_comment_however_many_checks(tmp_path):
    """`--variants all` gates thousands of checks; a PR comment takes at most 65,536 characters."""
    checks = [Check(f"rule{i % 9}", f"{i:04d}-dlrm-emb-int8_int8-static-openvino-single-stream-b512",
                    "latency_ms.p99", "<= 5 ms", "7.1 ms [6.9, 7.4]", "-2.1 ms (-42%)", FAIL if i % 2 else PASS,
                    "strict: judged the pessimistic CI end") for i in range(6000)]
    write_markdown([GateResult("budgets", "dlrm.yaml", checks)], tmp_path / "s.md", "r1")
    md = (tmp_path / "s.md").read_text()
    assert len(md) < 60_000 and md.startswith("### ❌ recbench gate FAILED: 3000 passed, 3000 failed")
    assert "more failures: see the JUnit XML" in md and "- `rule0`: 334 checks over 334 jobs" in md


def test_a_gate_that_decided_nothing_never_says_passed(tmp_path):
    """Inconclusive everywhere (exit 0 by default) is "no regression found", all skipped is "nothing judged"."""
    def check(verdict):
        return Check("regression", "000-dlrm-fp32", "latency_ms.p50", "worse by <= 1%", "-", "-", verdict, "MDE 40%")

    undecided = [GateResult("regression", "base", [check(INCONCLUSIVE)] * 3)]
    assert undecided[0].passed  # the documented exit code: 0 unless --strict
    line = summary(undecided)
    assert line.startswith("gate: no regression found (3 inconclusive") and "passed:" not in line, line
    write_markdown(undecided, tmp_path / "s.md", "r1")
    assert (tmp_path / "s.md").read_text().startswith("### ❔ recbench gate: no regression found (3 inconclusive")
    assert summary([GateResult("regression", "last-pass", [check(SKIP)])]).startswith("gate: nothing judged")
    assert summary([GateResult("b", "b", [check(PASS), check(INCONCLUSIVE)])]).startswith("gate: no regression")
    assert summary([GateResult("b", "b", [check(PASS), check(SKIP)])]).startswith("gate passed: 1 passed")


@pytest.mark.parametrize("text, value", [("5%", 0.05), ("25 %", 0.25), ("0.1", 0.1), ("2.5%", 0.025)])
def test_threshold(text, value):
    assert parse_threshold(text) == pytest.approx(value)


def test_regression_metric_names():
    assert parse_metrics(None) == ("latency_ms.p50", "latency_ms.p99", "throughput_sps")
    assert parse_metrics("p95, throughput,latency_ms.mean") == ("latency_ms.p95", "throughput_sps", "latency_ms.mean")
    with pytest.raises(UserError, match="unknown regression metric p42; valid: p50"):
        parse_metrics("p42")


@pytest.mark.parametrize("text", ["5", "-5%", "five", ""])
def test_bad_threshold(text):
    with pytest.raises(UserError, match="--max-regression"):
        parse_threshold(text)


def verdicts(a, b, threshold=0.05, **kw):
    return {c.metric: c.verdict for c in evaluate_regression(a, b, threshold, **kw).checks}


def test_regression_needs_size_significance_and_power(tmp_path):
    base = replicated_run(tmp_path, "base", 1.0, seed=1)
    same = replicated_run(tmp_path, "same", 1.0, seed=2)  # A/A
    slower = replicated_run(tmp_path, "slower", 1.2, seed=3)
    slightly = replicated_run(tmp_path, "slightly", 1.01, seed=4)  # well under 5%: the whole CI within it
    noisy_base = replicated_run(tmp_path, "noisy_base", 1.0, seed=5, between=0.3)
    noisy = replicated_run(tmp_path, "noisy", 1.1, seed=6, between=0.3)  # 10% worse, replicas all over the place
    few = make_run(tmp_path, "few", {"fp32": [latencies(2.0, n=100, seed=70 + k) for k in range(2)]})  # p99: 200 its

    assert set(verdicts(base, same).values()) == {PASS}
    assert verdicts(base, slower) == {"latency_ms.p50": FAIL, "latency_ms.p99": FAIL, "throughput_sps": FAIL}
    assert verdicts(base, slightly)["latency_ms.p50"] == PASS
    # a true +3% against 5% with 4 replicas: the CI may reach past 5%; never a fail, never a pass beyond its CI
    near = {c.metric: c for c in evaluate_regression(base, replicated_run(tmp_path, "near", 1.03, seed=4), 0.05).checks}
    assert near["latency_ms.p50"].verdict != FAIL
    noisy_p50 = next(c for c in evaluate_regression(noisy_base, noisy, 0.05).checks if c.metric == "latency_ms.p50")
    # worse, but the between-replica noise hides a 5% change: inconclusive (never a silent pass), with the MDE
    assert noisy_p50.verdict == INCONCLUSIVE and "MDE" in noisy_p50.note and "MDE" in noisy_p50.measured
    assert verdicts(base, few) == {"latency_ms.p50": FAIL, "latency_ms.p99": SKIP, "throughput_sps": FAIL}
    (p99,) = [c for c in evaluate_regression(base, few, 0.05).checks if c.metric == "latency_ms.p99"]
    # which side is short, and the flag that measures enough at its rate (200 iterations of ~2 ms)
    assert p99.note.startswith("p99 not resolvable; candidate: needs >= 662 iterations") and "baseline" not in p99.note
    assert "`recbench run --max-duration 2` measures that many at the measured 2" in p99.note, p99.note
    assert verdicts(noisy_base, noisy, strict=True)["latency_ms.p50"] == INCONCLUSIVE
    assert not evaluate_regression(noisy_base, noisy, 0.05, strict=True).passed  # --strict: inconclusive fails
    assert evaluate_regression(noisy_base, noisy, 0.05).passed  # by default it does not


def test_single_replica_runs_cannot_show_their_between_process_noise(tmp_path):
    """One process per side: the between-process noise is assumed, so an A/A or a 20% change is inconclusive; and
    recorded runs that cannot show their noise never fail, even a 30x slowdown: re-run interleaved."""
    base = make_run(tmp_path, "base", {"fp32": latencies(1.0, seed=1)})
    same = make_run(tmp_path, "same", {"fp32": latencies(1.05, seed=2)})
    slower = make_run(tmp_path, "slower", {"fp32": latencies(1.2, seed=3)})
    much = make_run(tmp_path, "much", {"fp32": latencies(30.0, seed=4)})
    assert set(verdicts(base, same).values()) == {INCONCLUSIVE}
    assert verdicts(base, slower)["latency_ms.p50"] == INCONCLUSIVE
    (p50,) = [c for c in evaluate_regression(base, much, 0.05).checks if c.metric == "latency_ms.p50"]
    assert p50.verdict == INCONCLUSIVE and "one replica" in p50.note and "--rerun" in p50.note


def test_busier_candidate_host_never_fails_a_sequential_comparison(tmp_path):
    quiet = {"noise": {"busy": False, "others_cpu_share": 0.01}}
    busy = {"noise": {"busy": True, "others_cpu_share": 0.6}}
    base = replicated_run(tmp_path, "base", 1.0, seed=1)
    hogged = make_run(tmp_path, "hogged", {"fp32": [latencies(1.5, seed=k) for k in range(4)]}, **busy)
    assert verdicts(base, hogged)["latency_ms.p50"] == INCONCLUSIVE
    clean = make_run(tmp_path, "clean", {"fp32": [latencies(1.5, seed=k) for k in range(4)]}, **quiet)
    assert verdicts(base, clean)["latency_ms.p50"] == FAIL


def test_regression_jobs_without_a_baseline_are_skipped(tmp_path):
    base = make_run(tmp_path, "base", {"fp32": latencies(1.0)})
    other = make_run(tmp_path, "other", {"fp32": latencies(1.0)}, preset="edge")
    res = evaluate_regression(base, other, 0.05)
    assert [c.verdict for c in res.checks] == [SKIP, FAIL] and "matches" in res.checks[-1].note


# ---- end to end: real ONNX Runtime runs of the tiny preset through the CLI ----

def _run(out, *extra):
    res = recbench("run", "--preset", "tiny", "--backends", "onnxruntime", "--batch-sizes", "1",
                   "--out", str(out), *extra)
    assert res.returncode == 0, res.stderr[-2000:]
    return next(p for p in out.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of the same config (A/A) and one with a 3 ms busy-wait injected after every infer."""
    root = tmp_path_factory.mktemp("gate-runs")
    delayed = root / "delay.yaml"  # 1000 iterations, so that p99 is resolvable (--quick stops at ~170 here)
    delayed.write_text("backend_options:\n  onnxruntime: {inject_delay_ms: 3}\n"
                       "timing: {warmup_iters: 5, warmup_s: 0.2, min_iters: 1000, min_duration_s: 0.5, "
                       "quality_samples: 16384}\n")
    return {"a": _run(root / "a", "--quick"), "b": _run(root / "b", "--quick"),
            "slow": _run(root / "slow", "--config", str(delayed))}


def _digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_cli_budget_gate_exit_codes(runs, tmp_path):
    a = runs["a"]
    before = _digest(a)
    ok = budgets_file(tmp_path, 'rules:\n  - select: {backend: onnxruntime}\n'
                                '    limits: {latency_ms.p99: "<= 10 s", throughput_sps: ">= 1"}\n')
    res = recbench("gate", "--budgets", str(ok), str(a), "--junit", str(tmp_path / "j.xml"),
                   "--markdown", str(tmp_path / "s.md"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "gate passed: 2 passed, 0 failed" in res.stdout
    assert ET.parse(tmp_path / "j.xml").getroot().find("testsuite").get("tests") == "1"
    assert (tmp_path / "s.md").read_text().startswith("### ✅ recbench gate passed: 2 passed")
    tight = tmp_path / "tight.yaml"
    tight.write_text('rules:\n  - select: {backend: onnxruntime}\n    limits: {latency_ms.p99: "<= 1 us"}\n')
    res = recbench("gate", "--budgets", str(tight), str(a))
    assert res.returncode == 1 and "gate FAILED" in res.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text('rules:\n  - select: {backend: onnxruntime}\n    limits: {no_such_metric: "<= 3"}\n')
    res = recbench("gate", "--budgets", str(bad), str(a))
    assert res.returncode == 2 and "unknown metric 'no_such_metric'" in res.stderr
    for args in (["--budgets", str(ok), str(tmp_path)], ["--budgets", str(tmp_path / "nope.yaml"), str(a)],
                 [str(a)], ["--baseline", "last-pass", str(a), "--max-regression", "lots"]):
        res = recbench("gate", *args)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
    for res in (recbench("gate", "--budgets", str(ok), str(a)),):
        assert "Traceback" not in res.stdout + res.stderr
    assert _digest(a) == before  # gating never modifies the run
    with History(default_db(a.parent)) as h:  # nor the history: trying a budgets file out leaves last-pass alone
        assert a.name not in h.gate_status()
    assert recbench("gate", "--budgets", str(ok), str(a), "--record").returncode == 0
    with History(default_db(a.parent)) as h:
        assert h.gate_status()[a.name]


def test_cli_regression_aa_passes_and_injected_delay_is_caught(runs, tmp_path):
    a, b, slow = runs["a"], runs["b"], runs["slow"]
    with History(default_db(a.parent)) as h:  # `recbench run` recorded the run in the history beside it
        assert [r["run_id"] for r in h.runs()] == [a.name] and len(list(h.records())) == 1
    rec = json.loads((slow / "records.jsonl").read_text().splitlines()[0])
    assert rec["backend_options"]["inject_delay_ms"] == 3 and rec["latency_ms"]["p50"] >= 3
    res = recbench("gate", "--baseline", str(a), str(b), "--max-regression", "25%")
    assert res.returncode == 0, res.stdout  # A/A: same config, must pass
    # one replica a side: the delay is beyond 25% across the CI, but recorded runs cannot show their between-run
    # noise, so the gate never blames the code: inconclusive, re-run interleaved (a failure with --strict)
    res = recbench("gate", "--baseline", str(a), str(slow), "--max-regression", "25%")
    assert res.returncode == 0 and res.stdout.count("(worse than 25%") >= 2, res.stdout
    res = recbench("gate", "--baseline", str(a), str(slow), "--max-regression", "25%", "--strict", "--junit",
                   str(tmp_path / "r.xml"))
    assert res.returncode == 1 and "--rerun" in res.stdout, res.stdout
    assert ET.parse(tmp_path / "r.xml").getroot().find("testsuite").get("failures") == "1"


def test_gate_numbers_that_round_to_zero_have_no_sign():
    from bench.gate.evaluate import fmt_number

    assert fmt_number(-0.0) == "0" and fmt_number(-1e-9) == "-1e-09" and fmt_number(-12345.4) == "-12,345"
