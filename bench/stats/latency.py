"""Latency statistics: percentiles backed by enough samples, their exact CIs, throughput and a stability verdict."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from scipy import stats as sps

from bench.config.sweep import TimingConfig
from bench.stats.significance import _subsample

PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}
CV_WARN = 0.10  # pyperf warns past 10% relative standard deviation
TRIAL_SPREAD_WARN = 0.10  # (max - min) / median of the per-trial medians or throughputs
TRIALS = 5  # the measured phase is split into this many consecutive trials
PERCENTILE_CONFIDENCE = 0.99  # a percentile is reported only when this confident it is not below the true one
OVERSHOOTS = 1  # ... while tolerating one sample above it (MLPerf early stopping: 662 samples for p99)
CI_LEVEL = 0.95
CI_RESAMPLES = 1000
DEFAULT_RESOLVE = TimingConfig.model_fields["resolve"].default  # what a run measures until resolvable
RESOLVE_MARGIN = 1.5  # the --max-duration advised over the time at the measured rate: noise, and open-loop
# scenarios plan their arrivals within 80% of the cap


@cache
def min_samples(percentile: float, confidence: float = PERCENTILE_CONFIDENCE, overshoots: int = OVERSHOOTS) -> int:
    """Fewest samples for which `overshoots` samples above the true percentile happen with prob. <= 1 - confidence.

    This is MLPerf LoadGen's early-stopping bound: for p99 at 99% confidence it gives 662, for p90 64.
    """
    q = percentile / 100
    n = np.arange(1, int(np.ceil(np.log(1 - confidence) / np.log(q))) * 20 + overshoots + 2)
    ok = sps.binom.cdf(overshoots, n, 1 - q) <= 1 - confidence
    return int(n[np.argmax(ok)])


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
    ci = sps.quantile_test(x, q=float(np.quantile(x, q)), p=q).confidence_interval(CI_LEVEL)
    return [float(ci.low), float(ci.high)]


def _bootstrap(x: np.ndarray, fn, rng: np.random.Generator) -> list[float]:
    """Percentile-bootstrap CI of fn(x), resampling at most significance.MAX_POINTS values.

    On a subsample of m of the n values the CI's distances from the subsample's estimate shrink by sqrt(m/n)
    (percentiles and means are root-n consistent) and are laid around the estimate from all n values.
    """
    x = np.asarray(x, dtype=np.float64)
    sample = _subsample(x, rng)
    estimate = float(fn(x, axis=None))
    if len(sample) < 2 or np.all(sample == sample[0]):
        return [estimate, estimate]
    res = sps.bootstrap((sample,), fn, vectorized=True, n_resamples=CI_RESAMPLES, confidence_level=CI_LEVEL,
                        method="percentile", random_state=rng)
    centre, shrink = float(fn(sample, axis=None)), np.sqrt(len(sample) / len(x))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return [estimate - max(centre - lo, 0.0) * shrink, estimate + max(hi - centre, 0.0) * shrink]


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
    rng = np.random.default_rng(seed)
    ms = latencies_ns.astype(np.float64) / 1e6
    ci = {name: percentile_ci(ms, PERCENTILES[name] / 100) if lat[name] is not None else None
          for name in ("p50", "p99")}
    gaps = np.diff(np.sort(ends)) if ends_ns is not None else latencies_ns
    gaps = gaps.astype(np.float64)
    tp_ci = None
    if len(gaps) >= 2 and gaps.mean() > 0:
        lo, hi = _bootstrap(gaps, lambda x, axis: np.mean(x, axis=axis), rng)
        tp_ci = [float(throughput * gaps.mean() / hi), float(throughput * gaps.mean() / lo)] if lo > 0 else None
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
