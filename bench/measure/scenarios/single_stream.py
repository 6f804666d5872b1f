"""single-stream: one request at a time, closed loop (MLPerf SingleStream)."""

from __future__ import annotations

import time
from typing import Any

from backends.base import Backend
from bench.measure import timing
from bench.stats import latency as stats


def run(backend: Backend, handles: list[Any], job, clock: timing.Clock = time.perf_counter_ns
        ) -> tuple[dict, timing.Measurement]:
    m = timing.measure(backend, handles, job.timing, job.batch_size, clock)
    return {**stats.summarize(m.latencies_ns, m.samples_per_iter, m.wall_s), **stats.device_summary(m.device_ms)}, m
