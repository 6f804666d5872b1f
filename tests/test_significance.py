import numpy as np

from bench.stats.significance import compare_latencies


def test_same_distribution_is_not_significant():
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(0, 0.3, 20_000), rng.lognormal(0, 0.3, 20_000)
    c = compare_latencies(a, b, "p50")
    assert c.ci[0] < 1 < c.ci[1] and not c.significant


def test_a_ten_percent_slowdown_is_found():
    rng = np.random.default_rng(2)
    a = rng.lognormal(0, 0.3, 20_000)
    b = rng.lognormal(0, 0.3, 20_000) * 1.10
    for stat in ("p50", "p99", "mean"):
        c = compare_latencies(a, b, stat)
        assert c.significant and c.ci[0] > 1.0, stat
    assert abs(compare_latencies(a, b, "p50").ratio - 1.10) < 0.02
