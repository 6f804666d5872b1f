"""Peak RSS is the job process's own high-water mark, not its parent's."""

import multiprocessing as mp

import numpy as np

from bench.measure.memory import nvml_process_bytes, peak_rss_bytes

MIB = 2**20


def _child_peak(conn) -> None:
    conn.send(peak_rss_bytes())


def _child_allocates(conn) -> None:
    before = peak_rss_bytes()
    block = np.ones(200 * MIB // 8)  # 200 MiB, touched
    during = peak_rss_bytes()
    del block
    conn.send((before, during, peak_rss_bytes()))


def _in_fresh_process(target):
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=target, args=(send,))
    p.start()
    value = recv.recv()
    p.join()
    return value


def test_peak_rss_is_a_high_water_mark():
    before, during, after = _in_fresh_process(_child_allocates)
    # freeing does not lower the mark (the kernel's RSS counters are batched per thread: allow 1 MiB of slack)
    assert during - before > 150 * MIB and after >= during - MIB


def test_spawned_child_does_not_inherit_the_parents_peak():
    """ru_maxrss of a fork+exec'd child starts at the parent's RSS; the job's peak must not."""
    ballast = np.ones(300 * MIB // 8)
    child = _in_fresh_process(_child_peak)
    assert child < 200 * MIB < peak_rss_bytes() and ballast.sum() > 0


def test_gpu_memory_is_none_without_a_gpu_or_nvml():
    value = nvml_process_bytes()
    assert value is None or value >= 0
