"""`recbench recommend`: quality first, successive halving inside the time budget, the config reproduces the pick."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from bench.config.sweep import SweepConfig
from bench.gate.budgets import Budgets
from bench.recommend import output
from bench.recommend.judge import misses, pareto_front, rank_key, versus
from bench.run import search
from bench.run.search import Candidate, Search, Trial
from tests.conftest import recbench
from tests.fakes import FakeClock
from tests.runs import latencies, make_run

BUDGETS = {"rules": [{"select": {"model": "dlrm"},
                      "limits": {"latency_ms.p50": "<= 1 ms", "quality.auc_delta": ">= -0.001"}}]}
# speed of each (variant, backend) per sample, in us; quality delta of each variant
SPEED_US = {("fp32", "onnxruntime"): 10.0, ("int8-dynamic", "onnxruntime"): 6.0, ("prune-90", "onnxruntime"): 2.0,
            ("fp32", "openvino"): 8.0, ("int8-dynamic", "openvino"): 7.0, ("prune-90", "openvino"): 1.5}
AUC_DELTA = {"fp32": 0.0, "int8-dynamic": -0.0002, "prune-90": -0.03}


def record(c: Candidate, stage: str) -> dict:
    """What a job of this candidate would record: latency grows with the batch, threads halve it."""
    p50_ms = (0.05 + SPEED_US[(c.variant, c.backend)] * c.batch_size / 1000) / c.threads
    return {"status": "ok", "job_id": f"{c}-{stage}", "model": "dlrm", "preset": "tiny", "variant": c.variant,
            "backend": c.backend, "batch_size": c.batch_size, "latency_ms": {"p50": p50_ms, "p99": 2 * p50_ms},
            "throughput_sps": c.batch_size / p50_ms * 1e3, "model_bytes": 1e6 if c.variant == "fp32" else 4e5,
            "duration_s": 0.0, "quality": {"auc_delta": AUC_DELTA[c.variant]}}


class FakeSearch(Search):
    """The search logic with the sweeps replaced by a model of them: each job costs `job_cost` fake seconds."""

    job_cost = 1.0

    def __init__(self, clock: FakeClock, budget_s: float, **kw):
        super().__init__(SweepConfig(batch_sizes=[1, 64, 512]), Budgets(**BUDGETS), "throughput", budget_s,
                         [1, 2], out=None, log=lambda _: None, started=0.0, **kw)
        self.clock, self.timed = clock, []
        self.job_s = self.job_cost

    def measure(self, cands, timing, stage):
        self.timed += [(c, stage) for c in cands]
        replicas = search.FINAL_REPEAT if stage == "final" else 1
        self.clock.now += len(cands) * replicas * (self.job_cost + timing.min_duration_s + timing.warmup_s)
        return [Trial(c, stage, record(c, stage)) for c in cands]


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(search.time, "monotonic", c)
    return c


def test_quality_first_then_halving_finds_the_best_feasible(clock):
    s = FakeSearch(clock, budget_s=600)
    result = s.run(list(SPEED_US), [1, 64, 512])
    # prune-90 breaks the quality budget: screened once per backend, never timed again
    assert {(c.variant, st) for c, st in s.timed if c.variant == "prune-90"} == {("prune-90", "screen")}
    assert "quality.auc_delta" in result.rejected[("prune-90", "onnxruntime")]
    outcome = output.decide(result, s.budgets, "throughput")
    # the fastest per sample among feasible ones is int8-dynamic on ORT (6 us), at the largest batch that keeps
    # p50 <= 1 ms (64: 0.05 + 0.384 ms at 1 thread, 0.22 ms at 2) with 2 threads
    assert outcome.chosen.candidate == Candidate("int8-dynamic", "onnxruntime", 64, 2)
    assert [st for c, st in s.timed if c == outcome.chosen.candidate][-1] == "final"
    stages = [st for _, st in s.timed]
    assert stages.count("round 1") > stages.count("round 2") > 0  # fewer survivors each round


def test_the_time_budget_bounds_the_search(clock):
    s = FakeSearch(clock, budget_s=30)
    result = s.run(list(SPEED_US), [1, 64, 512])
    assert clock.now <= 30 * 1.05
    assert result.trials  # still an answer from what it had time for


def test_infeasible_budgets_name_the_closest_miss(clock):
    s = FakeSearch(clock, budget_s=120)
    s.budgets = Budgets(rules=[{"select": {"model": "dlrm"}, "limits": {"latency_ms.p50": "<= 1 us"}}])
    result = s.run(list(SPEED_US), [1, 64])
    outcome = output.decide(result, s.budgets, "throughput")
    assert outcome.chosen is None
    (line,) = output.closest_misses(result, s.budgets)
    assert "closest miss" in line and "batch 1, 2 threads" in line


class SlowerInTheFinal(FakeSearch):
    """The full-statistics measurement sees 20% more latency than the short rounds (a longer window, a tail)."""

    def measure(self, cands, timing, stage):
        trials = super().measure(cands, timing, stage)
        for t in trials:
            if stage == "final":
                t.record["latency_ms"] = {k: v * 1.2 for k, v in t.record["latency_ms"].items()}
        return trials


# the two best configurations (int8-dynamic at batch 64, 2 threads: 0.22 and 0.25 ms) meet it in the rounds only
NEAR_THE_LIMIT = Budgets(rules=[{"select": {"model": "dlrm"},
                                 "limits": {"latency_ms.p50": "<= 0.25 ms", "quality.auc_delta": ">= -0.001"}}])


def test_when_the_finalists_miss_the_next_best_are_measured_in_full(clock):
    s = SlowerInTheFinal(clock, budget_s=600)
    s.budgets = NEAR_THE_LIMIT
    result = s.run(list(SPEED_US), [1, 64, 512])
    outcome = output.decide(result, s.budgets, "throughput")
    assert outcome.chosen is not None, output.closest_misses(result, s.budgets)
    assert outcome.chosen.stage == "final" and not misses(outcome.chosen.record, s.budgets)
    finals = [c for c, st in s.timed if st == "final"]
    assert len(finals) > 2 and outcome.chosen.candidate not in finals[:2]  # the finalists missed; the next did not
    assert outcome.chosen.candidate.batch_size == 1


def test_no_pick_never_contradicts_the_miss_lines(clock):
    """Out of time after the finalists missed: none is recommended, and no line says that limit was met."""
    s = SlowerInTheFinal(clock, budget_s=70)  # the finalists' replicas fit, the next best's do not
    s.budgets = NEAR_THE_LIMIT
    result = s.run(list(SPEED_US), [1, 64])
    assert output.decide(result, s.budgets, "throughput").chosen is None
    p50, auc = output.closest_misses(result, s.budgets)
    assert "closest miss latency_ms.p50 0.2604 ms" in p50 and re.search(r"met in \d+ shorter measurements, not in the "
                                                                       "final", p50)
    assert " met by " not in p50
    assert "met by 2 of 2 final measurements, each of which breaks another limit" in auc


def test_affordable_counts_the_candidates_that_fit_in_order(clock):
    s = FakeSearch(clock, budget_s=100)
    s.job_s = 10.0
    cands = [Candidate("fp32", "onnxruntime", b, 1) for b in (1, 64, 512, 1024, 2048, 4096, 8192)]
    s.p50_ms[("fp32", "onnxruntime", 4096)] = 1e6  # its window runs to the timing's maximum
    timing = search.FINAL_TIMING  # no p50 known: a min_duration_s window
    fast = s.job_s + timing.warmup_s + timing.min_duration_s
    slow = s.job_s + timing.warmup_s + timing.max_duration_s
    assert 5 * fast + slow > 80 and 6 * fast <= 80
    assert s.affordable(cands, timing, reserve=20) == 5  # in order: the slow 6th stops it, though the 7th would fit
    assert s.affordable(cands, timing, reserve=100 - 5 * fast - slow) == 6  # exactly fits
    assert s.affordable(cands, timing, reserve=100) == 0


def test_markdown_table_is_the_terminal_table(clock, tmp_path):
    s = FakeSearch(clock, budget_s=600)
    result = s.run(list(SPEED_US), [1, 64, 512])
    outcome = output.decide(result, s.budgets, "throughput")
    outcome.latest[0].candidate = Candidate("a|b", "onnxruntime", 64, 2)  # a cell with a pipe keeps the table whole
    md = output.write_markdown(tmp_path / "r.md", outcome, result, "t").read_text()
    header, rule, first = md.split("## configurations")[1].splitlines()[2:5]
    assert header == "| " + " | ".join(output.HEADER) + " |"
    assert rule == "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"  # numbers right-aligned
    assert first.startswith("| a\\|b | onnxruntime | 64 | 2 |")


def test_rank_and_front():
    budgets = Budgets(**BUDGETS)
    fast = record(Candidate("int8-dynamic", "onnxruntime", 64, 2), "x")
    slow = record(Candidate("fp32", "onnxruntime", 64, 2), "x")
    too_slow = record(Candidate("fp32", "onnxruntime", 512, 1), "x")
    assert not misses(fast, budgets) and misses(too_slow, budgets)
    assert sorted([too_slow, slow, fast], key=lambda r: rank_key(r, budgets, "throughput")) == [fast, slow, too_slow]
    axes = (("throughput_sps", True), ("latency_ms.p99", False), ("model_bytes", False))
    assert pareto_front([fast, slow], axes) == [fast]


@pytest.mark.slow
def test_recommend_end_to_end_config_reproduces_and_passes_the_gate(tmp_path):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(yaml.safe_dump({"rules": [{"select": {"model": "dlrm"}, "limits": {
        "latency_ms.p50": "<= 500 ms", "quality.auc_delta": ">= -0.01"}}]}))
    cfg = tmp_path / "rec.yaml"
    res = recbench("recommend", "--preset", "tiny", "--budgets", str(budgets), "--variants", "fp32,int8-dynamic",
                   "--backends", "onnxruntime", "--batch-sizes", "1,16", "--threads", "1", "--time-budget", "90s",
                   "--write", str(cfg), "--out", str(tmp_path / "res"))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert f"config: {cfg}" in res.stdout
    chosen = yaml.safe_load(cfg.read_text())
    assert chosen["backends"] == ["onnxruntime"] and len(chosen["variants"]) == 1
    summary = json.loads(next((tmp_path / "res").glob("recommend-*/recommendation.json")).read_text())
    assert summary["chosen"]["variants"] == chosen["variants"] and summary["pareto_front"]
    rerun = recbench("run", "--config", str(cfg), "--quick", "--no-report", "--out", str(tmp_path / "rerun"))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    run_dir = next((tmp_path / "rerun").glob("*/records.jsonl")).parent
    gate = recbench("gate", "--budgets", str(budgets), str(run_dir))
    assert gate.returncode == 0, gate.stdout[-2000:]


@pytest.mark.parametrize("args, expect", [
    (["--objective", "speed"], "valid: throughput, p99, size"),
    (["--time-budget", "soon"], "positive duration"),
    (["--threads", "0"], "positive integers"),
    (["--variants", "int9"], "dlrm: fp32, fp16"),
])
def test_bad_input_exits_2(tmp_path, args, expect):
    budgets = tmp_path / "b.yaml"
    budgets.write_text(yaml.safe_dump(BUDGETS))
    res = recbench("recommend", "--budgets", str(budgets), "--preset", "tiny", *args)
    assert res.returncode == 2 and "Traceback" not in res.stderr and expect in res.stderr, res.stderr


def test_finalists_run_as_replicas_and_serving_trials_carry_their_load_settings(clock, monkeypatch, tmp_path):
    """Each stage's sweep config: replicas only in the final; a max-qps search sweeps the batcher's delays in every
    trial, and the config written for the pick keeps the delay that trial found best."""
    seen = []

    class Subset:
        def __init__(self, cfg, wanted, log):
            self.cfg = cfg

        def run(self):
            seen.append((self.cfg.out.name, self.cfg.repeat, self.cfg.scenario_options.batching))
            recs = [{**record(Candidate(v, b, bs, self.cfg.threads), "x"), "max_qps": 900.0, "p99_budget_ms": 50,
                     "batching": {"max_batch": 64, "max_delay_ms": 2.0}}
                    for v in self.cfg.variants for b in self.cfg.backends for bs in self.cfg.batch_sizes]
            return type("Run", (), {"records": lambda _: recs, "path": tmp_path})()

    monkeypatch.setattr(search, "_Subset", Subset)
    base = SweepConfig(batch_sizes=[1], scenario="max-qps", out=tmp_path,
                       scenario_options={"p99_budget_ms": 50, "batching": {"max_batch": 64, "max_delay_ms": [0, 2]}})
    s = Search(base, Budgets(**BUDGETS), "max-qps", 600, [1], tmp_path, lambda _: None, started=0.0)
    result = s.run([("fp32", "onnxruntime")], [1])
    assert {rep for name, rep, _ in seen if "final" in name} == {search.FINAL_REPEAT}
    assert {rep for name, rep, _ in seen if "final" not in name} == {1}
    assert all(b.max_delay_ms == [0, 2] for _, _, b in seen)
    outcome = output.decide(result, s.budgets, "max-qps")
    config = output.config_for(base, outcome.chosen)
    assert config["scenario"] == "max-qps" and config["scenario_options"]["batching"]["max_delay_ms"] == 2.0
    assert "max 900 QPS within p99 50 ms" in output._speed(outcome.chosen.record)


def test_recommend_help_names_the_serving_search(tmp_path):
    res = recbench("recommend", "--help")
    assert all(flag in res.stdout for flag in ("--scenario", "--concurrency", "--p99-budget-ms", "--max-delays"))
    budgets = tmp_path / "b.yaml"
    budgets.write_text(yaml.safe_dump(BUDGETS))
    res = recbench("recommend", "--budgets", str(budgets), "--preset", "tiny", "--objective", "max-qps")
    assert res.returncode == 2 and "--scenario max-qps" in res.stderr, res.stderr


def test_a_neighbour_is_read_by_the_decision_rule(tmp_path):
    """'why not' lines read a neighbour against the recommendation by the gate's rule at ±5% on the objective's latency
    statistic, replicas paired round by round within a run; no raw-latency statistic for the size objective."""
    groups = {v: [latencies(m, seed=10 * i + k) for k in range(3)]
              for i, (v, m) in enumerate({"fp32": 1.0, "int8-dynamic": 1.3, "prune-50": 1.0}.items())}
    run = make_run(tmp_path, "r", groups)
    recs = {r["variant"]: {**r, "run_dir": str(run.path)} for r in run.records()}
    assert versus(recs["int8-dynamic"], recs["fp32"], "p99").startswith("slower vs the recommended at ±5% (p99 x1.3")
    assert versus(recs["fp32"], recs["int8-dynamic"], "throughput").startswith("faster vs the recommended")
    assert versus(recs["prune-50"], recs["fp32"], "throughput").startswith("no difference vs the recommended")
    assert versus(recs["prune-50"], recs["fp32"], "size") is None
