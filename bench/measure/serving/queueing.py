"""The server's request queue, live: requests are enqueued as they arrive and a dispatcher forms each call from what
is queued when it goes (the dynamic batcher); and where a run's latency went (queue wait vs service time,
utilization, the queueing model's prediction).

Like Triton's dynamic batcher: a free dispatcher takes the oldest queued request and waits until `max_batch` rows
are queued or `max_delay_ms` have passed since that request arrived, whichever is first, then takes what is queued;
a request with more rows than fit is split by rows across consecutive calls. Without batching, each call serves one
whole request. How late a dispatcher went after its call was due is the host's own share of the queue wait.

A queueing model is offered only where its assumptions hold: Pollaczek-Khinchine (exact mean for M/G/1) for Poisson
arrivals; Kingman's G/G/1 approximation for renewal arrivals of another kind (constant: D/G/1, a trace); none for
bursty arrivals, whose correlated gaps no renewal model describes.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bench.stats import latency as stats

QUEUE_MODELS = {"poisson": "M/G/1 Pollaczek-Khinchine (exact mean)", "constant": "D/G/1 Kingman (approximation)",
                "file": "G/G/1 Kingman (approximation)"}


class Batching(BaseModel):
    """`batching: {max_batch: 512, max_delay_ms: 2}`; a list of delays sweeps them (one run per setting)."""

    model_config = ConfigDict(extra="forbid")
    max_batch: int = Field(512, ge=1)  # rows per inference call at most
    max_delay_ms: float | list[float] = 2.0  # how long the oldest queued request may wait for the batch to fill
    preferred: list[int] = []  # Triton's preferred batch sizes: a call goes once the largest is queued, and takes
    # the largest that fits what is queued (all of it, when none does)

    @field_validator("max_delay_ms")
    @classmethod
    def _not_negative(cls, v: float | list[float]) -> float | list[float]:
        delays = v if isinstance(v, list) else [v]
        if not delays or any(d < 0 for d in delays):
            raise ValueError(f"max_delay_ms must be >= 0 (one value or a non-empty list), got {v}")
        return v

    @model_validator(mode="after")
    def _preferred_fit(self) -> Batching:
        if any(not 1 <= p <= self.max_batch for p in self.preferred):
            raise ValueError(f"preferred batch sizes must lie in [1, max_batch={self.max_batch}], got {self.preferred}")
        return self

    def fill(self) -> int:
        """Rows that dispatch a call before its delay is up."""
        return max(self.preferred, default=self.max_batch)

    def call_rows(self, queued: int) -> int:
        """Rows of a call dispatched with `queued` rows waiting."""
        fit = min(queued, self.max_batch)
        return max((p for p in self.preferred if p <= fit), default=fit)

    def settings(self) -> list[Batching]:
        """One batcher per max_delay_ms of a sweep (just this one when a single delay is given)."""
        delays = self.max_delay_ms if isinstance(self.max_delay_ms, list) else [self.max_delay_ms]
        return [self.model_copy(update={"max_delay_ms": d}) for d in delays]


class Arrived:
    """The FIFO of requests that have arrived, with the rows of each not yet given to a call, shared by the
    dispatchers under one condition. Live: a generator thread enqueues each request at its scheduled time, so a
    dispatcher sees only what has really arrived when it wakes. Virtual time (tests: a clock only waiting moves,
    one dispatcher): a request is queued once the clock has passed its arrival."""

    def __init__(self, arrivals_ns: np.ndarray, rows: np.ndarray, clock: Callable[[], int],
                 wait: Callable[[int], None], live: bool):
        self.arrivals = np.asarray(arrivals_ns, dtype=np.int64).tolist()  # Python ints: fast one at a time
        self.size = np.asarray(rows, dtype=np.int64).tolist()
        self.left = list(self.size)  # rows of each request not yet given to a call
        self.clock, self.wait, self.live = clock, wait, live
        self.queue: deque[int] = deque()
        self.rows = self.next = 0  # rows queued; the next request to arrive
        self.closed = False  # out of time: nothing more is enqueued or dispatched
        self.cond = threading.Condition()
        self.begin = clock()

    def now(self) -> int:
        return self.clock() - self.begin

    def _enqueue(self, i: int) -> None:
        self.queue.append(i)
        self.rows += self.left[i]
        self.next = i + 1

    def generate(self) -> None:
        """Live: the client, enqueueing each request when its scheduled arrival comes."""
        for i, t in enumerate(self.arrivals):
            while (left := t - self.now()) > 0 and not self.closed:
                self.wait(left)
            with self.cond:
                if self.closed:
                    return
                self._enqueue(i)
                self.cond.notify_all()

    def close(self) -> None:
        with self.cond:  # reentrant: a dispatcher holding it may close
            self.closed = True
            self.cond.notify_all()

    def wait_until(self, deadline: float, rows: int) -> None:
        """Under the lock: wait until `rows` rows are queued or `deadline` (ns) has passed (an endless one: or until
        no request is left to come)."""
        self._admit()
        while self.rows < rows and not self.closed and (left := deadline - self.now()) > 0:
            if math.isinf(deadline) and self.next == len(self.arrivals):
                return
            if self.live:
                self.cond.wait(None if math.isinf(left) else left / 1e9)
                continue
            self.wait(int(min(left, self.arrivals[self.next] - self.now() if self.next < len(self.arrivals) else left)))
            self._admit()

    def _admit(self) -> None:
        """Virtual time: every request whose arrival the clock has passed is queued."""
        while not self.live and self.next < len(self.arrivals) and self.arrivals[self.next] <= self.now():
            self._enqueue(self.next)

    def due(self, opened: int, deadline: int, max_rows: int) -> int:
        """When a batch of the queue should have gone: at the deadline, or once its rows were there, but not before
        its worker was free (`opened`)."""
        total, at = 0, deadline
        for i in self.queue:
            total += self.left[i]
            if total >= max_rows:
                at = min(deadline, self.arrivals[i])
                break
        return max(opened, at)

    def take(self, max_rows: int) -> list[tuple[int, int, int]]:
        """The next call's (request, first row, end row) segments: up to `max_rows` rows from the head, splitting a
        request by rows when it does not fit."""
        segments, room = [], max_rows
        while self.queue and room:
            i = self.queue[0]
            n = min(self.left[i], room)
            first = self.size[i] - self.left[i]
            segments.append((i, first, first + n))
            self.left[i] -= n
            self.rows -= n
            room -= n
            if not self.left[i]:
                self.queue.popleft()
        return segments


def pollaczek_khinchine_ms(rate_per_s: float, service_ns: np.ndarray) -> float | None:
    """M/G/1 mean queue wait (ms) from the arrival rate and the service times' moments; None at or over capacity."""
    s = service_ns.astype(np.float64) / 1e9
    rho = rate_per_s * s.mean()
    return float(rate_per_s * (s**2).mean() / (2 * (1 - rho)) * 1e3) if rho < 1 else None


def kingman_ms(gaps_ns: np.ndarray, service_ns: np.ndarray) -> float | None:
    """G/G/1 mean queue wait (ms), Kingman: rho/(1-rho) x (ca^2 + cs^2)/2 x E[S]; None at or over capacity."""
    gaps, s = gaps_ns.astype(np.float64), service_ns.astype(np.float64)
    if len(gaps) < 2 or gaps.mean() <= 0:
        return None
    rho = s.mean() / gaps.mean()
    ca2, cs2 = gaps.var() / gaps.mean() ** 2, s.var() / s.mean() ** 2
    return float(rho / (1 - rho) * (ca2 + cs2) / 2 * s.mean() / 1e6) if rho < 1 else None


def breakdown(scheduled_ns: np.ndarray, queue_ns: np.ndarray, service_ns: np.ndarray, busy_ns: int, window_ns: int,
              workers: int, single_server: bool, arrivals: str) -> dict:
    """Record fields: queue_ms and service_ms percentiles, utilization and (one worker, no batching) the model that
    applies to these arrivals with its mean-wait prediction (ms).

    Utilization is the workers' busy time over the arrival window (= arrival rate x mean in-run service time / workers
    without batching); predictions use the service times measured during the run.
    """
    if not len(queue_ns):
        return {"queue_ms": None, "service_ms": None, "utilization": None}
    out = {"queue_ms": stats.latency_summary(np.asarray(queue_ns, np.int64))[0],
           "service_ms": stats.latency_summary(np.asarray(service_ns, np.int64))[0],
           "utilization": float(busy_ns / (window_ns * workers))}
    if single_server:
        out["queue_model"] = QUEUE_MODELS.get(arrivals)
        if arrivals == "poisson":
            out["mg1_queue_ms"] = pollaczek_khinchine_ms(len(queue_ns) / (window_ns / 1e9), service_ns)
        elif arrivals in QUEUE_MODELS:
            out["gg1_queue_ms"] = kingman_ms(np.diff(scheduled_ns), service_ns)
    return out
