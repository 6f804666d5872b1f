"""How many candidate rows one ranking request carries: 1 user x N items, N drawn per request."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


def read_counts(path: Path) -> np.ndarray:
    """The candidate counts of a file (one per line) that requests draw from uniformly."""
    try:
        counts = np.array([float(s) for s in Path(path).read_text().split()], dtype=np.float64)
    except OSError as e:
        raise ValueError(f"cannot read candidate counts {path}: {e.strerror}") from None
    except ValueError:
        raise ValueError(f"candidate counts {path}: every line must be one whole number of candidates") from None
    if not len(counts) or (counts < 1).any() or (counts != np.round(counts)).any():
        raise ValueError(f"candidate distribution has no mass: {path} must list whole counts >= 1, one per line")
    return counts.astype(np.int64)


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
