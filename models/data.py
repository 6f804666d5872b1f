"""Synthetic Criteo-like data with a planted ground truth, so trained models have something to learn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Criteo Kaggle day cardinalities (after the usual frequency threshold): a few huge tables, many small.
CRITEO_CARDINALITIES = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)
NUM_DENSE = 13
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def criteo_cardinalities(cap: int) -> tuple[int, ...]:
    """Criteo's 26 table sizes, each capped at `cap` rows (hashing the long tail, as DLRM does)."""
    return tuple(min(c, cap) for c in CRITEO_CARDINALITIES)


def zipf_ids(rng: np.random.Generator, n: int, cardinality: int, exponent: float) -> np.ndarray:
    """IDs in [0, cardinality) from a bounded power law, hot IDs scattered over the table."""
    if cardinality <= 1:
        return np.zeros(n, np.int64)
    a = 1.0 - exponent
    rank = np.floor(((cardinality**a - 1.0) * rng.random(n) + 1.0) ** (1.0 / a)).astype(np.int64) - 1
    rank = np.clip(rank, 0, cardinality - 1)
    return (rank * 2654435761) % cardinality  # a fixed permutation: rows of hot IDs are not adjacent


def hashed_uniform(ids: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic pseudo-random values in [-sqrt(3), sqrt(3)] (unit variance) per (id, salt)."""
    with np.errstate(over="ignore"):
        x = ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt) * np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(30)
        x = (x * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        x ^= x >> np.uint64(27)
        x = (x * np.uint64(0x94D049BB133111EB)) & _MASK
        x ^= x >> np.uint64(31)
    u = (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return ((u * 2.0 - 1.0) * np.sqrt(3.0)).astype(np.float32)


@dataclass(frozen=True)
class PlantedTruth:
    """The hidden click model: per-ID biases and latent vectors, interacting pairwise, plus dense terms."""

    latent_dim: int = 4
    signal_tables: tuple[int, ...] = (0, 1, 2, 3, 6, 9, 11, 15, 23, 25)
    bias_scale: float = 0.5
    interaction_scale: float = 0.45
    dense_scale: float = 0.35
    offset: float = -1.2

    def latent(self, ids: np.ndarray, table: int) -> np.ndarray:
        return np.stack([hashed_uniform(ids, 1000 * table + j + 1) for j in range(self.latent_dim)], axis=-1)

    def logit(self, dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
        out = np.full(len(dense), self.offset, np.float64)
        z = {t: self.latent(sparse[:, t], t) for t in self.signal_tables}
        for t in self.signal_tables:
            out += self.bias_scale * hashed_uniform(sparse[:, t], 7919 * (t + 1))
        tables = list(self.signal_tables)
        for i, a in enumerate(tables):
            for b in tables[i + 1 :]:
                out += self.interaction_scale / np.sqrt(len(tables)) * np.sum(z[a] * z[b], axis=1) / self.latent_dim
        centred = dense - dense.mean(axis=0, keepdims=True)
        weights = hashed_uniform(np.arange(dense.shape[1]), 31337)
        out += self.dense_scale * np.tanh(centred) @ weights
        return out


@dataclass(frozen=True)
class CriteoSynth:
    """Criteo-shaped samples: 13 log-normal dense features, 26 Zipf-distributed categorical IDs."""

    cardinalities: tuple[int, ...]
    zipf_exponent: float = 1.1
    truth: PlantedTruth = PlantedTruth()

    def features(self, n: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        raw = rng.lognormal(mean=1.0, sigma=1.2, size=(n, NUM_DENSE))
        dense = np.log1p(raw).astype(np.float32)  # the usual log(1+x) transform of Criteo counts
        sparse = np.stack([zipf_ids(rng, n, c, self.zipf_exponent) for c in self.cardinalities], axis=1)
        return {"dense": dense, "sparse": sparse.astype(np.int64)}

    def labelled(self, n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Features plus clicks sampled from the planted truth's click probability."""
        x = self.features(n, seed)
        p = 1.0 / (1.0 + np.exp(-self.truth.logit(x["dense"], x["sparse"])))
        labels = (np.random.default_rng(seed + 1).random(n) < p).astype(np.float32)
        return x, labels
