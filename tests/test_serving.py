"""Serving realism: queueing theory in virtual time, the dynamic batcher, arrival traces, request sizes, bad input."""

import numpy as np
import pytest

from bench.config.scenario_options import ScenarioOptions
from bench.config.sweep import SweepConfig, TimingConfig, build_config
from bench.errors import UserError
from bench.measure.scenarios import max_qps, server
from bench.measure.serving.queueing import Batching
from bench.measure.serving.workload import Arrivals, Candidates
from bench.measure.timing import ScenarioContext
from bench.records import schema as record_schema
from bench.report.build import build_report
from bench.run.sweep import Sweep
from tests.conftest import recbench
from tests.fakes import ScriptedBackend

MS = 1_000_000


def virtual(delays_ns) -> tuple[ScriptedBackend, callable]:
    backend = ScriptedBackend(list(delays_ns))

    def wait(ns: int) -> None:  # virtual time: waiting just moves the clock
        backend.clock.now += ns

    return backend, wait


@pytest.mark.parametrize("service", ["deterministic", "exponential"])
@pytest.mark.parametrize("rho, tolerance", [(0.5, 0.05), (0.8, 0.05), (0.9, 0.10)])
def test_queue_wait_matches_md1_and_mm1(service, rho, tolerance):
    """Poisson arrivals, one worker, 1 ms mean service: M/D/1 Wq = rho/(2 mu (1-rho)), M/M/1 Wq = rho/(mu (1-rho))."""
    n, mu = 100_000, 1000.0
    rng = np.random.default_rng(11)
    delays = [MS] if service == "deterministic" else rng.exponential(MS, n).astype(np.int64)
    backend, wait = virtual(delays)
    qps = rho * mu
    run = server.serve(backend.infer_sync, [0], Arrivals().offsets(n, qps, seed=1), 1, qps,
                       clock=backend.clock, wait=wait)
    summary, latencies = server.summarize_run(run, 1, budget_ms=10)
    theory_ms = rho / (mu * (1 - rho)) * 1e3 / (2 if service == "deterministic" else 1)
    assert summary["queue_ms"]["mean"] == pytest.approx(theory_ms, rel=tolerance)
    assert summary["mg1_queue_ms"] == pytest.approx(theory_ms, rel=tolerance)  # P-K from the in-run service times
    assert summary["utilization"] == pytest.approx(rho, rel=0.01)
    assert summary["service_ms"]["mean"] == pytest.approx(1.0, rel=0.01)
    # latency = queue wait + service, exactly, request by request
    assert latencies.mean() / MS == pytest.approx(summary["queue_ms"]["mean"] + summary["service_ms"]["mean"])
    assert summary["dropped_requests"] == 0 and summary["achieved_qps"] == pytest.approx(qps, rel=0.01)


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_the_batcher_with_max_batch_1_is_m_g_1(rho):
    """One request per call, no delay: the batcher's queue wait is P-K's from the same run's service moments."""
    n, rng = 50_000, np.random.default_rng(5)
    backend, wait = virtual(rng.gamma(2.0, MS / 2, n).astype(np.int64))  # mean 1 ms, cs^2 = 0.5
    run = server.serve(backend.infer_sync, [0], Arrivals().offsets(n, rho * 1000, seed=2), 1, rho * 1000,
                       clock=backend.clock, wait=wait, batching=Batching(max_batch=1, max_delay_ms=0))
    t = run.times()
    service_s = (t["end_ns"] - t["dispatch_ns"]) / 1e9
    rate = n / (run.window_ns / 1e9)
    pk_ms = rate * (service_s**2).mean() / (2 * (1 - rate * service_s.mean())) * 1e3
    assert ((t["dispatch_ns"] - t["scheduled_ns"]) / MS).mean() == pytest.approx(pk_ms, rel=0.10)


def constant_run(gap_ms: float, n: int, service_ms: float, batching: Batching, rows: int = 1):
    backend, wait = virtual([int(service_ms * MS)])
    qps = 1e3 / gap_ms
    offsets = Arrivals(kind="constant").offsets(n, qps)
    run = server.serve(backend.infer_sync, [0], offsets, 1, qps, clock=backend.clock, wait=wait,
                       rows=np.full(n, rows), batching=batching)
    return server.summarize_run(run, rows, budget_ms=100)[0]


def test_batcher_forms_the_batches_theory_predicts_for_constant_arrivals():
    # fast service: a batch holds every request arriving within max_delay of its first, floor(2.5 / 1) + 1 = 3
    s = constant_run(1.0, 300, 0.1, Batching(max_batch=64, max_delay_ms=2.5))
    assert s["batch_sizes_formed"] == {"3": 100}
    assert s["batch_delay_ms"]["max"] == pytest.approx(2.5)  # the first request of each batch waited the full delay
    assert s["queue_ms"]["mean"] == pytest.approx((2.5 + 1.5 + 0.5) / 3)
    # max_batch reached first: the batch leaves as soon as its second request is there
    assert constant_run(1.0, 300, 0.1, Batching(max_batch=2, max_delay_ms=2.5))["batch_sizes_formed"] == {"2": 150}
    # saturated (no delay, 3.5 ms per call, a request every 1 ms): each call takes what arrived during the last,
    # so calls alternate 3 and 4 requests and carry 3.5 on average (arrival rate x service time)
    s = constant_run(1.0, 2000, 3.5, Batching(max_batch=64, max_delay_ms=0))
    assert set(s["batch_sizes_formed"]) <= {"1", "3", "4"} and s["batch_rows_mean"] == pytest.approx(3.5, rel=0.01)


def test_preferred_batch_sizes_dispatch_as_soon_as_they_are_queued():
    s = constant_run(1.0, 300, 0.1, Batching(max_batch=64, max_delay_ms=10, preferred=[2, 4]))
    assert s["batch_sizes_formed"] == {"4": 75}  # the 4th request's arrival sends each call, not the 10 ms delay
    assert s["queue_ms"]["max"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="preferred"):
        Batching(max_batch=8, preferred=[16])


def test_a_request_larger_than_max_batch_is_split_by_rows():
    s = constant_run(10.0, 50, 1.0, Batching(max_batch=4, max_delay_ms=0), rows=10)
    assert s["batch_sizes_formed"] == {"2": 50, "4": 100}  # 10 rows = 4 + 4 + 2, one call after another
    assert s["service_ms"]["mean"] == pytest.approx(3.0) and s["queue_ms"]["max"] == 0
    assert s["throughput_sps"] == pytest.approx(10 * s["achieved_qps"]) and s["samples"] == 500


def test_the_live_batcher_forms_batches_from_what_has_arrived():
    """Real time: a generator thread enqueues requests on schedule; each call holds only requests that had arrived
    when it was dispatched, none waits much past max_delay, and the dispatcher's lateness is recorded."""
    n, gap_ms, delay_ms = 120, 1.0, 2.5
    offsets = Arrivals(kind="constant").offsets(n, 1e3 / gap_ms)
    run = server.serve(lambda handle: None, [0], offsets, 1, 1e3 / gap_ms, rows=np.ones(n, np.int64),
                       batching=Batching(max_batch=64, max_delay_ms=delay_ms))
    summary, _ = server.summarize_run(run, 1, budget_ms=100)
    t = run.times()
    assert set(t) == {"scheduled_ns", "dispatch_ns", "start_ns", "end_ns", "rows"} and (t["end_ns"] >= 0).all()
    assert (t["dispatch_ns"] >= t["scheduled_ns"]).all() and (t["start_ns"] >= t["dispatch_ns"]).all()
    late_ms = summary["dispatch_lateness_ms"]["max"]
    assert ((t["dispatch_ns"] - t["scheduled_ns"]) / MS <= delay_ms + late_ms + 0.01).all()
    assert summary["batch_rows_mean"] > 1.5 and sum(int(k) * v for k, v in summary["batch_sizes_formed"].items()) == n


def test_each_request_carries_its_own_rows():
    """Requests draw their own rows from the pool: no two consecutive ones (of any size) share their rows."""
    from bench.measure.serving.request_handles import SizedHandles

    sized = SizedHandles(lambda batch: batch["x"][:, 0].tolist(), {"x": np.arange(256).reshape(256, 1)}, 1)
    calls = [sized(0, [(i, 0, size)]) for i, size in enumerate([8, 8, 8, 1, 1, 32])]
    assert all(a != b for a, b in zip(calls, calls[1:], strict=False)) and len(calls[5]) == 32
    assert sized(0, [(2, 0, 3), (3, 0, 1)]) == calls[2][:3] + calls[3]  # a batch: its requests' rows in turn
    # the row pool holds the largest request too, not only the largest call (a request is split across calls)
    opts = ScenarioOptions(candidates={"distribution": "fixed", "n": 76}, batching={"max_batch": 32})
    assert opts.row_pool(1) == 152


def test_max_qps_searches_once_per_batcher_setting():
    """1 ms per call whatever its rows: one request per call caps at 1000/s, batches of up to 8 lift that."""
    backend, wait = virtual([MS])
    timing = TimingConfig(warmup_iters=10, warmup_s=0, min_iters=700, min_duration_s=0, max_duration_s=1e6)
    opts = ScenarioOptions(p99_budget_ms=10, arrivals="constant", batching={"max_batch": 8, "max_delay_ms": [0, 2]})
    summary, m = max_qps.run(ScenarioContext(backend, list(range(8)), opts, timing, 1, clock=backend.clock, wait=wait))
    found = {s["batching"]["max_delay_ms"]: s["max_qps"] for s in summary["batching_sweep"]}
    assert set(found) == {0, 2} and all(q > 1000 for q in found.values())
    assert summary["max_qps"] == max(found.values()) and summary["latency_ms"]["p99"] <= 10
    assert all("queue_ms" in p and p["throughput_sps"] > 0 for p in summary["curve"])


def test_calls_of_drawn_rows_are_cut_from_the_contexts_row_pool():
    """The scenario reads its row pool and options from its typed context: each call gets the rows it drew."""
    backend, wait = virtual([MS])
    backend.prepare = lambda batch: len(batch["x"])  # a handle is the rows it holds
    timing = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=50, min_duration_s=0, max_duration_s=100, resolve=None)
    opts = ScenarioOptions(qps=100, candidates={"distribution": "uniform", "low": 1, "high": 6})
    rows = {"x": np.arange(16).reshape(16, 1)}
    summary, _ = server.run(ScenarioContext(backend, [4], opts, timing, 4, rows, clock=backend.clock, wait=wait))
    drawn = opts.candidates.draw(50, opts.seed)
    assert backend.calls[-50:] == drawn.tolist() and summary["rows_per_request"]["mean"] == drawn.mean()
    summary, _ = server.run(ScenarioContext(backend, [4], opts.model_copy(update={"candidates": None}), timing, 4,
                                            clock=backend.clock, wait=wait))
    assert backend.calls[-50:] == [4] * 50 and summary["rows_per_request"] is None  # no row pool: the fixed batch


def test_a_trace_is_replayed_exactly_and_qps_rescales_it(tmp_path):
    gaps_us = [250, 1000, 0, 3125, 40, 7000]
    trace = tmp_path / "intervals.txt"
    trace.write_text("\n".join(map(str, gaps_us)) + "\n")
    spec = Arrivals(file=trace)
    rate = len(gaps_us) / (sum(gaps_us) / 1e6)
    assert spec.trace_qps() == pytest.approx(rate)
    assert spec.offsets(6, rate).tolist() == (np.cumsum(gaps_us) * 1000).tolist()
    assert spec.offsets(12, 2 * rate).tolist() == (np.cumsum(gaps_us * 2) * 500).tolist()  # cycled, twice as fast
    # through the scenario: without --qps the server replays the whole trace once, at its own rate
    backend, wait = virtual([10_000])
    timing = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=700, min_duration_s=0, max_duration_s=100)
    opts = ScenarioOptions(arrivals={"file": str(trace)})
    summary, m = server.run(ScenarioContext(backend, [0, 1], opts, timing, 1, clock=backend.clock, wait=wait))
    assert summary["requests"] == 6 and summary["target_qps"] == pytest.approx(rate)
    assert summary["qps_source"].startswith("arrival trace")
    assert summary["queue_ms"]["max"] == pytest.approx(0.01)  # only the request 0 us after another waits (10 us)


def test_bursty_arrivals_keep_the_mean_rate_and_cluster():
    offsets = Arrivals(kind="bursty").offsets(50_000, 500.0, seed=2)
    assert len(offsets) / (offsets[-1] / 1e9) == pytest.approx(500.0, rel=0.05)
    counts = np.bincount((offsets // (50 * MS)).astype(int))[:-1]  # arrivals per 50 ms window
    assert counts.var() / counts.mean() > 2  # Poisson counts have variance = mean; bursts make it much larger


def test_candidate_counts_follow_their_distribution(tmp_path):
    draws = Candidates(distribution="lognormal", median=100, sigma=1.0).draw(20_000)
    assert np.median(draws) == pytest.approx(100, rel=0.05) and draws.min() >= 1 and draws.max() <= 2048
    assert set(Candidates(distribution="uniform", low=3, high=5).draw(1000)) == {3, 4, 5}
    counts = tmp_path / "counts.txt"
    counts.write_text("7\n7\n300\n")
    assert set(Candidates(distribution="file", file=counts).draw(200)) == {7, 300}


@pytest.mark.parametrize("options, expect", [
    ({"batching": {"max_batch": 8, "max_delay_ms": -1}}, "max_delay_ms must be >= 0"),
    ({"batching": {"max_delay_ms": [2, -0.5]}}, "max_delay_ms must be >= 0"),
    ({"candidates": {"distribution": "uniform", "low": 50, "high": 10}}, "no mass"),
    ({"candidates": {"distribution": "fixed", "n": 0}}, "no mass"),
    ({"candidates": {"distribution": "file", "file": "EMPTY"}}, "no mass"),
    ({"arrivals": {"file": "EMPTY"}}, "is empty"),
    ({"arrivals": {"file": "NOSUCH"}}, "cannot read arrival trace"),
    ({"arrivals": {"file": "BAD"}}, "every line must be one gap in microseconds"),
    ({"candidates": {"distribution": "file", "file": "BAD"}}, "every line must be one whole number of candidates"),
    ({"candidates": {"distribution": "file", "file": "NOSUCH"}}, "cannot read candidate counts"),
])
def test_bad_serving_options_are_one_line_user_errors(tmp_path, options, expect):
    (tmp_path / "EMPTY").write_text("")
    (tmp_path / "BAD").write_text("120\nlots\n")
    for spec in options.values():
        if "file" in spec:
            spec["file"] = str(tmp_path / spec["file"])
    with pytest.raises(UserError, match=expect) as err:
        build_config({"scenario_options": options}, {})
    assert "\n" not in str(err.value)


def test_an_empty_trace_on_the_command_line_exits_2_with_one_line(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    config = tmp_path / "c.yaml"
    config.write_text(f"scenario_options:\n  arrivals: {{file: {tmp_path / 'empty.txt'}}}\n")
    res = recbench("run", "--config", str(config), "--preset", "tiny", "--scenario", "server")
    assert res.returncode == 2 and "Traceback" not in res.stderr + res.stdout
    assert "is empty" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_batched_variable_requests_on_a_real_runtime(tmp_path):
    timing = TimingConfig(warmup_iters=5, warmup_s=0, min_iters=100, min_duration_s=0, max_duration_s=20, pool_size=2,
                          quality_samples=256)
    opts = ScenarioOptions(qps=200, candidates={"distribution": "lognormal", "median": 20, "max": 64},
                           batching={"max_batch": 32, "max_delay_ms": [0, 2]})
    cfg = SweepConfig(preset="tiny", backends=["onnxruntime"], batch_sizes=[1], timing=timing, out=tmp_path,
                      scenario_options=opts)
    sweep = Sweep(cfg, log=lambda s: None)
    sweep.scenarios = ["server"]
    run = sweep.run()
    (rec,) = run.records()
    assert rec["status"] == "ok", rec["reason"]
    assert [s["batching"]["max_delay_ms"] for s in rec["batching_sweep"]] == [0, 2]
    assert max(int(k) for k in rec["batch_sizes_formed"]) <= 32 and rec["service_ms"]["mean"] > 0
    assert rec["throughput_sps"] == pytest.approx(rec["achieved_qps"] * rec["rows_per_request"]["mean"])
    assert rec["dispatch_lateness_ms"]["p99"] >= 0  # the host's own share of the queue wait
    old = {**rec, "wakeup_ms": rec.pop("dispatch_lateness_ms")}  # a record from before the live batcher still reads
    assert record_schema.read(old, "old run")["wakeup_ms"] == old["wakeup_ms"]
    times = run.requests(rec["job_id"])  # raw/<job>.requests.npz beside raw/<job>.npy
    assert len(times["end_ns"]) == rec["requests"] and (times["rows"] >= 1).all()
    drawn = {c.name for c in build_report(run.path).charts if c.figure is not None}
    assert {"latency-breakdown", "batching-sweep"} <= drawn


@pytest.mark.parametrize("kind, model", [("constant", "D/G/1"), ("bursty", None), ("file", "G/G/1")])
def test_queueing_prediction_only_where_its_model_applies(kind, model, tmp_path):
    """M/G/1 needs Poisson arrivals: constant and trace arrivals get Kingman's G/G/1 approximation, bursty none."""
    n, rho, rng = 20_000, 0.8, np.random.default_rng(3)
    gaps_file = tmp_path / "gaps.txt"  # a renewal trace: exponential gaps, so Kingman's ca^2 = 1 (= P-K)
    gaps_file.write_text("\n".join(str(g) for g in rng.exponential(1250, n).round(3)))
    arrivals = Arrivals(kind=kind, file=gaps_file if kind == "file" else None)
    backend, wait = virtual(rng.exponential(MS, n).astype(np.int64))
    qps = rho * 1000
    run = server.serve(backend.infer_sync, [0], arrivals.offsets(n, qps, 1), 1, qps, clock=backend.clock, wait=wait)
    summary, _ = server.summarize_run(run, 1, budget_ms=10, arrivals=kind)
    assert "mg1_queue_ms" not in summary
    assert (summary["queue_model"] or "").startswith(model or "None") or summary["queue_model"] is model
    if model is None:
        assert "gg1_queue_ms" not in summary
    else:  # Kingman is an approximation: within 25% of the virtual-time wait at load 0.8
        assert summary["gg1_queue_ms"] == pytest.approx(summary["queue_ms"]["mean"], rel=0.25)


def test_the_breakdown_chart_recomputes_queue_and_service_from_the_raw_request_times(tmp_path):
    from bench.records.rundir import RunDir
    from bench.report.data import Run
    from bench.report.serving_charts import from_raw

    rec = {"job_id": "j", "repeat": 2, "queue_ms": {"mean": 99.0}, "service_ms": {"mean": 99.0}}
    folder = RunDir(tmp_path)
    (tmp_path / "raw").mkdir()
    for k, queue in enumerate((1, 3)):  # replica k: every request queued `queue` ms, served in 2 ms
        n = np.arange(10, dtype=np.int64) * 10 * MS
        folder.save_requests(f"j.r{k}", {"scheduled_ns": n, "dispatch_ns": n + queue * MS, "start_ns": n + queue * MS,
                                         "end_ns": n + (queue + 2) * MS, "rows": np.ones(10, np.int64)})
    got = from_raw(Run(tmp_path, [rec], {}), rec)
    assert got["queue_ms"]["mean"] == pytest.approx(2.0) and got["service_ms"]["p99"] == pytest.approx(2.0)
    assert from_raw(Run(tmp_path, [rec], {}), {**rec, "job_id": "k"})["queue_ms"]["mean"] == 99.0  # none kept
