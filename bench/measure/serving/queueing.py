"""The server's request queue: which queued requests (or rows of them) the next inference call serves, and when
(the dynamic batcher); and where a run's latency went in it (queue wait vs service time, utilization, the queueing
model's prediction).

Like Triton's dynamic batcher: a free worker takes the oldest queued request and waits until `max_batch` rows
are queued or `max_delay_ms` have passed since that request arrived, whichever is first; a request with more
rows than fit is split by rows across consecutive calls. Without batching, each call serves one whole request.

A queueing model is offered only where its assumptions hold: Pollaczek-Khinchine (exact mean for M/G/1) for Poisson
arrivals; Kingman's G/G/1 approximation for renewal arrivals of another kind (constant: D/G/1, a trace); none for
bursty arrivals, whose correlated gaps no renewal model describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bench.stats import latency as stats

QUEUE_MODELS = {"poisson": "M/G/1 Pollaczek-Khinchine (exact mean)", "constant": "D/G/1 Kingman (approximation)",
                "file": "G/G/1 Kingman (approximation)"}


class Batching(BaseModel):
    """`batching: {max_batch: 512, max_delay_ms: 2}`; a list of delays sweeps them (one run per setting)."""

    model_config = ConfigDict(extra="forbid")
    max_batch: int = Field(512, ge=1)  # rows per inference call at most
    max_delay_ms: float | list[float] = 2.0  # how long the oldest queued request may wait for the batch to fill

    @field_validator("max_delay_ms")
    @classmethod
    def _not_negative(cls, v: float | list[float]) -> float | list[float]:
        delays = v if isinstance(v, list) else [v]
        if not delays or any(d < 0 for d in delays):
            raise ValueError(f"max_delay_ms must be >= 0 (one value or a non-empty list), got {v}")
        return v

    def settings(self) -> list[Batching]:
        """One batcher per max_delay_ms of a sweep (just this one when a single delay is given)."""
        delays = self.max_delay_ms if isinstance(self.max_delay_ms, list) else [self.max_delay_ms]
        return [Batching(max_batch=self.max_batch, max_delay_ms=d) for d in delays]


@dataclass
class Call:
    """One planned inference call: when it may start (ns) and the (request, rows) segments it serves."""

    due: int
    opened: int  # when its batch could have started at the earliest (worker free and a request queued)
    segments: list[tuple[int, int]] = field(default_factory=list)
    rows: int = 0


class Backlog:
    """The FIFO of scheduled requests (arrival ns, rows) that workers plan calls from, under the caller's lock."""

    def __init__(self, arrivals_ns: np.ndarray, rows: np.ndarray):
        self.arrivals = np.asarray(arrivals_ns, dtype=np.int64).tolist()  # Python ints: fast one at a time
        self.left = np.asarray(rows, dtype=np.int64).tolist()  # rows of each request not yet given to a call
        self.head = 0

    def next_call(self, now: int, batching: Batching | None) -> Call | None:
        """The next call for a worker free at `now` (ns), or None when every request is taken."""
        h = self.head
        if h >= len(self.arrivals):
            return None
        opened = max(now, self.arrivals[h])
        if batching is None:
            self.head += 1
            return Call(opened, opened, [(h, self.left[h])], self.left[h])
        deadline = max(now, self.arrivals[h] + int(batching.max_delay_ms * 1e6))
        call, room, j = Call(deadline, opened), batching.max_batch, h
        while j < len(self.arrivals) and room and self.arrivals[j] <= deadline:
            take = min(self.left[j], room)
            call.segments.append((j, take))
            call.rows += take
            self.left[j] -= take
            room -= take
            if not room:
                call.due = max(now, self.arrivals[j])  # full: it goes as soon as its last rows arrived
            if self.left[j]:
                break
            j += 1
        self.head = j
        return call


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
