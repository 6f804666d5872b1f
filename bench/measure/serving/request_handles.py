"""Prepared inputs for requests of any row count: cut from one long pool of distinct rows, bound before the run."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

HandleFor = Callable[[int, int, int], Any]  # (worker, rows, first request of the call) -> a handle only it uses


def rotating(handles: list[Any], workers: int) -> HandleFor:
    """Fixed-size requests: each worker rotates through its own share of the job's prepared batches."""
    own = [itertools.cycle(handles[w::workers]) for w in range(workers)]
    return lambda worker, rows, request=0: next(own[worker])


class SizedHandles:
    """One prepared handle per (worker, row count), each a different slice of the row pool (no copy of a batch).

    With `item_input` (a model whose request is one user's history + N candidates: hstu, din) a row is a candidate:
    a call of N rows is one pool row's other inputs with N items cut from the pool's items laid end to end."""

    def __init__(self, prepare: Callable[[dict], Any], rows: dict[str, np.ndarray], batch_size: int,
                 item_input: str = ""):
        self.prepare, self.batch_size, self.item_input, self.pool = prepare, batch_size, item_input, rows
        self.rows = {**rows, item_input: rows[item_input].reshape(1, -1)} if item_input else rows
        self.total = self.rows[item_input].shape[1] if item_input else len(next(iter(rows.values())))
        self.cache: dict[tuple[int, int], Any] = {}

    def cut(self, start: int, rows: int) -> dict[str, np.ndarray]:
        """The inputs of one call of `rows` rows starting at pool position `start`."""
        if not self.item_input:
            return {k: v[start:start + rows] for k, v in self.rows.items()}
        user = start % len(next(v for k, v in self.rows.items() if k != self.item_input))
        return {k: v[:, start:start + rows] if k == self.item_input else v[user:user + 1] for k, v in self.rows.items()}

    def bind(self, workers: int, sizes: Iterable[int]) -> None:
        """Prepare every (worker, size) a run can ask for, outside the timed region."""
        for w in range(workers):
            for k in sorted(set(int(s) for s in sizes)):
                self(w, k)

    def start(self, rows: int, k: int) -> int:
        """Where the k-th slice of `rows` rows begins: slices spread over the pool."""
        if rows > self.total:
            raise ValueError(f"a call of {rows} rows needs a row pool that large; the pool has {self.total}")
        return (rows * 7919 + k * 104_729) % (self.total - rows + 1)

    def __call__(self, worker: int, rows: int, request: int = 0) -> Any:
        key = (worker, rows)
        if key not in self.cache:
            self.cache[key] = self.prepare(self.cut(self.start(rows, worker), rows))
        return self.cache[key]
