"""Multi-hot Criteo-like data (several IDs per categorical feature, as in MLPerf's multi-hot Criteo)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.data import CriteoSynth, PlantedTruth, hashed_uniform, zipf_ids

# IDs per sample of each of the 26 features in MLPerf's synthetic multi-hot Criteo (DLRM-DCNv2 reference).
MLPERF_HOTNESS = (3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1)


def capped_hotness(cap: int) -> tuple[int, ...]:
    return tuple(min(h, cap) for h in MLPERF_HOTNESS)


def pooled_logit(truth: PlantedTruth, dense: np.ndarray, bags: list[np.ndarray]) -> np.ndarray:
    """The planted click logit with each feature's bias and latent vector averaged over its bag of IDs."""
    tables = list(truth.signal_tables)
    bias = sum(hashed_uniform(bags[t], 7919 * (t + 1)).mean(axis=1) for t in tables)
    z = np.stack([truth.latent(bags[t], t).mean(axis=1) for t in tables], axis=1)  # (n, tables, latent)
    gram = np.einsum("nad,nbd->nab", z, z)
    rows, cols = np.triu_indices(len(tables), k=1)
    pairs = gram[:, rows, cols].sum(axis=1)
    centred = np.tanh(dense - dense.mean(axis=0, keepdims=True))
    return (truth.offset + truth.bias_scale * bias + truth.interaction_scale / np.sqrt(len(tables))
            * pairs / truth.latent_dim + truth.dense_scale * centred @ hashed_uniform(np.arange(dense.shape[1]), 31337))


@dataclass(frozen=True)
class MultiHotCriteoSynth:
    """13 dense features and 26 bags of Zipf IDs, flattened into one `sparse` row of sum(hotness) IDs."""

    cardinalities: tuple[int, ...]
    hotness: tuple[int, ...]
    zipf_exponent: float = 1.1
    truth: PlantedTruth = PlantedTruth()

    def bags(self, sparse: np.ndarray) -> list[np.ndarray]:
        edges = np.cumsum((0, *self.hotness))
        return [sparse[:, a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def features(self, n: int, seed: int) -> dict[str, np.ndarray]:
        one_hot = CriteoSynth(self.cardinalities, self.zipf_exponent).features(n, seed)
        rng = np.random.default_rng(seed + 7)
        bags = [np.column_stack([one_hot["sparse"][:, t], *(zipf_ids(rng, n, c, self.zipf_exponent)
                                                            for _ in range(h - 1))])
                for t, (c, h) in enumerate(zip(self.cardinalities, self.hotness, strict=True))]
        return {"dense": one_hot["dense"], "sparse": np.concatenate(bags, axis=1).astype(np.int64)}

    def labelled(self, n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        x = self.features(n, seed)
        p = 1.0 / (1.0 + np.exp(-pooled_logit(self.truth, x["dense"], self.bags(x["sparse"]))))
        return x, (np.random.default_rng(seed + 1).random(n) < p).astype(np.float32)
