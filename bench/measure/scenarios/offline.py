"""offline: maximum throughput through the backend's own parallelism (MLPerf Offline)."""

from __future__ import annotations

import math

import numpy as np

from bench.measure import timing
from bench.measure.drivers import run_parallel
from bench.stats import latency as stats


def run(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    t, backend = ctx.timing, ctx.backend
    warm = max(t.warmup_iters, 2 * backend.streams())
    starts, ends = run_parallel(backend, ctx.handles, warm, ctx.clock)
    rate = warm / max((ends.max() - starts.min()) / 1e9, 1e-9)  # requests/s, sizes the measured phase
    # both minimums, like the closed loop, but never planned past max_duration_s
    count = max(1, min(max(t.target_iters(), math.ceil(rate * t.min_duration_s)), math.floor(rate * t.max_duration_s)))
    starts, ends = run_parallel(backend, ctx.handles, count, ctx.clock)
    wall_s = (ends.max() - starts.min()) / 1e9
    latencies = ends - starts
    summary = stats.summarize(latencies, ctx.batch_size, wall_s, ends_ns=ends - starts.min())
    summary["streams"] = backend.streams()
    return summary, timing.Measurement(np.asarray(latencies, np.int64), wall_s, ctx.batch_size, warm)
