"""concurrency: K closed-loop clients issuing requests back to back, swept over K (like perf_analyzer)."""

from __future__ import annotations

from bench.measure import timing
from bench.measure.drivers import run_closed_loop
from bench.stats import latency as stats


def run(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    """Top-level fields: the K with the highest throughput; `curve`: every K measured."""
    t = ctx.timing
    warm, _ = timing.warm_up(ctx.backend, ctx.handles, t, ctx.clock)
    curve, best = [], None
    for k in ctx.options.concurrency:
        starts, ends = run_closed_loop(ctx.backend.infer_sync, ctx.handles, k, ctx.clock, t.target_iters(),
                                       int(t.min_duration_s * 1e9), int(t.max_duration_s * 1e9))
        wall_s = (ends.max() - starts.min()) / 1e9
        latencies = ends - starts
        s = stats.summarize(latencies, ctx.batch_size, wall_s, ends_ns=ends - starts.min())
        curve.append({"concurrency": k, "throughput_sps": s["throughput_sps"], "throughput_ci_sps":
                      s["throughput_ci_sps"], "latency_ms": s["latency_ms"], "latency_ci_ms": s["latency_ci_ms"],
                      "stable": s["stable"]})
        if best is None or s["throughput_sps"] > best[0]["throughput_sps"]:
            best = (s, timing.Measurement(latencies, wall_s, ctx.batch_size, warm), k)
    summary, m, k = best
    summary.update(concurrency=k, curve=curve)
    return summary, m
