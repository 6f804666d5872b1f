"""Latency statistics: percentiles, dispersion and throughput from raw per-iteration latencies."""

from __future__ import annotations

import numpy as np

PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}
CV_WARN = 0.10  # pyperf warns past 10% relative standard deviation


def latency_summary(latencies_ns: np.ndarray) -> dict[str, float]:
    """mean/std/min/max and the percentiles of DESIGN.md, in milliseconds."""
    ms = latencies_ns.astype(np.float64) / 1e6
    out = {"mean": float(ms.mean()), "std": float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
           "min": float(ms.min()), "max": float(ms.max())}
    values = np.percentile(ms, list(PERCENTILES.values()), method="linear")
    out.update({k: float(v) for k, v in zip(PERCENTILES, values, strict=True)})
    return out


def summarize(latencies_ns: np.ndarray, samples_per_iter: int, wall_s: float) -> dict:
    """The record's latency and throughput fields. Throughput is samples over measured wall time."""
    lat = latency_summary(latencies_ns)
    cv = lat["std"] / lat["mean"] if lat["mean"] > 0 else 0.0
    warnings = []
    if cv > CV_WARN:
        warnings.append(f"unstable: coefficient of variation {cv:.0%} > {CV_WARN:.0%}")
    return {
        "latency_ms": lat,
        "throughput_sps": len(latencies_ns) * samples_per_iter / wall_s,
        "samples": int(len(latencies_ns) * samples_per_iter),
        "iterations": int(len(latencies_ns)),
        "duration_s": wall_s,
        "cv": cv,
        "stable": not warnings,
        "warnings": warnings,
    }


def device_summary(device_ms: dict[str, np.ndarray] | None) -> dict:
    """Record fields for device-side times: a summary per phase and each phase's share of the total."""
    if not device_ms:
        return {}
    out: dict = {"device_ms": {k: latency_summary(np.asarray(v) * 1e6) for k, v in device_ms.items()}}
    if "total" in device_ms and device_ms["total"].mean() > 0:
        total = device_ms["total"].mean()
        out["device_share"] = {k: float(v.mean() / total) for k, v in device_ms.items() if k != "total"}
    return out
