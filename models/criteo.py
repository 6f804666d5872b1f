"""The real Criteo display-advertising TSV: label, I1-I13 integer counts, C1-C26 hex categories, any may be empty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models.data import NUM_DENSE
from models.errors import ModelError

NUM_SPARSE = 26
COLUMNS = ["label", *(f"I{i}" for i in range(1, NUM_DENSE + 1)), *(f"C{i}" for i in range(1, NUM_SPARSE + 1))]


def hash_categories(values: pd.Series, cardinality: int) -> np.ndarray:
    """Hex category -> row in [0, cardinality): missing is row 0, the rest hash modulo the other rows."""
    out = np.zeros(len(values), np.int64)
    present = values.notna().to_numpy()
    if cardinality > 1 and present.any():
        ids = values[present].map(lambda h: int(h, 16)).to_numpy(np.int64)
        out[present] = 1 + ids % (cardinality - 1)
    return out


def read_criteo(path: str | Path, cardinalities: tuple[int, ...], limit: int | None = None
                ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features (dense: log(1 + max(count, 0)), missing = 0; sparse: hashed IDs) and click labels of a TSV file."""
    if len(cardinalities) != NUM_SPARSE:
        raise ModelError(f"Criteo has {NUM_SPARSE} categorical columns; the model has {len(cardinalities)} tables")
    try:
        frame = pd.read_csv(path, sep="\t", header=None, nrows=limit, dtype=str, keep_default_na=False,
                            na_values=[""])
    except (OSError, pd.errors.ParserError) as e:
        raise ModelError(f"cannot read Criteo TSV {path}: {str(e).splitlines()[0]}") from None
    if frame.shape[1] != len(COLUMNS):
        raise ModelError(f"{path}: expected {len(COLUMNS)} tab-separated columns (label, I1-I13, C1-C26), "
                        f"got {frame.shape[1]}")
    frame.columns = COLUMNS
    try:
        labels = frame["label"].astype(np.float32).to_numpy()
        counts = frame[COLUMNS[1 : 1 + NUM_DENSE]].astype(np.float64).fillna(0.0).to_numpy()
        sparse = np.stack([hash_categories(frame[c], n) for c, n in zip(COLUMNS[1 + NUM_DENSE :], cardinalities,
                                                                        strict=True)], axis=1)
    except ValueError as e:
        raise ModelError(f"{path}: not Criteo data ({e})") from None
    dense = np.log1p(np.maximum(counts, 0.0)).astype(np.float32)
    return {"dense": dense, "sparse": sparse}, labels


def holdout_split(x: dict[str, np.ndarray], y: np.ndarray, every: int = 10):
    """Every `every`-th row held out for evaluation, the rest for training: ((x_train, y_train), (x_eval, y_eval))."""
    held = np.arange(len(y)) % every == 0
    return ({k: v[~held] for k, v in x.items()}, y[~held]), ({k: v[held] for k, v in x.items()}, y[held])
