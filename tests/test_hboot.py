"""bench.stats.hboot.ratio: the one ratio B/A with its CI (compare, gates, speedups, fidelity all call it)."""

import numpy as np
import pytest

from bench.stats import hboot


def _replicas(median: float, n: int, seed: int, between: float = 0.01, size: int = 2000) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [median * rng.lognormal(0, between) * rng.lognormal(0, 0.3, size) for _ in range(n)]


def test_a_ten_percent_slowdown_over_replicas_is_found_and_an_aa_is_not():
    a, b, same = _replicas(1.0, 5, 1), _replicas(1.10, 5, 2), _replicas(1.0, 5, 3)
    for stat in ("p50", "p99", "mean"):
        slower = hboot.ratio(a, b, stat)
        assert slower.ci[0] > 1.0 and slower.value == pytest.approx(1.10, abs=0.03), stat
    aa = hboot.ratio(a, same, "p50")
    assert aa.ci[0] < 1 < aa.ci[1]


def test_a_side_measured_in_one_process_gets_the_noise_it_cannot_show():
    """One process a side: the iterations alone would give a CI of a few percent around a 1.0x A/A; the assumed
    between-process noise (SINGLE_REPLICA_CV per such side) is added, paired or not."""
    (a,), (b,) = _replicas(1.0, 1, 1, size=20_000), _replicas(1.0, 1, 2, size=20_000)
    unseen = np.sqrt(2) * np.log1p(hboot.SINGLE_REPLICA_CV)
    for paired in (False, True):
        est = hboot.ratio([a], [b], "p50", paired=paired)
        assert est.se_log == pytest.approx(unseen, rel=0.05) and est.ci[0] < 0.7 and est.ci[1] > 1.4
    one_side = hboot.ratio([a], _replicas(1.0, 4, 3), "p50")
    assert one_side.se_log == pytest.approx(np.log1p(hboot.SINGLE_REPLICA_CV), rel=0.2)


def test_pairing_needs_as_many_replicas_on_both_sides():
    a, b = _replicas(1.0, 4, 1), _replicas(1.0, 3, 2)
    assert hboot.ratio(a, b, "p50", paired=True) == hboot.ratio(a, b, "p50", paired=False)


def test_the_estimate_is_the_geometric_mean_of_the_replicas_statistics():
    groups = [np.array([1.0, 2.0, 3.0]), np.array([4.0, 8.0, 12.0])]
    est = hboot.pooled(groups, "p50")
    assert est.value == pytest.approx(np.sqrt(2.0 * 8.0)) and est.replicas == 2


@pytest.mark.parametrize(("ci", "said"), [((1.08, 1.2), hboot.SLOWER), ((0.8, 0.97), hboot.FASTER),
                                          ((0.97, 1.04), hboot.NO_DIFFERENCE), ((0.9, 1.04), hboot.NOT_SLOWER),
                                          ((1.02, 1.08), hboot.INCONCLUSIVE), ((0.9, 1.1), hboot.INCONCLUSIVE)])
def test_a_comparison_reads_the_decision_rule_both_ways(ci, said):
    """compare, the heatmap and recommend word the one rule at T = 5%: slower only when the whole CI lies beyond 5%."""
    est = hboot.Estimate(float(np.sqrt(ci[0] * ci[1])), ci, 0.05, 5)
    assert hboot.reading(*hboot.decide(est, 0.05)) == said
    back = est.inverse
    assert back.ci == pytest.approx((1 / ci[1], 1 / ci[0])) and back.value == pytest.approx(1 / est.value)


def test_a_tail_between_two_modes_keeps_a_finite_interval():
    """p99 on the edge of descheduling pauses (~1% of calls 60x slower, as under a CPU hog at batch 1): a replica's p99
    is either mode. Its inner draws were shifted on the linear scale and went below 0, blowing a paired A/A interval
    up to [0.000, 1e19]; rescaled on the log scale it stays an honest, finite interval around 1."""
    rng = np.random.default_rng(7)

    def replica() -> np.ndarray:
        x = rng.lognormal(np.log(0.065), 0.1, 4500)
        x[rng.random(4500) < rng.uniform(0.004, 0.016)] = 4.1
        return x

    a, b = [replica() for _ in range(40)], [replica() for _ in range(40)]
    est = hboot.ratio(a, b, "p99", paired=True)
    assert 0.3 < est.ci[0] < 1 < est.ci[1] < 3, est


def test_replicas_carry_their_own_sampling_noise_so_it_is_not_counted_twice():
    """ORT b1 under a hog: 1.2-2.2% of calls in every replica are ~4.16 ms pauses, so every replica's p99 sits in the
    pause mode and pairs agree to 0.4%. Resampling each replica's iterations as well as the replicas drew p99s from
    the normal mode too and read this A/A [0.83, 1.20]; resampling the replicas only, the interval is the pairs'
    spread, and it still covers 1."""
    rng = np.random.default_rng(11)

    def replica() -> np.ndarray:
        x = rng.lognormal(np.log(0.09), 0.2, 4500)
        x[rng.random(4500) < rng.uniform(0.012, 0.022)] = 4.16 * rng.lognormal(0, 0.002)
        return x

    a, b = [replica() for _ in range(40)], [replica() for _ in range(40)]
    est = hboot.ratio(a, b, "p99", paired=True)
    assert 0.99 < est.ci[0] < 1 < est.ci[1] < 1.01, est
    spread = np.std(np.log([np.quantile(y, 0.99) / np.quantile(x, 0.99) for x, y in zip(a, b, strict=True)]), ddof=1)
    assert est.se_log == pytest.approx(spread / np.sqrt(40), rel=0.1)
