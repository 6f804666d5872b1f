"""single-stream: one request at a time, closed loop (MLPerf SingleStream)."""

from __future__ import annotations

from bench.measure import timing
from bench.stats import latency as stats


def run(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    m = timing.measure(ctx.backend, ctx.handles, ctx.timing, ctx.batch_size, ctx.clock)
    return {**stats.summarize(m.latencies_ns, m.samples_per_iter, m.wall_s), **stats.device_summary(m.device_ms)}, m
