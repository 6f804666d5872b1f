"""The closed-loop scenarios (each request issued when one completes) and the client driver they share:
single-stream (MLPerf SingleStream), offline (MLPerf Offline) and concurrency (like perf_analyzer)."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from backends.base import Backend, Clock
from bench.measure import timing
from bench.stats import latency as stats

CURVE_FIELDS = ("throughput_sps", "throughput_ci_sps", "latency_ms", "latency_ci_ms", "stable")  # concurrency, per K


def run_closed_loop(call: Callable[[Any], None], handles: list[Any], clients: int, clock: Clock,
                    min_requests: int, min_ns: int = 0, max_ns: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`clients` threads issue requests back to back, each on its own share of `handles`, until both
    `min_requests` and `min_ns` (or `max_ns`) are reached; returns every request's start and end time (ns)."""
    if clients > len(handles):
        raise ValueError(f"{clients} clients need at least {clients} prepared handles, got {len(handles)}")
    lock = threading.Lock()
    starts, ends, issued = [], [], [0]
    begin = clock()

    def client(j: int) -> None:
        own = itertools.cycle(handles[j::clients])
        while True:
            with lock:
                elapsed = clock() - begin
                if (issued[0] >= min_requests and elapsed >= min_ns) or (max_ns is not None and elapsed >= max_ns):
                    return
                issued[0] += 1
            t0 = clock()
            call(next(own))
            t1 = clock()
            with lock:
                starts.append(t0)
                ends.append(t1)

    timing.run_threads(client, clients)
    return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


def run_parallel(backend: Backend, handles: list[Any], count: int, clock: Clock) -> tuple[np.ndarray, np.ndarray]:
    """`count` requests through the runtime's own queue, else through `streams()` closed-loop threads."""
    own = backend.infer_parallel(handles, count, clock)
    return own if own is not None else run_closed_loop(backend.infer_sync, handles, backend.streams(), clock, count)


def measured(starts: np.ndarray, ends: np.ndarray, batch_size: int, warm: int) -> tuple[dict, timing.Measurement]:
    """Record fields and the Measurement of requests that ran from `starts` to `ends` (ns), overlapping or not."""
    wall_s = (ends.max() - starts.min()) / 1e9
    m = timing.Measurement(np.asarray(ends - starts, np.int64), wall_s, batch_size, warm)
    return stats.summarize(m.latencies_ns, batch_size, wall_s, ends_ns=ends - starts.min()), m


def single_stream(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    """One request at a time."""
    m = timing.measure(ctx.backend, ctx.handles, ctx.timing, ctx.batch_size, ctx.clock, ctx.turn)
    return {**stats.summarize(m.latencies_ns, m.samples_per_iter, m.wall_s), **stats.device_summary(m.device_ms)}, m


def offline(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    """Maximum throughput through the backend's own parallelism."""
    t, backend = ctx.timing, ctx.backend
    warm = max(t.warmup_iters, 2 * backend.streams())
    starts, ends = run_parallel(backend, ctx.handles, warm, ctx.clock)
    rate = warm / max((ends.max() - starts.min()) / 1e9, 1e-9)  # requests/s, sizes the measured phase
    # both minimums, like the closed loop, but never planned past max_duration_s
    count = max(1, min(max(t.target_iters(), math.ceil(rate * t.min_duration_s)), math.floor(rate * t.max_duration_s)))
    summary, m = measured(*run_parallel(backend, ctx.handles, count, ctx.clock), ctx.batch_size, warm)
    summary["streams"] = backend.streams()
    return summary, m


def concurrency(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    """K clients back to back, swept over K: top-level fields from the K of highest throughput, `curve` every K."""
    t = ctx.timing
    warm, _ = timing.warm_up(ctx.backend, ctx.handles, t, ctx.clock)
    results = []
    for k in ctx.options.concurrency:
        spans = run_closed_loop(ctx.backend.infer_sync, ctx.handles, k, ctx.clock, t.target_iters(),
                                int(t.min_duration_s * 1e9), int(t.max_duration_s * 1e9))
        results.append((k, *measured(*spans, ctx.batch_size, warm)))
    curve = [{"concurrency": k, **{f: s[f] for f in CURVE_FIELDS}} for k, s, _ in results]
    best, summary, m = max(results, key=lambda r: r[1]["throughput_sps"])
    summary.update(concurrency=best, curve=curve)
    return summary, m
