"""The timing loop and statistics, checked against latencies known exactly (fake clock)."""

import itertools
import threading
from functools import partial

import numpy as np
import pytest

from bench.config.sweep import TimingConfig
from bench.measure.timing import measure
from bench.stats import latency as stats
from tests.fakes import ScriptedBackend


def run_scripted(delays_ms, **timing):
    backend = ScriptedBackend([int(d * 1e6) for d in delays_ms])
    handles = [backend.prepare({"i": i}) for i in range(8)]
    cfg = TimingConfig(**{"warmup_iters": 0, "warmup_s": 0, "min_iters": len(delays_ms), "min_duration_s": 0,
                          "resolve": None, **timing})
    return backend, measure(backend, handles, cfg, batch_size=4, clock=backend.clock)


def test_percentiles_are_exact_for_known_delays():
    delays = list(range(1, 1001))  # 1..1000 ms, each once
    _, m = run_scripted(delays, max_duration_s=10_000)
    s = stats.summarize(m.latencies_ns, m.samples_per_iter, m.wall_s)
    lat = s["latency_ms"]
    assert lat["min"] == 1 and lat["max"] == 1000
    assert lat["mean"] == pytest.approx(500.5)
    assert lat["p50"] == pytest.approx(500.5)
    assert lat["p90"] == pytest.approx(900.1)
    assert lat["p99"] == pytest.approx(990.01)
    assert lat["p999"] is None  # 1000 samples cannot back a p99.9 (needs 6636): reported missing, with the reason
    assert any("p999 not reported: needs >= 6636" in w for w in s["warnings"])
    assert s["iterations"] == 1000 and s["samples"] == 4000
    # throughput is samples over the wall time of the measured phase: 4000 samples / 500.5 s
    assert s["throughput_sps"] == pytest.approx(4000 / 500.5)
    assert s["cv"] == pytest.approx(np.std(delays, ddof=1) / 500.5)
    assert not s["stable"] and "coefficient of variation" in s["warnings"][0]


def test_constant_latency_is_stable():
    _, m = run_scripted([2.0] * 700)
    s = stats.summarize(m.latencies_ns, m.samples_per_iter, m.wall_s)
    assert s["latency_ms"]["p99"] == 2.0 and s["cv"] == 0 and s["stable"]


def test_measured_phase_needs_both_count_and_duration():
    # 1 ms per call, at least 10 calls and at least 0.1 s: the duration decides (100 calls)
    _, m = run_scripted([1.0], min_iters=10, min_duration_s=0.1)
    assert len(m.latencies_ns) == 100
    # at least 300 calls and 0.1 s: the count decides
    _, m = run_scripted([1.0], min_iters=300, min_duration_s=0.1)
    assert len(m.latencies_ns) == 300


def test_warmup_is_not_measured_and_pool_rotates():
    backend, m = run_scripted([1.0], warmup_iters=7, warmup_s=0.002, min_iters=16)
    assert m.warmup_iters == 7 and len(m.latencies_ns) == 16
    measured = backend.calls[7:]
    # round robin over the 8 pooled batches: every batch used twice
    assert sorted(measured) == sorted(list(range(8)) * 2)


def test_measured_phase_extends_until_p99_is_resolvable_up_to_the_cap():
    """One sample rule: the run measures the 662 iterations p99 needs, unless max_duration_s stops it first."""
    _, m = run_scripted([1.0], min_iters=10, resolve="p99", max_duration_s=100)
    assert len(m.latencies_ns) == stats.min_samples(99) == TimingConfig(min_iters=10).target_iters()
    assert stats.summarize(m.latencies_ns, 1, m.wall_s)["latency_ms"]["p99"] == 1.0
    _, m = run_scripted([1.0], min_iters=10, resolve="p99", max_duration_s=0.3)
    s = stats.summarize(m.latencies_ns, 1, m.wall_s)
    assert len(m.latencies_ns) == 300 and s["latency_ms"]["p99"] is None
    assert any(w.startswith("p99 not reported: needs >= 662") and "`recbench run --max-duration 1`" in w
               for w in s["warnings"])
    assert TimingConfig.quick().target_iters() == 662 and TimingConfig().target_iters() == 662


def test_max_duration_stops_a_slow_backend():
    _, m = run_scripted([1000.0], min_iters=1000, max_duration_s=5)
    assert len(m.latencies_ns) == 5


def test_a_baton_times_two_sides_in_turns_abba_each_with_its_own_time():
    """The paired worker's two sides: blocks of ~BLOCK_NS in turns A B B A ..., all on the one serving thread, each
    side's wall and iterations its own (the other side's blocks not counted), and a side left alone once the other is
    done."""
    from bench.measure.timing import BLOCK_NS, Baton, run_threads

    baton, order, results, callers = Baton(), [], {}, set()
    # A: 10 ms an iteration, 3 a block; B: 40 ms, 1 a block; 12 iterations each
    backends = [ScriptedBackend([10_000_000]), ScriptedBackend([40_000_000])]
    for side, b in enumerate(backends):
        b.infer = lambda h, b=b, side=side: (ScriptedBackend.infer(b, h), order.append(side),
                                             callers.add(threading.get_ident()))
    cfg = TimingConfig(warmup_iters=0, warmup_s=0, min_iters=12, min_duration_s=0, resolve=None)

    def run(side: int) -> None:
        results[side] = measure(backends[side], [0], cfg, 1, backends[side].clock, partial(baton.run, side))
        baton.leave(side)

    run_threads(run, 2, baton.serve)
    blocks = [(s, len(list(g))) for s, g in itertools.groupby(order)]
    # A, B B, A A, B B, A (A is done: 12), then B alone
    assert BLOCK_NS == 30_000_000 and blocks == [(0, 3), (1, 2), (0, 6), (1, 2), (0, 3), (1, 8)]
    assert [len(results[s].latencies_ns) for s in (0, 1)] == [12, 12]
    assert results[0].wall_s == pytest.approx(0.12) and results[1].wall_s == pytest.approx(0.48)
    assert callers == {threading.get_ident()}  # both sides' blocks on the thread that served them


def _process_side(baton, side: int, order, n) -> None:
    """One side of a ProcessBaton pair in its own process: the threaded test's backends, each call's side logged."""
    backend = ScriptedBackend([(10_000_000, 40_000_000)[side]])

    def infer(handle) -> None:
        ScriptedBackend.infer(backend, handle)
        order[n.value] = side
        n.value += 1

    backend.infer = infer
    cfg = TimingConfig(warmup_iters=0, warmup_s=0, min_iters=12, min_duration_s=0, resolve=None)
    measure(backend, [0], cfg, 1, backend.clock, partial(baton.run, side))
    baton.leave(side)


def test_a_process_baton_times_two_processes_in_the_same_turns():
    """A pair whose sides are in two processes (Backend.pairs_in_one_process False) takes the same turns as the
    threaded Baton: A, B B, A A, B B, A, then B alone."""
    import multiprocessing as mp

    from bench.measure.timing import ProcessBaton

    ctx = mp.get_context("spawn")
    baton, order, n = ProcessBaton(ctx), ctx.RawArray("i", 24), ctx.RawValue("i", 0)
    procs = [ctx.Process(target=_process_side, args=(baton, side, order, n)) for side in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0] and n.value == 24
    blocks = [(s, len(list(g))) for s, g in itertools.groupby(order)]
    assert blocks == [(0, 3), (1, 2), (0, 6), (1, 2), (0, 3), (1, 8)]
