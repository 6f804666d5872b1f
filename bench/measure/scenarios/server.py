"""server: open-loop arrivals at a target QPS, latency counted from each request's scheduled arrival.

Counting from the scheduled time (not from when a worker got to the request) keeps queueing in the numbers, so
a stalled runtime cannot hide the requests that piled up behind it (no coordinated omission). Requests carry a
fixed batch or a drawn number of candidate rows; a dynamic batcher may group them (bench/measure/serving/).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.base import Clock
from bench.config.scenario_options import ScenarioOptions
from bench.measure import timing
from bench.measure.serving import queueing, workload
from bench.measure.serving.request_handles import HandleFor, SizedHandles, TimeOrdered, rotating
from bench.stats import latency as stats

LATE_FRACTION_WARN = 0.10  # achieved QPS more than 10% under target: the system did not keep up

@dataclass
class ServerRun:
    """One open-loop run: per request its scheduled arrival, service start and end (ns from the run's start)."""

    scheduled: np.ndarray
    starts: np.ndarray  # -1: dropped (never served: the run hit its time limit first)
    ends: np.ndarray
    window_ns: int  # length of the arrival window (n / qps)
    qps: float
    workers: int
    calls: np.ndarray  # per inference call: start, end, rows, opened, due (ns from the run's start)
    rows: np.ndarray | None = None  # rows of each request (None: batch_size each)
    batching: queueing.Batching | None = None


def serve(call: Callable[[Any], None], handles: list[Any], arrivals_ns: np.ndarray, workers: int, qps: float,
          clock: Clock = time.perf_counter_ns, wait: timing.Wait = timing.real_wait, max_ns: int | None = None,
          rows: np.ndarray | None = None, batching: queueing.Batching | None = None,
          handle_for: HandleFor | None = None) -> ServerRun:
    """Serve requests arriving at `arrivals_ns` with `workers` threads taking them in arrival order (FIFO)."""
    n = len(arrivals_ns)
    sizes = np.ones(n, np.int64) if rows is None else np.asarray(rows, np.int64)
    backlog = queueing.Backlog(arrivals_ns, sizes)
    handle_for = handle_for or rotating(handles, workers)
    starts, ends = [-1] * n, [-1] * n  # lists: a numpy scalar write per request would dominate a virtual-time run
    calls: list[tuple[int, int, int, int, int]] = []
    lock = threading.Lock()
    begin = clock()

    def worker(w: int) -> None:
        while True:
            with lock:
                now = clock() - begin
                planned = backlog.next_call(now, batching)
                while planned and max_ns is not None and max(planned.opened, now) > max_ns:
                    planned = backlog.next_call(now, batching)  # out of time: these requests are dropped
            if planned is None:
                return
            while (left := begin + planned.due - clock()) > 0:
                wait(left)
            t0 = clock() - begin
            call(handle_for(w, planned.rows, planned.segments[0][0]))
            t1 = clock() - begin
            with lock:
                calls.append((t0, t1, planned.rows, planned.opened, planned.due))
                for i, _ in planned.segments:
                    starts[i] = t0 if starts[i] < 0 else min(starts[i], t0)
                    ends[i] = max(ends[i], t1)

    timing.run_threads(worker, workers)
    return ServerRun(np.asarray(arrivals_ns, np.int64), np.array(starts, np.int64), np.array(ends, np.int64),
                     int(n / qps * 1e9), qps, workers, np.array(calls, np.int64).reshape(-1, 5),
                     None if rows is None else sizes, batching)


def summarize_run(run: ServerRun, batch_size: int, budget_ms: float,
                  arrivals: str = "poisson") -> tuple[dict, np.ndarray]:
    """Record fields of a server run and its per-request latencies (ns, from the scheduled arrival)."""
    served = run.starts >= 0
    latencies = run.ends[served] - run.scheduled[served]
    queue = run.starts[served] - run.scheduled[served]
    service = run.ends[served] - run.starts[served]
    dropped = int((~served).sum())
    wall_s = max(run.window_ns, int(run.ends.max(initial=0))) / 1e9
    rows = run.rows[served] if run.rows is not None else np.full(int(served.sum()), batch_size)
    summary = stats.summarize(latencies, 1, wall_s, ends_ns=run.ends[served], open_loop=True)
    per_request = float(rows.mean()) if len(rows) else float(batch_size)
    achieved = int(served.sum()) / wall_s
    busy = int((run.calls[:, 1] - run.calls[:, 0]).sum())
    summary.update(
        throughput_sps=summary["throughput_sps"] * per_request, samples=int(rows.sum()),
        throughput_ci_sps=[v * per_request for v in summary["throughput_ci_sps"] or []] or None,
        target_qps=run.qps, achieved_qps=achieved, requests=len(run.scheduled), dropped_requests=dropped,
        late_requests=int((latencies > budget_ms * 1e6).sum()), late_threshold_ms=budget_ms, workers=run.workers,
        rows_per_request={"mean": per_request, "max": int(rows.max(initial=0))} if run.rows is not None else None,
        **queueing.breakdown(run.scheduled[served], queue, service, busy, run.window_ns, run.workers,
                             single_server=run.workers == 1 and run.batching is None, arrivals=arrivals),
    )
    if len(run.calls):  # how late calls began after they were due (thread wake-up, GIL)
        summary["wakeup_ms"] = stats.latency_summary(np.maximum(run.calls[:, 0] - run.calls[:, 4], 0))[0]
    if run.batching is not None and len(run.calls):  # what the batcher formed and how long it held batches open
        sizes, counts = np.unique(run.calls[:, 2], return_counts=True)
        held = run.calls[:, 4] - run.calls[:, 3]  # planned: from when the call could have started to when it was due
        summary.update(batching=run.batching.model_dump(), batches=len(run.calls),
                       batch_sizes_formed={str(int(s)): int(c) for s, c in zip(sizes, counts, strict=True)},
                       batch_rows_mean=float(run.calls[:, 2].mean()),
                       batch_delay_ms=stats.latency_summary(np.maximum(held, 0))[0])
    if achieved < run.qps * (1 - LATE_FRACTION_WARN):
        summary["warnings"].append(f"overloaded: achieved {achieved:.1f} QPS of the {run.qps:.1f} targeted")
    if dropped:
        summary["warnings"].append(f"{dropped} of {len(run.scheduled)} requests dropped: the run hit its time limit")
    return summary, latencies


@dataclass
class Traffic:
    """How one job's requests look: rows per request, batcher, and the handles that serve variable-size calls."""

    opts: ScenarioOptions
    sized: SizedHandles | None = None  # None: fixed batches rotating through the job's prepared handles
    batching: queueing.Batching | None = None
    timeline: TimeOrdered | None = None  # user_order time: the handle of each request of the run being bound

    def rows(self, n: int) -> np.ndarray | None:
        """Rows of n requests (None: each is one fixed batch); their calls' handles are bound here, before timing."""
        rows = self.opts.candidates.draw(n, self.opts.seed) if self.opts.candidates else None
        if self.opts.user_order == "time" and self.sized is not None:
            self.timeline = TimeOrdered(self.sized, n, rows, self.opts.seed)
        elif self.sized is not None:  # every (worker, rows) the run can ask for, prepared outside the timed region
            sizes = [self.sized.batch_size] if rows is None else rows
            sizes = range(1, self.batching.max_batch + 1) if self.batching else sizes
            for worker, k in itertools.product(range(self.opts.workers), sorted(set(int(s) for s in sizes))):
                self.sized(worker, k)
        return rows


def traffic_for(ctx: timing.ScenarioContext) -> list[Traffic]:
    """The job's traffic, one per batcher setting swept; calls of varying rows are cut from its row pool, if any."""
    opts = ctx.options
    sized = SizedHandles(ctx.backend.prepare, ctx.rows, ctx.batch_size, ctx.item_input) if ctx.rows else None
    return [Traffic(opts, sized, batching) for batching in (opts.batching.settings() if opts.batching else [None])]


def run_at(ctx: timing.ScenarioContext, qps: float, requests: int, traffic: Traffic) -> tuple[dict, np.ndarray]:
    """One open-loop run of `requests` arrivals at `qps`; returns the summary and the latencies."""
    opts = ctx.options
    offsets = opts.arrivals.offsets(requests, qps, opts.seed)
    run = serve(ctx.backend.infer_sync, ctx.handles, offsets, opts.workers, qps, ctx.clock, ctx.wait,
                max_ns=int(ctx.timing.max_duration_s * 1e9), rows=traffic.rows(requests), batching=traffic.batching,
                handle_for=traffic.timeline or traffic.sized)  # the request's own handle, else one per (worker, rows)
    summary, latencies = summarize_run(run, ctx.batch_size, opts.p99_budget_ms, opts.arrivals.kind)
    if traffic.timeline:
        summary["user_order"] = traffic.timeline.fields()
    return summary, latencies


def capacity_qps(ctx: timing.ScenarioContext, traffic: Traffic | None = None) -> float:
    """Closed-loop requests per second measured while warming up (sizes auto QPS and the max-qps search).

    With drawn request sizes the warm-up rotates through requests of drawn sizes, one call each (no batching).
    """
    handles = ctx.handles
    if traffic and traffic.sized and traffic.opts.candidates:
        handles = [traffic.sized(0, int(r)) for r in traffic.opts.candidates.draw(16, traffic.opts.seed)]
    count, elapsed = timing.warm_up(ctx.backend, handles, ctx.timing, ctx.clock)
    return count / max(elapsed, 1e-9)


def target_qps(opts: ScenarioOptions, capacity: float) -> tuple[float, str]:
    """The QPS to offer and where it came from: --qps, else a trace's own rate, else `load` x the capacity."""
    if opts.qps:
        return opts.qps, "given"
    if (trace := opts.arrivals.trace_qps()) is not None:
        return trace, f"arrival trace {opts.arrivals.file}"
    return opts.load * capacity, f"{opts.load:.0%} of capacity_qps"


def requests_for(qps: float, timing_cfg, minimum: int = 0) -> int:
    """Requests of one run: the timing's count and duration minimums, the arrivals kept within 80% of its maximum."""
    n = max(minimum, timing_cfg.target_iters(), math.ceil(qps * timing_cfg.min_duration_s))
    return max(1, min(n, math.floor(qps * timing_cfg.max_duration_s * 0.8)))


def best_setting(results: list[tuple[dict, Any]], key: Callable[[dict], float]) -> tuple[dict, Any]:
    """The result whose summary scores highest by `key`; with several batcher settings, every one in the record."""
    best = max(results, key=lambda r: key(r[0]))
    if len(results) > 1:
        best[0]["batching_sweep"] = [{k: s.get(k) for k in SWEEP_FIELDS} for s, _ in results]
    return best


SWEEP_FIELDS = ("batching", "target_qps", "achieved_qps", "throughput_sps", "latency_ms", "queue_ms", "service_ms",
                "utilization", "batch_sizes_formed", "batch_rows_mean", "batch_delay_ms", "max_qps", "curve")


def run(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    traffics, opts = traffic_for(ctx), ctx.options
    capacity = capacity_qps(ctx, traffics[0])
    qps, source = target_qps(opts, capacity)
    trace = opts.arrivals.kind == "file" and not opts.qps
    n = len(workload.read_trace(opts.arrivals.file)) if trace else requests_for(qps, ctx.timing)
    results = [run_at(ctx, qps, n, traffic) for traffic in traffics]
    summary, latencies = best_setting(results, lambda s: -(s["latency_ms"]["p99"] or s["latency_ms"]["max"]))
    summary.update(capacity_qps=capacity, qps_source=source)
    return summary, timing.Measurement(latencies, summary["duration_s"], ctx.batch_size, 0)
