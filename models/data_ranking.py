"""Labelled data for the ranking families with several labels per row: a user's history with candidate items
(hstu, din) and Criteo-shaped samples with a click and a conversion (mmoe)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models.data import CriteoSynth, PlantedTruth, zipf_ids
from models.data_sequence import PAD, SequenceSynth


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class HistoryClickSynth:
    """SequenceSynth's histories plus `candidates` Zipf-popular items per user, each clicked with a planted
    probability: sigmoid(sharpness x <taste, item> + offset), taste = the mean of the user's item vectors
    blended with their last item's (so the model must read the whole history and its order)."""

    num_items: int
    history: int
    candidates: int
    recent: float = 0.4  # weight of the last item in the taste
    sharpness: float = 2.5
    offset: float = -1.0
    zipf_exponent: float = 1.05

    @cached_property
    def sequences(self) -> SequenceSynth:
        return SequenceSynth(self.num_items, self.history)

    def features(self, n: int, seed: int) -> dict[str, np.ndarray]:
        """history [n, history] (left-padded with 0) and candidates [n, candidates] item IDs."""
        rng = np.random.default_rng(seed + 7919)
        cands = zipf_ids(rng, n * self.candidates, self.num_items, self.zipf_exponent).reshape(n, -1) + 1
        return {"history": self.sequences.sequences(n, seed)[:, :-1], "candidates": cands}

    def click_probability(self, x: dict[str, np.ndarray]) -> np.ndarray:
        vecs = self.sequences.item_vectors
        real = (x["history"] != PAD)[..., None]
        mean = (vecs[x["history"]] * real).sum(1) / np.maximum(real.sum(1), 1)
        taste = (1 - self.recent) * mean + self.recent * vecs[x["history"][:, -1]]
        affinity = np.einsum("nd,ncd->nc", taste, vecs[x["candidates"]]) / np.sqrt(vecs.shape[1])
        return sigmoid(self.sharpness * affinity + self.offset)

    def labelled(self, n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Features and clicks [n, candidates] (0/1 float32)."""
        x = self.features(n, seed)
        p = self.click_probability(x)
        return x, (np.random.default_rng(seed + 1).random(p.shape) < p).astype(np.float32)


TASKS = ("click", "conversion")


@dataclass(frozen=True)
class MultiTaskSynth:
    """CriteoSynth's samples with two labels: a click from its planted truth, and a conversion that needs a click
    and follows a second planted truth over other features (correlated tasks, as in production)."""

    cardinalities: tuple[int, ...]
    conversion: PlantedTruth = PlantedTruth(signal_tables=(0, 4, 5, 7, 8, 10, 12, 13), offset=0.3)
    tasks: tuple[str, ...] = TASKS  # the label columns

    @cached_property
    def clicks(self) -> CriteoSynth:
        return CriteoSynth(self.cardinalities)

    def features(self, n: int, seed: int) -> dict[str, np.ndarray]:
        return self.clicks.features(n, seed)

    def labelled(self, n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Features and labels [n, 2]: click, conversion (0/1 float32)."""
        x = self.features(n, seed)
        rng = np.random.default_rng(seed + 1)
        click = rng.random(n) < sigmoid(self.clicks.truth.logit(x["dense"], x["sparse"]))
        convert = click & (rng.random(n) < sigmoid(self.conversion.logit(x["dense"], x["sparse"])))
        return x, np.stack([click, convert], axis=1).astype(np.float32)
