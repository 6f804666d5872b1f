"""offline: maximum throughput through the backend's own parallelism (MLPerf Offline)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from backends.base import Backend
from bench.measure import timing
from bench.measure.drivers import run_parallel
from bench.stats import latency as stats


def run(backend: Backend, handles: list[Any], job, clock: timing.Clock = time.perf_counter_ns
        ) -> tuple[dict, timing.Measurement]:
    t = job.timing
    warm = max(t.warmup_iters, 2 * backend.streams())
    starts, ends = run_parallel(backend, handles, warm, clock)
    rate = warm / max((ends.max() - starts.min()) / 1e9, 1e-9)  # requests/s, sizes the measured phase
    # both minimums, like the closed loop, but never planned past max_duration_s
    count = max(1, min(max(t.target_iters(), math.ceil(rate * t.min_duration_s)), math.floor(rate * t.max_duration_s)))
    starts, ends = run_parallel(backend, handles, count, clock)
    wall_s = (ends.max() - starts.min()) / 1e9
    latencies = ends - starts
    summary = stats.summarize(latencies, job.batch_size, wall_s, ends_ns=ends - starts.min())
    summary["streams"] = backend.streams()
    return summary, timing.Measurement(np.asarray(latencies, np.int64), wall_s, job.batch_size, warm)
