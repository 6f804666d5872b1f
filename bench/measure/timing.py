"""What a load scenario measures with (`ScenarioContext`), the common timing loop (warm-up, then a measured phase
over a pool of distinct batches) and the thread driver every multi-threaded scenario runs its clients on."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.base import Backend, Clock
from bench.config.scenario_options import ScenarioOptions
from bench.config.sweep import TimingConfig

SPIN_NS = 200_000  # the last 0.2 ms before an arrival is waited out by polling, not by an imprecise sleep

BLOCK_NS = 30_000_000  # a paired worker's turn: ~30 ms of one side's iterations (at least one), then the other's
Wait = Callable[[int], None]  # wait(ns): let about ns nanoseconds pass (the real one sleeps, then polls)
Turn = Callable[[Callable[[], None]], None]  # turn(block): run one block of a side's iterations in its turn (Baton)


def real_wait(ns: int) -> None:
    time.sleep(max(ns - SPIN_NS, 0) / 1e9)  # sleep(0) still releases the GIL while polling


@dataclass(frozen=True)
class ScenarioContext:
    """A scenario's loaded backend, its prepared handles and the job's typed settings."""

    backend: Backend
    handles: list[Any]  # prepared batches: one per request that may be in flight (Scenario.handles)
    options: ScenarioOptions
    timing: TimingConfig
    batch_size: int
    rows: dict[str, np.ndarray] | None = None  # the row pool variable-size calls are cut from (None: fixed batches)
    item_input: str = ""  # the input whose axis 1 holds a request's candidates (hstu, din): a row is a candidate
    clock: Clock = time.perf_counter_ns
    wait: Wait = real_wait  # open-loop scenarios wait for each arrival with it (tests: virtual time)
    turn: Turn | None = None  # a paired worker's side: single-stream times in turns with the other side (Baton)


TURNS = (0, 1, 1, 0)  # the sides' blocks in turns, repeated: A B B A A B ...


class Baton:
    """Two jobs in one process (the paired worker) timed in turns of BLOCK_NS, A B B A A B ..., every block on the one
    thread that `serve`s: the runtime sees one calling thread (its thread-local state, its OpenMP team) whichever side
    runs, so a load that comes and goes hits both alike and no side keeps a luckier thread placement for a whole
    replica. A side that is done (or failed) takes no turns, the other goes on alone."""

    in_process = True  # both sides' models are in this process (BackendOptions.paired)

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._order = itertools.cycle(TURNS)
        self._turn = next(self._order)
        self._ready, self._gone = [False, False], [False, False]
        self._block: tuple[int, Callable[[], None]] | None = None
        self._done: list[tuple[BaseException | None] | None] = [None, None]

    def run(self, side: int, block: Callable[[], None]) -> None:
        """Run one block of `side`'s iterations on the serving thread, once the other side is ready to time too and
        it is `side`'s turn; what the block raised is raised here."""
        with self._cond:
            self._ready[side] = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._block is None and (
                self._gone[1 - side] or (self._ready[1 - side] and self._turn == side)))
            self._block = side, block
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._done[side] is not None)
            (error,), self._done[side] = self._done[side], None
        if error:
            raise error

    def serve(self) -> None:
        """Run the sides' blocks as they come, on the calling thread, until both sides have left."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._block is not None or all(self._gone))
                if self._block is None:
                    return
                side, block = self._block
            try:
                block()
                error = None
            except BaseException as e:  # noqa: BLE001 - raised in the side's own thread (Baton.run)
                error = e
            with self._cond:
                self._block, self._done[side], self._turn = None, (error,), next(self._order)
                self._cond.notify_all()

    def leave(self, side: int, wait: bool = False) -> None:
        """`side` times no more; with `wait`, it waits until the other side is done too (nothing runs beside it)."""
        with self._cond:
            self._gone[side] = True
            self._cond.notify_all()
            if wait:
                self._cond.wait_for(lambda: self._gone[1 - side])


class ProcessBaton:
    """Baton's turns for a pair whose sides run in two processes (a backend whose two models in one process are not
    timed alike: `Backend.pairs_in_one_process`): the same order and rules, handed over through shared memory; each
    side's blocks run on its own process's main thread. Made by the launcher, passed to both processes."""

    in_process = False

    def __init__(self, ctx: Any) -> None:
        self._cond = ctx.Condition()
        self._state = ctx.RawArray("i", 5)  # ready A, ready B, gone A, gone B, blocks run

    def run(self, side: int, block: Callable[[], None]) -> None:
        """Run one block of `side`'s iterations here, once the other side is ready to time too (or gone) and it is
        `side`'s turn."""
        state, other = self._state, 1 - side
        with self._cond:
            state[side] = 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: state[2 + other] or (state[other] and TURNS[state[4] % 4] == side))
        try:
            block()
        finally:
            with self._cond:
                state[4] += 1
                self._cond.notify_all()

    def leave(self, side: int, wait: bool = False) -> None:
        """`side` times no more; with `wait`, it waits until the other side is gone too."""
        self.ended(side)
        if wait:
            with self._cond:
                self._cond.wait_for(lambda: self._state[3 - side])

    def ended(self, side: int) -> None:
        """`side` is gone (also said by the launcher once its process ended), so the other goes on alone; never
        blocked for long by a process killed while it held the lock."""
        self._state[2 + side] = 1
        if self._cond.acquire(timeout=1):
            try:
                self._cond.notify_all()
            finally:
                self._cond.release()


@dataclass
class Measurement:
    """Per-iteration latencies of one measured phase and the wall time it took."""

    latencies_ns: np.ndarray
    wall_s: float
    samples_per_iter: int
    warmup_iters: int
    device_ms: dict[str, np.ndarray] | None = None  # per-iteration device time of each phase (GPU backends)
    requests: dict[str, np.ndarray] | None = None  # server: each request's times, kept raw (.requests.npz)
    cpu_s: float | None = None  # the process's CPU time (all its threads) over the measured phase, where timed


def _run_until(backend: Backend, handles: list[Any], min_iters: int, min_s: float, max_s: float, clock: Clock,
               device: list[dict] | None = None, turn: Turn | None = None) -> tuple[list[int], float, float]:
    """Time infer+synchronize round-robin over handles until both minimums (or max_s) are reached: the latencies,
    the seconds and the process CPU seconds taken; with `device`, also collect each iteration's device times (read
    outside the timing); with `turn`, in blocks of BLOCK_NS taken in turns (its own time and CPU only)."""
    lat: list[int] = []
    min_ns, max_ns = int(min_s * 1e9), int(max_s * 1e9)
    spent, cpu, done = 0, 0.0, False

    def block() -> None:
        nonlocal spent, cpu, done
        start, cpu0 = clock(), time.process_time()
        while True:
            t0 = clock()
            backend.infer(handles[len(lat) % len(handles)])
            backend.synchronize()
            t1 = clock()
            lat.append(t1 - t0)
            if device is not None:
                device.append(backend.device_times_ms())
            own = spent + t1 - start
            done = (len(lat) >= min_iters and own >= min_ns) or own >= max_ns
            if done or (turn and t1 - start >= BLOCK_NS):
                break
        spent, cpu = own, cpu + time.process_time() - cpu0

    while not done:
        if turn:
            turn(block)
        else:
            block()
    return lat, spent / 1e9, cpu


def warm_up(backend: Backend, handles: list[Any], timing: TimingConfig, clock: Clock = time.perf_counter_ns,
            turn: Turn | None = None) -> tuple[int, float]:
    """Closed-loop warm-up by count and time (at least one call); returns (calls, seconds) for a capacity estimate."""
    lat, elapsed, _ = _run_until(backend, handles, max(1, timing.warmup_iters), timing.warmup_s,
                                 timing.max_duration_s, clock, turn=turn)
    return len(lat), elapsed


def measure(backend: Backend, handles: list[Any], timing: TimingConfig, batch_size: int,
            clock: Clock = time.perf_counter_ns, turn: Turn | None = None) -> Measurement:
    """Warm up by count and time, then time every infer+synchronize individually (closed loop; with `turn`, in
    blocks taken in turns with a paired worker's other side)."""
    warm = warm_up(backend, handles, timing, clock, turn)[0] if timing.warmup_iters or timing.warmup_s else 0
    device: list[dict] = []
    lat, wall, cpu = _run_until(backend, handles, timing.target_iters(), timing.min_duration_s,
                                timing.max_duration_s, clock, device, turn)
    # per-phase device times (GPU backends), only where every iteration has them
    device_ms = {k: np.array([d[k] for d in device], np.float64) for k in device[0]} if all(device) else None
    return Measurement(np.asarray(lat, dtype=np.int64), wall, batch_size, warm, device_ms, cpu_s=cpu)


def run_threads(target: Callable[[int], None], count: int, meanwhile: Callable[[], None] | None = None) -> None:
    """Run target(0..count-1) on `count` threads (inline when 1; `meanwhile` on this thread as they run) and re-raise
    the first exception any raised."""
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
        if meanwhile:
            meanwhile()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
