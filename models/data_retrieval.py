"""User/item interaction data for retrieval, with a planted relevance: a dot product of hidden taste vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.data import PlantedTruth, hashed_uniform, zipf_ids

ITEM_SALT = 100  # keeps item columns' hidden vectors apart from user columns'


def derived_fields(ids: np.ndarray, cardinalities: tuple[int, ...], salt: int) -> np.ndarray:
    """A row per entity: its ID, then fixed attributes (e.g. region, category) hashed from the ID."""
    cols = [ids]
    for j, c in enumerate(cardinalities):
        u = (hashed_uniform(ids, 4241 * (salt + j + 1)) / np.sqrt(3.0) + 1.0) / 2.0  # uniform in [0, 1]
        cols.append(np.minimum((u * c).astype(np.int64), c - 1))
    return np.stack(cols, axis=1).astype(np.int64)


@dataclass(frozen=True)
class RetrievalSynth:
    """Zipf-popular users and items; the click logit is their hidden taste vectors' scaled dot product."""

    num_users: int
    num_items: int
    user_fields: tuple[int, ...]  # cardinalities of the attributes derived from a user ID
    item_fields: tuple[int, ...]
    zipf_exponent: float = 1.05
    truth: PlantedTruth = PlantedTruth(latent_dim=8)
    scale: float = 2.0
    offset: float = -1.0

    def users(self, ids: np.ndarray) -> np.ndarray:
        return derived_fields(ids, self.user_fields, 0)

    def items(self, ids: np.ndarray) -> np.ndarray:
        return derived_fields(ids, self.item_fields, ITEM_SALT)

    def taste(self, rows: np.ndarray, salt: int) -> np.ndarray:
        """Hidden vector of an entity: the normalised sum of its ID's and its attributes' vectors."""
        vecs = sum(self.truth.latent(rows[:, j], salt + j) for j in range(rows.shape[1]))
        return (vecs / np.sqrt(rows.shape[1])).astype(np.float32)

    def features(self, n: int, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {"user": self.users(zipf_ids(rng, n, self.num_users, self.zipf_exponent)),
                "item": self.items(zipf_ids(rng, n, self.num_items, self.zipf_exponent))}

    def labelled(self, n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        x = self.features(n, seed)
        dot = np.sum(self.taste(x["user"], 0) * self.taste(x["item"], ITEM_SALT), axis=1)
        logit = self.offset + self.scale * dot / np.sqrt(self.truth.latent_dim)
        return x, (np.random.default_rng(seed + 1).random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)


@dataclass(frozen=True)
class UserQueries:
    """The retrieval benchmark's inputs: user rows only (the item corpus is inside the model)."""

    pairs: RetrievalSynth

    def features(self, n: int, seed: int) -> dict[str, np.ndarray]:
        return {"user": self.pairs.features(n, seed)["user"]}

