"""max-qps: the highest Poisson QPS whose p99 (from scheduled arrival) stays within a latency budget.

Like MLPerf's peak-performance search: start at half the closed-loop capacity, double until a probe fails,
halve until one passes, then bisect (geometrically) between the best pass and the lowest fail.
"""

from __future__ import annotations

import math

from bench.errors import UserError
from bench.measure import timing
from bench.measure.scenarios import server
from bench.stats import latency as stats

MAX_PROBES = 10
RESOLUTION = 1.05  # stop when the lowest failing QPS is within 5% of the best passing one
CURVE_FIELDS = ("achieved_qps", "latency_ms", "latency_ci_ms", "late_requests", "dropped_requests", "throughput_sps",
                "queue_ms", "service_ms", "utilization")  # of each probe


def search(ctx: timing.ScenarioContext, capacity: float, traffic: server.Traffic) -> tuple[dict, server.ServerRun]:
    """One max-qps search with one batcher setting: its summary and run at the best passing QPS."""
    opts, t, budget = ctx.options, ctx.timing, ctx.options.p99_budget_ms
    enough = stats.min_samples(99)  # every probe must be able to report a p99
    curve, best, lowest_fail, summary, served = [], None, None, None, None
    qps = opts.qps or capacity / 2
    for _ in range(MAX_PROBES):
        if (requests := server.requests_for(qps, t, enough)) < enough:
            break  # this slow, max_duration_s cannot hold enough requests to judge a p99
        summary, served = server.run_at(ctx, qps, requests, traffic)
        p99 = summary["latency_ms"]["p99"]
        ok = p99 is not None and p99 <= budget and not summary["dropped_requests"]
        curve.append({"target_qps": qps, **{k: summary[k] for k in CURVE_FIELDS}, "passed": ok})
        if ok and (best is None or qps > best[0]):
            best = (qps, summary, served)
        if not ok and (lowest_fail is None or qps < lowest_fail):
            lowest_fail = qps
        if lowest_fail is None:
            qps *= 2
        elif best is None:
            qps /= 2
        elif lowest_fail / best[0] <= RESOLUTION:
            break
        else:
            qps = math.sqrt(best[0] * lowest_fail)
    if summary is None:
        raise UserError(f"max-qps: at {qps:.3g} QPS (half the capacity) {enough} requests take longer than "
                        f"max_duration_s={t.max_duration_s:g}; raise it or pass a higher --qps")
    if best is None:
        lowest = min(c["target_qps"] for c in curve)
        summary["warnings"].append(f"no QPS tried kept p99 within {budget:g} ms (lowest tried: {lowest:.3g}; below "
                                   f"{enough / (0.8 * t.max_duration_s):.3g} QPS a p99 cannot be measured "
                                   f"within max_duration_s)")
    found, summary, served = best or (None, summary, served)
    summary.update(max_qps=found, p99_budget_ms=budget, capacity_qps=capacity, curve=curve,
                   qps_source="max-qps search")
    return summary, served


def run(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    traffics = server.traffic_for(ctx)
    capacity = server.capacity_qps(ctx, traffics[0]) * ctx.options.workers
    results = [search(ctx, capacity, traffic) for traffic in traffics]
    summary, served = server.best_setting(results, lambda s: s["max_qps"] or 0.0)
    return summary, server.measurement(summary, served, ctx.batch_size)
