"""The one decision rule (bench.stats.hboot.decide) and its operating characteristics under the sequential design
(looks at hboot.LOOKS, alpha spent by hboot.spent), by simulation: synthetic lognormal replicas with between-process
noise, part of it shared by the two replicas of an interleaved pair (a load that comes and goes)."""

import numpy as np
import pytest

from bench.gate.regression import decide
from bench.run.ab import sequential
from bench.run.progress import look_line
from bench.stats import hboot
from bench.stats.hboot import FAIL, INCONCLUSIVE, LOOKS, NO_DIFFERENCE, PASS, Estimate

T = 0.05


def est(lo: float, hi: float, replicas: int = 5) -> Estimate:
    return Estimate(float(np.sqrt(lo * hi)), (lo, hi), float(np.log(hi / lo) / 4), replicas)


@pytest.mark.parametrize(("ci", "verdict", "note"), [
    ((0.51, 0.70), PASS, "improved"),  # 40% faster: a pass, never inconclusive
    ((0.97, 1.03), PASS, NO_DIFFERENCE),
    ((0.90, 1.04), PASS, "not worse"),
    ((1.01, 1.07), INCONCLUSIVE, "reaches past 5%"),  # the MDE may be small: the CI decides, not the MDE
    ((0.60, 1.66), INCONCLUSIVE, "reaches past 5%"),
    ((1.06, 1.20), FAIL, "worse than 5%"),
])
def test_the_ci_decides(ci, verdict, note):
    got, text = hboot.decide(est(*ci), T)
    assert got == verdict and note in text


def test_recorded_runs_that_cannot_show_their_noise_never_fail():
    quiet, busy = {"noise": {"busy": False}}, {"noise": {"busy": True}}
    far = est(3.0, 5.0, replicas=1)
    assert decide(far, T, False, "1 replicas", quiet, quiet)[0] == INCONCLUSIVE  # one replica a side
    verdict, note = decide(est(3.0, 5.0, replicas=4), T, False, "4 replicas", quiet, busy)
    assert verdict == INCONCLUSIVE and "busy during the candidate" in note and "--rerun" in note
    assert decide(est(3.0, 5.0, replicas=4), T, False, "4 replicas", quiet, quiet)[0] == FAIL  # evidence it carries
    assert decide(far, T, True, "1 pairs", busy, busy)[0] == FAIL  # interleaved: the machine hit both sides


def simulate(change: float, seed: int, between: float = 0.04, shared: float = 0.15, n: int = 30) -> str:
    """One sequential A/B: pair k's two processes share a load shock, each has its own between-process noise."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for _ in range(LOOKS[-1]):
        shock = rng.normal(0, shared)
        a.append(np.exp(shock + rng.normal(0, between) + rng.normal(0, 0.1, n)))
        b.append(change * np.exp(shock + rng.normal(0, between) + rng.normal(0, 0.1, n)))
    used = 0.0
    for pairs in LOOKS:
        alpha = hboot.spent(pairs / LOOKS[-1]) - used
        used += alpha
        verdict, _ = hboot.decide(hboot.ratio(a[:pairs], b[:pairs], "p50", paired=True, seed=seed,
                                              confidence=1 - alpha), T)
        if verdict != INCONCLUSIVE:
            return verdict
    return verdict


@pytest.fixture(scope="module")
def fast_bootstrap():
    mp = pytest.MonkeyPatch()
    mp.setattr(hboot, "OUTER", 500)
    mp.setattr(hboot, "INNER", 50)
    yield
    mp.undo()


SEEDS = range(80)


def test_aa_fails_at_most_2_5_percent(fast_bootstrap):
    verdicts = [simulate(1.0, s) for s in SEEDS]
    assert verdicts.count(FAIL) <= 0.025 * len(SEEDS)
    assert verdicts.count(PASS) >= 0.85 * len(SEEDS)  # and it is decided


def test_a_change_exactly_at_the_threshold_passes_at_most_2_5_percent(fast_bootstrap):
    verdicts = [simulate(1 + T, s) for s in SEEDS]
    assert verdicts.count(PASS) <= 0.025 * len(SEEDS)


def test_a_change_of_twice_the_threshold_fails_at_least_80_percent(fast_bootstrap):
    verdicts = [simulate(1 + 2 * T, s) for s in SEEDS]
    assert verdicts.count(FAIL) >= 0.8 * len(SEEDS)


def test_sequential_looks_at_the_planned_looks_and_stops_once_decided():
    seen = []

    def look(runs, pairs, left_s, fraction):
        seen.append((pairs, fraction >= 1))
        return pairs >= 9

    until = sequential(("a", "b"), 1, LOOKS[-1], 1e6, look)
    stopped = next(k for k in range(1, LOOKS[-1] + 1) if until(k))
    assert stopped == 9 and seen == [(4, False), (6, False), (9, False)]
    seen.clear()
    until = sequential(("a", "b"), 1, 5, 1e6, look)  # at most 5 pairs: the last look at 5
    assert [until(k) for k in range(1, 6)] == [False] * 4 + [True] and seen == [(4, False), (5, True)]


def test_a_look_says_what_is_being_decided():
    line = look_line("p50 b64", (1.08, 1.03, 1.14), INCONCLUSIVE, 0.05, 100)
    assert line == "p50 b64: x1.080 [1.030, 1.140] — deciding vs 5%, <= 2 min left"
    assert look_line("p50 b64", (1.0, 0.98, 1.02), PASS, 0.05, 100).endswith("— pass")


def test_a_sequential_judge_stops_at_a_decided_look_and_prints_each_metric(tmp_path):
    from rich.console import Console

    from bench.cli.gate import judge_sequentially
    from tests.runs import replicated_run

    base = replicated_run(tmp_path, "base", 1.0, seed=1, replicas=6)
    runs = {"same": replicated_run(tmp_path, "same", 1.0, seed=2, replicas=6),
            "slower": replicated_run(tmp_path, "slower", 1.5, seed=3, replicas=6),
            "noisy": replicated_run(tmp_path, "noisy", 1.0, seed=4, replicas=6, between=0.3)}
    for name, decided in (("same", True), ("slower", True), ("noisy", False)):
        console = Console(record=True, width=200)
        stops = []

        def measure(look, n=name, s=stops):
            s.append(look((base, runs[n]), 6, 90, 0.5))
            return base, runs[n]

        _, result = judge_sequentially(console, measure, T, ("latency_ms.p50", "throughput_sps"), strict=True)
        assert stops == [decided], name
        text = console.export_text()
        assert "look 1 after 6 interleaved pairs" in text and text.count(" fp32 onnxruntime single-stream b1: x") == 2
        assert ("deciding vs 5%, <= 2 min left" in text) == (not decided), text
    assert {c.verdict for c in result.checks} == {INCONCLUSIVE}


def test_a_metric_decided_at_a_look_keeps_its_verdict_while_the_others_are_decided(tmp_path):
    """Each metric's sequential test stops at its own boundary: p50 failed at look 1 stays failed at look 2 (whose data
    alone would be inconclusive), and the comparison goes on while another metric is open."""
    from rich.console import Console

    from bench.cli.gate import judge_sequentially
    from tests.runs import replicated_run

    base = replicated_run(tmp_path, "base", 1.0, seed=1, replicas=6)
    slower = replicated_run(tmp_path, "slower", 1.5, seed=3, replicas=6)
    noisy = replicated_run(tmp_path, "noisy", 1.0, seed=4, replicas=6, between=0.3)
    stops = []

    def measure(look):
        stops.append(look((base, slower), 6, 90, 0.5))
        stops.append(look((base, noisy), 12, 0, 1.0))
        return base, noisy

    _, result = judge_sequentially(Console(record=True, width=200), measure, T, ("latency_ms.p50",), strict=False)
    assert stops == [True, True] and [c.verdict for c in result.checks] == [FAIL]
    assert result.checks[0].ratio[1] > 1 + T  # look 1's interval, not look 2's


def test_a_pass_takes_a_later_looks_pass_so_a_faster_candidate_reads_improved(tmp_path):
    """A metric that passed early ("no difference") while another was open keeps passing; when a later look passes it
    too, the tighter interval is reported ("improved" once it clears 1). A later inconclusive look never undoes it."""
    from rich.console import Console

    from bench.cli.gate import judge_sequentially
    from tests.runs import replicated_run

    base = replicated_run(tmp_path, "base", 1.0, seed=1, replicas=6)
    same = replicated_run(tmp_path, "same", 1.0, seed=2, replicas=6)
    faster = replicated_run(tmp_path, "faster", 0.7, seed=3, replicas=6)
    noisy = replicated_run(tmp_path, "noisy", 1.0, seed=4, replicas=6, between=0.3)

    def judged(*looks) -> list[str]:
        def measure(look):
            for k, runs in enumerate(looks):
                look(runs, 6 * (k + 1), 0, (k + 1) / len(looks))
            return looks[-1]
        _, result = judge_sequentially(Console(record=True, width=200), measure, T, ("latency_ms.p50",), False)
        return [f"{c.verdict}: {c.note}" for c in result.checks]

    assert judged((base, same), (base, faster))[0].startswith("pass: improved")
    assert judged((base, same), (base, noisy))[0].startswith("pass: no difference")
