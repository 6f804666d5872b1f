"""Users' item histories with a planted next-item process: taste plus the last item, among popular candidates."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models.data import PlantedTruth, zipf_ids

PAD = 0  # item 0 is padding; real items are 1..num_items


@dataclass(frozen=True)
class SequenceSynth:
    """Each step draws Zipf-popular candidates and picks one by affinity to (user taste + last item) + noise."""

    num_items: int
    history: int  # items the model sees (left-padded)
    candidates: int = 64
    taste_weight: float = 0.6
    temperature: float = 0.5
    zipf_exponent: float = 1.05
    truth: PlantedTruth = PlantedTruth(latent_dim=8)

    @cached_property
    def item_vectors(self) -> np.ndarray:
        return self.truth.latent(np.arange(self.num_items + 1), 0)

    def sequences(self, n: int, seed: int) -> np.ndarray:
        """n left-padded sequences of history + 1 items (the last one is the held-out next item)."""
        rng = np.random.default_rng(seed)
        vecs = self.item_vectors
        taste = rng.standard_normal((n, vecs.shape[1])).astype(np.float32)
        seq = np.empty((n, self.history + 1), np.int64)
        seq[:, 0] = zipf_ids(rng, n, self.num_items, self.zipf_exponent) + 1
        for t in range(1, self.history + 1):
            state = self.taste_weight * taste + (1 - self.taste_weight) * vecs[seq[:, t - 1]]
            cands = zipf_ids(rng, n * self.candidates, self.num_items, self.zipf_exponent).reshape(n, -1) + 1
            logits = np.einsum("nd,ncd->nc", state, vecs[cands]) / self.temperature + rng.gumbel(size=cands.shape)
            seq[:, t] = cands[np.arange(n), logits.argmax(axis=1)]
        lengths = rng.integers(max(2, self.history // 4), self.history + 2, size=n)  # items kept incl. the target
        seq[np.arange(self.history + 1)[None, :] < (self.history + 1 - lengths)[:, None]] = PAD
        return seq

    def features(self, n: int, seed: int) -> dict[str, np.ndarray]:
        return {"history": self.sequences(n, seed)[:, :-1]}

    def labelled(self, n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Histories and their held-out next items (item IDs, not clicks)."""
        seq = self.sequences(n, seed)
        return {"history": seq[:, :-1]}, seq[:, -1]


def history_prefix(history: np.ndarray, share: np.ndarray) -> np.ndarray:
    """Left-padded histories [n, L] as they stood earlier: each row's first ceil(share x its items) items (at least
    one), left-padded with PAD again; share (n,) in (0, 1], 1 = the whole history."""
    length = history.shape[1]
    real = (history != PAD).sum(1)
    keep = np.minimum(np.maximum(np.ceil(real * share).astype(np.int64), 1), real)
    pos = np.arange(length)[None, :]
    shifted = np.take_along_axis(history, np.maximum(pos - (real - keep)[:, None], 0), axis=1)
    return np.where(pos >= (length - keep)[:, None], shifted, PAD)
