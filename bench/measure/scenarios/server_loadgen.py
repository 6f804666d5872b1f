"""server-loadgen: the server scenario driven by MLPerf's own LoadGen (pip install mlcommons-loadgen), to
cross-check recbench's `server` against the industry reference on the same job.

LoadGen schedules the Poisson arrivals and measures latency from each query's scheduled time itself; its
results land in the record under `loadgen`. Our `latency_ms` counts from the moment LoadGen issued a query.
"""

from __future__ import annotations

import json
import queue
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from bench.measure import timing
from bench.measure.scenarios import server
from bench.measure.serving.request_handles import rotating
from bench.stats import latency as stats

RESULTS = {"result_scheduled_samples_per_sec": "scheduled_qps", "result_completed_samples_per_sec": "completed_qps",
           "result_validity": "validity", "result_invalid_reason": "invalid_reason",
           "early_stopping_result": "early_stopping", "result_overlatency_query_count": "overlatency_queries",
           "result_query_count": "queries"}
PERCENTILES = {"result_50.00_percentile_latency_ns": "p50_ms", "result_90.00_percentile_latency_ns": "p90_ms",
               "result_99.00_percentile_latency_ns": "p99_ms", "result_mean_latency_ns": "mean_ms"}


def read_results(log_dir: Path) -> dict:
    """LoadGen's own result lines (":::MLLOG {json}") from mlperf_log_detail.txt."""
    out: dict[str, Any] = {}
    for line in (log_dir / "mlperf_log_detail.txt").read_text().splitlines():
        entry = json.loads(line.split(" ", 1)[1]) if line.startswith(":::MLLOG") else {}
        key, value = entry.get("key"), entry.get("value")
        if key in RESULTS:
            out[RESULTS[key]] = value.strip() if isinstance(value, str) else value
        elif key in PERCENTILES:
            out[PERCENTILES[key]] = value / 1e6
    return out


def run(ctx: timing.ScenarioContext) -> tuple[dict, timing.Measurement]:
    import mlperf_loadgen as lg

    opts, backend, handles, clock = ctx.options, ctx.backend, ctx.handles, ctx.clock
    capacity = server.capacity_qps(ctx)
    qps, source = server.target_qps(opts, capacity)
    n = server.requests_for(qps, ctx.timing)
    pending: queue.Queue = queue.Queue()
    issued: dict[int, int] = {}
    done: list[tuple[int, int]] = []  # (issue time, end time) per completed query
    errors: list[BaseException] = []

    def issue(samples) -> None:
        now = clock()
        for s in samples:
            issued[s.id] = now
            pending.put(s.id)

    handle_for = rotating(handles, opts.workers)

    def worker(w: int) -> None:
        while (qid := pending.get()) is not None:
            try:
                if not errors:
                    backend.infer_sync(handle_for(w, []))
            except BaseException as e:  # noqa: BLE001 - every query must still complete, or LoadGen waits forever
                errors.append(e)
            end = clock()
            done.append((issued[qid], end))
            lg.QuerySamplesComplete([lg.QuerySampleResponse(qid, 0, 0)])

    settings = lg.TestSettings()
    settings.scenario, settings.mode = lg.TestScenario.Server, lg.TestMode.PerformanceOnly
    settings.server_target_qps = qps
    settings.server_target_latency_ns = int(opts.p99_budget_ms * 1e6)
    settings.min_query_count = settings.max_query_count = n
    settings.min_duration_ms = int(n / qps * 1000)
    with tempfile.TemporaryDirectory() as log_dir:
        logs = lg.LogSettings()
        logs.log_output.outdir, logs.log_output.copy_summary_to_stdout = log_dir, False
        sut = lg.ConstructSUT(issue, lambda: None)
        qsl = lg.ConstructQSL(len(handles), len(handles), lambda s: None, lambda s: None)
        serving = threading.Thread(target=timing.run_threads, args=(worker, opts.workers), daemon=True)
        serving.start()
        begin = clock()
        lg.StartTestWithLogSettings(sut, qsl, settings, logs)
        wall_s = (clock() - begin) / 1e9
        for _ in range(opts.workers):
            pending.put(None)
        serving.join()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        results = read_results(Path(log_dir))
    if errors:
        raise errors[0]
    starts, ends = np.array(done, dtype=np.int64).T
    latencies = ends - starts
    summary = stats.summarize(latencies, ctx.batch_size, wall_s, ends_ns=ends - begin, open_loop=True)
    summary.update(target_qps=qps, achieved_qps=results.get("completed_qps"), requests=n, workers=opts.workers,
                   late_requests=results.get("overlatency_queries"), late_threshold_ms=opts.p99_budget_ms,
                   capacity_qps=capacity, qps_source=source, loadgen=results)
    return summary, timing.Measurement(latencies, wall_s, ctx.batch_size, 0)
