"""Where a server run's latency goes: queue wait vs service time, utilization, and the queueing model's prediction.

A model is offered only where its assumptions hold: Pollaczek-Khinchine (exact mean for M/G/1) for Poisson arrivals;
Kingman's G/G/1 approximation for renewal arrivals of another kind (constant: D/G/1, a trace); none for bursty
arrivals, whose correlated gaps no renewal model describes.
"""

from __future__ import annotations

import numpy as np

from bench.stats import latency as stats

QUEUE_MODELS = {"poisson": "M/G/1 Pollaczek-Khinchine (exact mean)", "constant": "D/G/1 Kingman (approximation)",
                "file": "G/G/1 Kingman (approximation)"}


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
