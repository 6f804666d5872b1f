"""The request stream of the server-type scenarios: when requests arrive (Poisson, constant, bursty: a two-state
Markov-modulated Poisson process, or a trace file of one inter-arrival gap per line in microseconds, like
perf_analyzer's --request-intervals) and how many candidate rows each carries (1 user x N items, N drawn per request).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


def read_numbers(path: Path, what: str, each: str) -> np.ndarray:
    """The numbers of a file, one per line; ValueError (one line) when it is unreadable or a line is no number."""
    try:
        return np.array(Path(path).read_text().split(), dtype=np.float64)
    except OSError as e:
        raise ValueError(f"cannot read {what} {path}: {e.strerror}") from None
    except ValueError:
        raise ValueError(f"{what} {path}: every line must be {each}") from None


def read_trace(path: Path) -> np.ndarray:
    """The gaps (us) of a trace file; ValueError (one line) when it is unreadable, empty or has a bad gap."""
    gaps = read_numbers(path, "arrival trace", "one gap in microseconds")
    if not len(gaps):
        raise ValueError(f"arrival trace {path} is empty: it needs one inter-arrival gap (us) per line")
    if (gaps < 0).any() or not np.isfinite(gaps).all() or gaps.sum() <= 0:
        raise ValueError(f"arrival trace {path}: gaps must be finite, >= 0 and not all zero")
    return gaps


def read_counts(path: Path) -> np.ndarray:
    """The candidate counts of a file (one per line) that requests draw from uniformly."""
    counts = read_numbers(path, "candidate counts", "one whole number of candidates")
    if not len(counts) or (counts < 1).any() or (counts != np.round(counts)).any():
        raise ValueError(f"candidate distribution has no mass: {path} must list whole counts >= 1, one per line")
    return counts.astype(np.int64)


class Arrivals(BaseModel):
    """`arrivals: poisson|constant|bursty` or a mapping: {kind: bursty, burst_factor: 4, ...} / {file: gaps.txt}."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["poisson", "constant", "bursty", "file"] = "poisson"
    file: Path | None = None  # kind file: one gap (us) per line; --qps rescales it to that mean rate
    burst_factor: float = Field(4.0, ge=1)  # bursty: arrival rate in a burst / rate between bursts
    burst_share: float = Field(0.2, gt=0, lt=1)  # bursty: long-run fraction of time spent in bursts
    mean_burst_ms: float = Field(100.0, gt=0)  # bursty: mean length of a burst (exponential)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v):
        if isinstance(v, str):
            return {"kind": v}
        if isinstance(v, dict) and "file" in v and "kind" not in v:
            return {**v, "kind": "file"}
        return v

    @model_validator(mode="after")
    def _trace_readable(self) -> Arrivals:
        if (self.kind == "file") != (self.file is not None):
            raise ValueError("arrivals: give a trace as {file: PATH} (kind file needs a file, other kinds take none)")
        if self.file is not None:
            read_trace(self.file)
        return self

    def trace_qps(self) -> float | None:
        """A trace's own mean request rate (None for the generated kinds)."""
        return None if self.file is None else len(g := read_trace(self.file)) / (g.sum() / 1e6)

    def offsets(self, n: int, qps: float, seed: int = 0) -> np.ndarray:
        """n arrival offsets (ns from the start) at a mean rate of `qps` requests per second."""
        if self.kind == "poisson":  # conditioned on n arrivals in n/qps s: sorted uniforms, so the rate is exact
            return np.sort(np.random.default_rng(seed).uniform(0.0, n / qps, n) * 1e9).astype(np.int64)
        if self.kind == "constant":
            return (np.arange(n) * (1e9 / qps)).astype(np.int64)
        if self.kind == "bursty":
            return mmpp(n, qps, self, seed)
        gaps = np.resize(read_trace(self.file), n) * (self.trace_qps() / qps)  # cycled to n, scaled to the rate
        return np.round(np.cumsum(gaps) * 1e3).astype(np.int64)  # each gap comes before its request


def mmpp(n: int, qps: float, spec: Arrivals, seed: int = 0) -> np.ndarray:
    """A two-state Markov-modulated Poisson process whose long-run mean rate is `qps`.

    Calm and burst periods alternate with exponential lengths (bursts `mean_burst_ms` on average, calm periods
    long enough that bursts take `burst_share` of the time); the burst rate is `burst_factor` x the calm rate.
    """
    rng = np.random.default_rng(seed)
    f, k = spec.burst_share, spec.burst_factor
    calm_rate = qps / ((1 - f) + f * k)
    means_s = (spec.mean_burst_ms / 1e3 * (1 - f) / f, spec.mean_burst_ms / 1e3)  # calm, burst
    out: list[np.ndarray] = []
    t, state, count = 0.0, 0, 0
    while count < n:
        length = rng.exponential(means_s[state])
        rate = calm_rate * (k if state else 1.0)
        m = rng.poisson(rate * length)
        out.append(t + np.sort(rng.uniform(0.0, length, m)))
        count += m
        t, state = t + length, 1 - state
    return (np.concatenate(out)[:n] * 1e9).astype(np.int64)


class Candidates(BaseModel):
    """`candidates: {distribution: lognormal|uniform|fixed|file, ...}`; counts are clipped to [min, max]."""

    model_config = ConfigDict(extra="forbid")
    distribution: Literal["lognormal", "uniform", "fixed", "file"] = "lognormal"
    n: int | None = None  # fixed
    median: float = Field(100.0, gt=0)  # lognormal: median count
    sigma: float = Field(1.0, ge=0)  # lognormal: std of log(count)
    low: int | None = None  # uniform: smallest count (inclusive), default min
    high: int | None = None  # uniform: largest count (inclusive), default max
    file: Path | None = None  # file: counts to draw from, one per line
    min: int = 1  # every count is clipped to [min, max]
    max: int = Field(2048, ge=1)

    @model_validator(mode="after")
    def _has_mass(self) -> Candidates:
        if self.distribution == "file":
            if self.file is None:
                raise ValueError("candidates: distribution file needs file: PATH")
            read_counts(self.file)
        elif self.distribution == "fixed":
            if self.n is None or self.n < 1:
                raise ValueError(f"candidate distribution has no mass: fixed needs n >= 1, got n={self.n}")
        elif self._bounds()[0] > self._bounds()[1]:
            lo, hi = self._bounds()
            raise ValueError(f"candidate distribution has no mass: {self.distribution} allows no count >= 1 "
                             f"between {lo} and {hi} (low/high within min={self.min}, max={self.max})")
        return self

    def _bounds(self) -> tuple[int, int]:
        """The smallest and largest count a lognormal or uniform draw can give."""
        lo = max(self.min, self.low if self.low is not None else self.min, 1)
        return lo, min(self.max, self.high if self.high is not None else self.max)

    def largest(self) -> int:
        """The most rows one request can carry."""
        if self.distribution == "fixed":
            return int(self.n)
        if self.distribution == "file":
            return int(read_counts(self.file).max())
        return self._bounds()[1]

    def draw(self, n: int, seed: int = 0) -> np.ndarray:
        """Candidate counts of n requests."""
        rng = np.random.default_rng(seed + 7)  # not the arrivals' stream
        if self.distribution == "fixed":
            return np.full(n, self.n, dtype=np.int64)
        if self.distribution == "file":
            return rng.choice(read_counts(self.file), n)
        lo, hi = self._bounds()
        if self.distribution == "uniform":
            return rng.integers(lo, hi + 1, n)
        return np.clip(np.round(rng.lognormal(np.log(self.median), self.sigma, n)), lo, hi).astype(np.int64)
