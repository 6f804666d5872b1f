"""Latency statistics: percentiles backed by enough samples, their exact CIs, throughput and a stability verdict."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from bench.stats import hboot
from bench.stats.percentiles import DEFAULT_RESOLVE, PERCENTILE_CONFIDENCE, PERCENTILES, min_samples

CV_WARN = 0.10  # pyperf warns past 10% relative standard deviation
TRIAL_SPREAD_WARN = 0.10  # (max - min) / median of the per-trial medians or throughputs
TRIALS = 5  # the measured phase is split into this many consecutive trials
RESOLVE_MARGIN = 1.5  # the --max-duration advised over the time at the measured rate: noise, and open-loop
# scenarios plan their arrivals within 80% of the cap


def unresolved(name: str, iterations: int, seconds_per_iteration: float | None,
               resolving: str | None = DEFAULT_RESOLVE) -> str | None:
    """None when `iterations` back percentile `name` (p99): the one sample rule of records, reports and gates.
    Otherwise why not, and the `recbench run` flags that would measure enough: the measured phase's cap
    (--max-duration, in seconds at the measured rate), and --resolve when the run aimed at fewer samples
    (`resolving`: the percentile it measured until resolvable, None: none)."""
    need = min_samples(PERCENTILES[name])
    if iterations >= need:
        return None
    aimed = min_samples(PERCENTILES[resolving]) if resolving in PERCENTILES else 0
    flags = f"--resolve {name} " if need > aimed else ""
    rate = ""
    if seconds_per_iteration:
        flags += f"--max-duration {math.ceil(need * seconds_per_iteration * RESOLVE_MARGIN)}"
        rate = f" at the measured {seconds_per_iteration * 1e3:.3g} ms per iteration"
    else:
        flags += "--max-duration SECONDS"
    return (f"needs >= {need} iterations for {PERCENTILE_CONFIDENCE:.0%} confidence (MLPerf early stopping), have "
            f"{iterations}; `recbench run {flags}` measures that many{rate}")


def latency_summary(latencies_ns: np.ndarray, wall_s: float | None = None
                    ) -> tuple[dict[str, float | None], list[str]]:
    """mean/std/min/max and the percentiles of DESIGN.md in milliseconds; a percentile too few samples back is None.
    wall_s: how long the samples took (default: back to back, their sum), for the time more of them would take."""
    ms = latencies_ns.astype(np.float64) / 1e6
    per_iteration = (wall_s if wall_s is not None else ms.sum() / 1e3) / len(ms)
    out: dict[str, float | None] = {"mean": float(ms.mean()), "std": float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
                                    "min": float(ms.min()), "max": float(ms.max())}
    values = np.percentile(ms, list(PERCENTILES.values()), method="linear")
    warnings = []
    for name, v in zip(PERCENTILES, values, strict=True):
        why = unresolved(name, len(ms), per_iteration)
        out[name] = None if why else float(v)
        if why:
            warnings.append(f"{name} not reported: {why}")
    return out, warnings


def percentile_ci(x: np.ndarray, q: float) -> list[float]:
    """Distribution-free 95% CI of the q-quantile: the binomial order-statistic interval (exact at any n)."""
    ci = sps.quantile_test(x, q=float(np.quantile(x, q)), p=q).confidence_interval(hboot.CONFIDENCE)
    return [float(ci.low), float(ci.high)]


def _spread(values: list[float]) -> float:
    med = float(np.median(values))
    return (max(values) - min(values)) / med if med > 0 else 0.0


def trials(latencies_ns: np.ndarray, ends_ns: np.ndarray, samples_per_iter: int, count: int = TRIALS) -> dict | None:
    """Split the measured phase (in completion order) into consecutive trials: per-trial p50 and throughput."""
    if len(latencies_ns) < count * 10:
        return None
    order = np.argsort(ends_ns, kind="stable")
    p50s, tps = [], []
    for chunk in np.array_split(order, count):
        p50s.append(float(np.median(latencies_ns[chunk])) / 1e6)
        span = (ends_ns[chunk[-1]] - ends_ns[chunk[0]]) / 1e9
        tps.append((len(chunk) - 1) * samples_per_iter / span if span > 0 else float("nan"))
    return {"count": count, "p50_ms": p50s, "throughput_sps": tps, "p50_spread": _spread(p50s),
            "throughput_spread": _spread(tps)}


def summarize(latencies_ns: np.ndarray, samples_per_iter: int, wall_s: float, ends_ns: np.ndarray | None = None,
              open_loop: bool = False, seed: int = 0) -> dict:
    """The record's latency, throughput, CI and stability fields. Throughput is samples over measured wall time.

    ends_ns: each request's completion time (default: back to back, one at a time). open_loop: latencies include
    queueing driven by random arrivals, so neither their CV nor the per-trial throughput judges stability.
    """
    latencies_ns = np.asarray(latencies_ns, dtype=np.int64)
    ends = np.cumsum(latencies_ns) if ends_ns is None else np.asarray(ends_ns, dtype=np.int64)
    lat, warnings = latency_summary(latencies_ns, wall_s)
    throughput = float(len(latencies_ns) * samples_per_iter / wall_s)
    cv = lat["std"] / lat["mean"] if lat["mean"] > 0 else 0.0
    unstable = []
    if cv > CV_WARN and not open_loop:
        unstable.append(f"unstable: coefficient of variation {cv:.0%} > {CV_WARN:.0%}")
    tr = trials(latencies_ns, ends, samples_per_iter)
    if tr:
        if tr["p50_spread"] > TRIAL_SPREAD_WARN:
            unstable.append(f"unstable: p50 differs by {tr['p50_spread']:.0%} between {tr['count']} trials "
                            f"(> {TRIAL_SPREAD_WARN:.0%})")
        if not open_loop and tr["throughput_spread"] > TRIAL_SPREAD_WARN:
            unstable.append(f"unstable: throughput differs by {tr['throughput_spread']:.0%} between {tr['count']} "
                            f"trials (> {TRIAL_SPREAD_WARN:.0%})")
    ms = latencies_ns.astype(np.float64) / 1e6
    ci = {name: percentile_ci(ms, PERCENTILES[name] / 100) if lat[name] is not None else None
          for name in ("p50", "p99")}
    gaps = (np.diff(np.sort(ends)) if ends_ns is not None else latencies_ns).astype(np.float64)
    mean = hboot.pooled([gaps], "mean", seed) if len(gaps) >= 2 and gaps.mean() > 0 else None  # of the gaps
    tp_ci = [throughput * mean.value / mean.ci[1], throughput * mean.value / mean.ci[0]] if mean else None
    return {
        "latency_ms": lat,
        "latency_ci_ms": ci,
        "throughput_sps": throughput,
        "throughput_ci_sps": tp_ci,
        "samples": int(len(latencies_ns) * samples_per_iter),
        "iterations": int(len(latencies_ns)),
        "duration_s": float(wall_s),
        "cv": cv,
        "trials": tr,
        "stable": not unstable,
        "warnings": unstable + warnings,
    }


def device_summary(device_ms: dict[str, np.ndarray] | None) -> dict:
    """Record fields for device-side times: a summary per phase and each phase's share of the total."""
    if not device_ms:
        return {}
    out: dict = {"device_ms": {k: latency_summary(np.asarray(v) * 1e6)[0] for k, v in device_ms.items()}}
    if "total" in device_ms and device_ms["total"].mean() > 0:
        total = device_ms["total"].mean()
        out["device_share"] = {k: float(v.mean() / total) for k, v in device_ms.items() if k != "total"}
    return out
