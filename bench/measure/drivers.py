"""Thread drivers the scenarios share: run N threads, and N closed-loop clients issuing requests back to back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from backends.base import Backend, Clock


def run_threads(target: Callable[[int], None], count: int) -> None:
    """Run target(0..count-1) on `count` threads (inline when 1) and re-raise the first exception any raised."""
    errors: list[BaseException] = []

    def guarded(j: int) -> None:
        try:
            target(j)
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(e)

    if count == 1:
        guarded(0)
    else:
        threads = [threading.Thread(target=guarded, args=(j,), daemon=True) for j in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def run_closed_loop(call: Callable[[Any], None], handles: list[Any], clients: int, clock: Clock,
                    min_requests: int, min_ns: int = 0, max_ns: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`clients` threads issue requests back to back, each on its own share of `handles`, until both
    `min_requests` and `min_ns` (or `max_ns`) are reached; returns every request's start and end time (ns)."""
    if clients > len(handles):
        raise ValueError(f"{clients} clients need at least {clients} prepared handles, got {len(handles)}")
    lock = threading.Lock()
    starts: list[int] = []
    ends: list[int] = []
    issued = [0]
    begin = clock()

    def client(j: int) -> None:
        own, n = handles[j::clients], 0
        while True:
            with lock:
                elapsed = clock() - begin
                if (issued[0] >= min_requests and elapsed >= min_ns) or (max_ns is not None and elapsed >= max_ns):
                    return
                issued[0] += 1
            t0 = clock()
            call(own[n % len(own)])
            t1 = clock()
            n += 1
            with lock:
                starts.append(t0)
                ends.append(t1)

    run_threads(client, clients)
    return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)


def run_parallel(backend: Backend, handles: list[Any], count: int, clock: Clock) -> tuple[np.ndarray, np.ndarray]:
    """`count` requests through the runtime's own queue, else through `streams()` closed-loop threads."""
    own = backend.infer_parallel(handles, count, clock)
    return own if own is not None else run_closed_loop(backend.infer_sync, handles, backend.streams(), clock, count)
