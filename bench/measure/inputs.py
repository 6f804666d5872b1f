"""The inputs a job is fed: a pool of distinct batches by input name, one npz file per pool ("<i>/<input>" keys)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class InputPool:
    """Distinct batches, each {input name: array}: the sweep saves them, the worker, fidelity and serving load them."""

    batches: list[dict[str, np.ndarray]]

    @staticmethod
    def path(run_dir: str | Path, rows: int, row_pool: bool = False) -> Path:
        """Where a run keeps its pool of batches of `rows` rows, or its row pool (one batch of `rows` rows)."""
        return Path(run_dir) / "inputs" / (f"rows{rows}.npz" if row_pool else f"b{rows}.npz")

    def save(self, path: str | Path) -> None:
        np.savez(path, **{f"{i}/{name}": v for i, batch in enumerate(self.batches) for name, v in batch.items()})

    @classmethod
    def load(cls, path: str | Path) -> InputPool:
        batches: dict[int, dict[str, np.ndarray]] = {}
        with np.load(path) as pool:
            for key in pool.files:
                i, name = key.split("/", 1)
                batches.setdefault(int(i), {})[name] = pool[key]
        return cls([batches[i] for i in sorted(batches)])
