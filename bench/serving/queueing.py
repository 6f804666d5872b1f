"""Where a server run's latency goes: queue wait vs service time, utilization, and the M/G/1 prediction."""

from __future__ import annotations

import numpy as np

from bench import stats


def pollaczek_khinchine_ms(rate_per_s: float, service_ns: np.ndarray) -> float | None:
    """M/G/1 mean queue wait (ms) from the arrival rate and the service times' moments; None at or over capacity."""
    s = service_ns.astype(np.float64) / 1e9
    rho = rate_per_s * s.mean()
    return float(rate_per_s * (s**2).mean() / (2 * (1 - rho)) * 1e3) if rho < 1 else None


def breakdown(queue_ns: np.ndarray, service_ns: np.ndarray, busy_ns: int, window_ns: int, workers: int,
              single_server: bool) -> dict:
    """Record fields: queue_ms and service_ms percentiles, utilization and (one worker, no batching) mg1_queue_ms.

    Utilization is the workers' busy time over the arrival window (= arrival rate x mean in-run service time / workers
    without batching); the M/G/1 (Pollaczek-Khinchine) prediction uses the service times measured during the run.
    """
    if not len(queue_ns):
        return {"queue_ms": None, "service_ms": None, "utilization": None, "mg1_queue_ms": None}
    rate = len(queue_ns) / (window_ns / 1e9)
    return {
        "queue_ms": stats.latency_summary(np.asarray(queue_ns, np.int64))[0],
        "service_ms": stats.latency_summary(np.asarray(service_ns, np.int64))[0],
        "utilization": float(busy_ns / (window_ns * workers)),
        "mg1_queue_ms": pollaczek_khinchine_ms(rate, service_ns) if single_server else None,
    }
