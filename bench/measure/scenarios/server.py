"""server: open-loop arrivals at a target QPS, latency counted from each request's scheduled arrival.

Counting from the scheduled time (not from when a worker got to the request) keeps queueing in the numbers, so
a stalled runtime cannot hide the requests that piled up behind it (no coordinated omission). Requests carry a
fixed batch or a drawn number of candidate rows; a dynamic batcher may group them (bench/measure/serving/).
"""

from __future__ import annotations

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
    """One open-loop run: per request its scheduled arrival, first dispatch, service start and end (ns from the run's
    start; -1: dropped, never served because the run hit its time limit first)."""

    scheduled: np.ndarray
    dispatched: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    window_ns: int  # length of the arrival window (n / qps)
    qps: float
    workers: int
    calls: np.ndarray  # per inference call: dispatch, start, end, rows, opened, due (ns from the run's start)
    rows: np.ndarray | None = None  # rows of each request (None: batch_size each)
    batching: queueing.Batching | None = None

    def latencies(self) -> np.ndarray:
        """Each served request's latency (ns) from its scheduled arrival."""
        return (self.ends - self.scheduled)[self.ends >= 0]

    def times(self) -> dict[str, np.ndarray]:
        """Per-request times as kept raw (raw/<replica>.requests.npz): queue = dispatch - scheduled, service = end -
        dispatch (gathering the batch's rows and the inference call)."""
        rows = self.rows if self.rows is not None else np.ones(len(self.scheduled), np.int64)
        return {"scheduled_ns": self.scheduled, "dispatch_ns": self.dispatched, "start_ns": self.starts,
                "end_ns": self.ends, "rows": rows}


def serve(call: Callable[[Any], None], handles: list[Any], arrivals_ns: np.ndarray, workers: int, qps: float,
          clock: Clock = time.perf_counter_ns, wait: timing.Wait = timing.real_wait, max_ns: int | None = None,
          rows: np.ndarray | None = None, batching: queueing.Batching | None = None,
          handle_for: HandleFor | None = None) -> ServerRun:
    """Serve requests arriving at `arrivals_ns` with `workers` dispatchers taking them in arrival order (FIFO).

    Live (the real wait), a generator thread enqueues each request on schedule; a free dispatcher takes the oldest
    queued request and, batching, waits until `max_batch` rows are queued or `max_delay_ms` has passed since that
    request's arrival, then forms its call from what is queued at that moment. A `wait` other than the real one is
    virtual time (tests): the queue follows the clock."""
    n = len(arrivals_ns)
    sizes = np.ones(n, np.int64) if rows is None else np.asarray(rows, np.int64)
    q = queueing.Arrived(arrivals_ns, sizes, clock, wait, live=wait is timing.real_wait)
    handle_for = handle_for or rotating(handles, workers)
    dispatched, starts, ends = [-1] * n, [-1] * n, [-1] * n  # lists: per-request numpy writes would dominate
    calls: list[tuple[int, ...]] = []
    delay = int(batching.max_delay_ms * 1e6) if batching else 0

    def worker(w: int) -> None:
        free = 0
        while True:
            with q.cond:
                q.wait_until(math.inf, 1)
                if not q.queue or q.closed:
                    return
                head = q.queue[0]
                opened, fill = max(free, q.arrivals[head]), batching.fill() if batching else q.left[head]
                q.wait_until(q.arrivals[head] + delay, fill)
                if not q.queue:
                    continue
                if max_ns is not None and q.now() > max_ns:
                    q.close()  # out of time: the requests not yet served are dropped
                    return
                now, due = q.now(), q.due(opened, q.arrivals[head] + delay, fill)
                segments = q.take(batching.call_rows(q.rows) if batching else fill)
            for i, lo, _ in segments:
                dispatched[i] = now if lo == 0 else dispatched[i]
            handle = handle_for(w, segments)
            t0 = q.now()
            call(handle)
            free = t1 = q.now()
            with q.cond:
                calls.append((now, t0, t1, sum(hi - lo for _, lo, hi in segments), opened, due))
                for i, _, _ in segments:
                    starts[i] = t0 if starts[i] < 0 else starts[i]
                    ends[i] = max(ends[i], t1)

    generator = threading.Thread(target=q.generate, daemon=True) if q.live else None
    if generator:
        generator.start()
    try:
        timing.run_threads(worker, workers)
    finally:
        if generator:
            q.close()
            generator.join()
    return ServerRun(np.asarray(arrivals_ns, np.int64), *(np.array(a, np.int64) for a in (dispatched, starts, ends)),
                     int(n / qps * 1e9), qps, workers, np.array(calls, np.int64).reshape(-1, 6),
                     None if rows is None else sizes, batching)


def summarize_run(run: ServerRun, batch_size: int, budget_ms: float,
                  arrivals: str = "poisson") -> tuple[dict, np.ndarray]:
    """Record fields of a server run and its per-request latencies (ns, from the scheduled arrival)."""
    served = run.ends >= 0
    latencies = run.latencies()
    queue = run.dispatched[served] - run.scheduled[served]
    service = run.ends[served] - run.dispatched[served]
    dropped = int((~served).sum())
    wall_s = max(run.window_ns, int(run.ends.max(initial=0))) / 1e9
    rows = run.rows[served] if run.rows is not None else np.full(int(served.sum()), batch_size)
    summary = stats.summarize(latencies, 1, wall_s, ends_ns=run.ends[served], open_loop=True)
    per_request = float(rows.mean()) if len(rows) else float(batch_size)
    achieved = int(served.sum()) / wall_s
    dispatch, end, call_rows, opened, due = run.calls[:, 0], run.calls[:, 2], run.calls[:, 3], *run.calls[:, 4:].T
    summary.update(
        throughput_sps=summary["throughput_sps"] * per_request, samples=int(rows.sum()),
        throughput_ci_sps=[v * per_request for v in summary["throughput_ci_sps"] or []] or None,
        target_qps=run.qps, achieved_qps=achieved, requests=len(run.scheduled), dropped_requests=dropped,
        late_requests=int((latencies > budget_ms * 1e6).sum()), late_threshold_ms=budget_ms, workers=run.workers,
        rows_per_request={"mean": per_request, "max": int(rows.max(initial=0))} if run.rows is not None else None,
        **queueing.breakdown(run.scheduled[served], queue, service, int((end - dispatch).sum()), run.window_ns,
                             run.workers, single_server=run.workers == 1 and run.batching is None, arrivals=arrivals),
    )
    if len(run.calls):  # how late dispatchers took calls after they were due (thread wake-ups, GIL, the generator)
        summary["dispatch_lateness_ms"] = stats.latency_summary(np.maximum(dispatch - due, 0))[0]
    if run.batching is not None and len(run.calls):  # what the batcher formed and how long it held batches open
        sizes, counts = np.unique(call_rows, return_counts=True)
        summary.update(batching=run.batching.model_dump(), batches=len(run.calls),
                       batch_sizes_formed={str(int(s)): int(c) for s, c in zip(sizes, counts, strict=True)},
                       batch_rows_mean=float(call_rows.mean()),
                       batch_delay_ms=stats.latency_summary(np.maximum(dispatch - opened, 0))[0])
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
        """Rows of n requests (None: each is one fixed batch); time-ordered requests' handles are bound here."""
        rows = self.opts.candidates.draw(n, self.opts.seed) if self.opts.candidates else None
        if self.opts.user_order == "time" and self.sized is not None:
            self.timeline = TimeOrdered(self.sized, n, rows, self.opts.seed)
        return rows


def traffic_for(ctx: timing.ScenarioContext) -> list[Traffic]:
    """The job's traffic, one per batcher setting swept; calls of varying rows are cut from its row pool, if any."""
    opts = ctx.options
    sized = SizedHandles(ctx.backend.prepare, ctx.rows, ctx.batch_size, ctx.item_input, opts.seed) if ctx.rows else None
    return [Traffic(opts, sized, batching) for batching in (opts.batching.settings() if opts.batching else [None])]


def run_at(ctx: timing.ScenarioContext, qps: float, requests: int, traffic: Traffic) -> tuple[dict, ServerRun]:
    """One open-loop run of `requests` arrivals at `qps`: its summary and the run."""
    opts = ctx.options
    offsets = opts.arrivals.offsets(requests, qps, opts.seed)
    run = serve(ctx.backend.infer_sync, ctx.handles, offsets, opts.workers, qps, ctx.clock, ctx.wait,
                max_ns=int(ctx.timing.max_duration_s * 1e9), rows=traffic.rows(requests), batching=traffic.batching,
                handle_for=traffic.timeline or traffic.sized)  # each request's own rows
    summary, _ = summarize_run(run, ctx.batch_size, opts.p99_budget_ms, opts.arrivals.kind)
    if traffic.timeline:
        summary["user_order"] = traffic.timeline.fields()
    return summary, run


def measurement(summary: dict, run: ServerRun, batch_size: int) -> timing.Measurement:
    """The measurement of the run a record reports: its latencies and, kept raw, every request's times."""
    return timing.Measurement(run.latencies(), summary["duration_s"], batch_size, 0, requests=run.times())


def capacity_qps(ctx: timing.ScenarioContext, traffic: Traffic | None = None) -> float:
    """Closed-loop requests per second measured while warming up (sizes auto QPS and the max-qps search).

    With drawn request sizes the warm-up rotates through requests of drawn sizes, one call each (no batching).
    """
    handles = ctx.handles
    if traffic and traffic.sized and traffic.opts.candidates:
        draws = traffic.opts.candidates.draw(16, traffic.opts.seed)
        handles = [traffic.sized(0, [(i, 0, int(r))]) for i, r in enumerate(draws)]
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
                "utilization", "batch_sizes_formed", "batch_rows_mean", "batch_delay_ms", "dispatch_lateness_ms",
                "max_qps", "curve")


def run(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    traffics, opts = traffic_for(ctx), ctx.options
    capacity = capacity_qps(ctx, traffics[0])
    qps, source = target_qps(opts, capacity)
    trace = opts.arrivals.kind == "file" and not opts.qps
    n = len(workload.read_trace(opts.arrivals.file)) if trace else requests_for(qps, ctx.timing)
    results = [run_at(ctx, qps, n, traffic) for traffic in traffics]
    summary, served = best_setting(results, lambda s: -(s["latency_ms"]["p99"] or s["latency_ms"]["max"]))
    summary.update(capacity_qps=capacity, qps_source=source)
    return summary, measurement(summary, served, ctx.batch_size)
