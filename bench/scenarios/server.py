"""server: open-loop Poisson arrivals at a target QPS, latency counted from each request's scheduled arrival.

Counting from the scheduled time (not from when a worker got to the request) keeps queueing in the numbers, so
a stalled runtime cannot hide the requests that piled up behind it (no coordinated omission).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.base import Backend
from bench import stats, timing
from bench.drivers import run_threads
from bench.scenario_options import ScenarioOptions

SPIN_NS = 200_000  # the last 0.2 ms before an arrival is waited out by polling, not by an imprecise sleep
LATE_FRACTION_WARN = 0.10  # achieved QPS more than 10% under target: the system did not keep up

Wait = Callable[[int], None]  # wait(ns): let about ns nanoseconds pass (the real one sleeps, then polls)


def real_wait(ns: int) -> None:
    time.sleep(max(ns - SPIN_NS, 0) / 1e9)  # sleep(0) still releases the GIL while polling


def poisson_arrivals(n: int, qps: float, seed: int = 0) -> np.ndarray:
    """n arrival offsets (ns) of a Poisson process at `qps`, conditioned on n arrivals in n/qps seconds.

    Given their count, a Poisson process's arrival times are sorted uniforms: the offered rate is exactly `qps`.
    """
    rng = np.random.default_rng(seed)
    return np.sort(rng.uniform(0.0, n / qps, n) * 1e9).astype(np.int64)


@dataclass
class ServerRun:
    """One open-loop run: per request its scheduled arrival, service start and end (ns from the run's start)."""

    scheduled: np.ndarray
    starts: np.ndarray  # -1: dropped (never served: the run hit its time limit first)
    ends: np.ndarray
    window_ns: int  # length of the arrival window (n / qps)
    qps: float
    workers: int


def serve(call: Callable[[Any], None], handles: list[Any], arrivals_ns: np.ndarray, workers: int, qps: float,
          clock: timing.Clock = time.perf_counter_ns, wait: Wait = real_wait, max_ns: int | None = None) -> ServerRun:
    """Serve requests arriving at `arrivals_ns` with `workers` threads taking them in arrival order (FIFO)."""
    n = len(arrivals_ns)
    starts = np.full(n, -1, dtype=np.int64)
    ends = np.full(n, -1, dtype=np.int64)
    lock = threading.Lock()
    nxt = [0]
    begin = clock()

    def worker(w: int) -> None:
        own, used = handles[w::workers], 0
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                return
            due = begin + int(arrivals_ns[i])
            if max_ns is not None and max(due, clock()) - begin > max_ns:
                continue  # out of time: this request is dropped
            while (left := due - clock()) > 0:
                wait(left)
            starts[i] = clock() - begin
            call(own[used % len(own)])
            ends[i] = clock() - begin
            used += 1

    run_threads(worker, workers)
    return ServerRun(np.asarray(arrivals_ns, np.int64), starts, ends, int(n / qps * 1e9), qps, workers)


def summarize_run(run: ServerRun, batch_size: int, budget_ms: float) -> tuple[dict, np.ndarray]:
    """Record fields of a server run and its per-request latencies (ns, from the scheduled arrival)."""
    served = run.starts >= 0
    latencies = run.ends[served] - run.scheduled[served]
    queue = run.starts[served] - run.scheduled[served]
    dropped = int((~served).sum())
    wall_s = max(run.window_ns, int(run.ends.max(initial=0))) / 1e9
    summary = stats.summarize(latencies, batch_size, wall_s, ends_ns=run.ends[served], open_loop=True)
    achieved = int(served.sum()) / wall_s
    summary.update(
        target_qps=run.qps, achieved_qps=achieved, requests=len(run.scheduled), dropped_requests=dropped,
        late_requests=int((latencies > budget_ms * 1e6).sum()), late_threshold_ms=budget_ms, workers=run.workers,
        queue_ms={"mean": float(queue.mean() / 1e6), "p50": float(np.median(queue) / 1e6),
                  "max": float(queue.max() / 1e6)} if len(queue) else None,
    )
    if achieved < run.qps * (1 - LATE_FRACTION_WARN):
        summary["warnings"].append(f"overloaded: achieved {achieved:.1f} QPS of the {run.qps:.1f} targeted")
    if dropped:
        summary["warnings"].append(f"{dropped} of {len(run.scheduled)} requests dropped: the run hit its time limit")
    return summary, latencies


def run_at(backend: Backend, handles: list[Any], qps: float, requests: int, opts: ScenarioOptions, job,
           clock: timing.Clock = time.perf_counter_ns, wait: Wait = real_wait) -> tuple[dict, np.ndarray]:
    """One open-loop run of `requests` Poisson arrivals at `qps`; returns the summary and the latencies."""
    arrivals = poisson_arrivals(requests, qps, opts.seed)
    run = serve(backend.infer_sync, handles, arrivals, opts.workers, qps, clock, wait,
                max_ns=int(job.timing.max_duration_s * 1e9))
    return summarize_run(run, job.batch_size, opts.p99_budget_ms)


def capacity_qps(backend: Backend, handles: list[Any], job, clock: timing.Clock) -> float:
    """Closed-loop requests per second measured while warming up (sizes auto QPS and the max-qps search)."""
    count, elapsed = timing.warm_up(backend, handles, job.timing, clock)
    return count / max(elapsed, 1e-9)


def target_qps(opts: ScenarioOptions, capacity: float) -> tuple[float, str]:
    """The QPS to offer and where it came from: the --qps given, else `load` x the measured capacity."""
    return (opts.qps, "given") if opts.qps else (opts.load * capacity, f"{opts.load:.0%} of capacity_qps")


def requests_for(qps: float, timing_cfg, minimum: int = 0) -> int:
    """Requests of one run: the timing's count and duration minimums, the arrivals kept within 80% of its maximum."""
    n = max(minimum, timing_cfg.min_iters, math.ceil(qps * timing_cfg.min_duration_s))
    return max(1, min(n, math.floor(qps * timing_cfg.max_duration_s * 0.8)))


def run(backend: Backend, handles: list[Any], job, clock: timing.Clock = time.perf_counter_ns,
        wait: Wait = real_wait) -> tuple[dict, timing.Measurement]:
    opts = ScenarioOptions(**job.scenario_options)
    capacity = capacity_qps(backend, handles, job, clock)
    qps, source = target_qps(opts, capacity)
    summary, latencies = run_at(backend, handles, qps, requests_for(qps, job.timing), opts, job, clock, wait)
    summary.update(capacity_qps=capacity, qps_source=source)
    return summary, timing.Measurement(latencies, summary["duration_s"], job.batch_size, 0)
