"""The prepared handle each call is served with, bound before the run: fixed batches rotating per worker, calls of
any row count cut from one long pool of distinct rows, or users issued in time-series order (MLPerf DLRMv3's rule,
`scenario_options: {user_order: time}`): a user's later request carries a longer history and comes after their
earlier one."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from models.data_sequence import history_prefix

REQUESTS_PER_USER = 8  # user_order time: requests per user in one run, where the pool has users enough (else more)
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


def time_order(users: int, slots: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Who makes each of `slots` user requests, in issue order, and how far into their history each one is (a share
    in (0, 1]). ceil(slots / REQUESTS_PER_USER) users (at most `users`) each get `steps` time points uniform on
    [0, 1); the slots follow all users' time points merged, so users interleave and a user's k-th request (share
    k / steps) comes after their (k-1)-th."""
    users = max(1, min(users, -(-slots // REQUESTS_PER_USER)))
    steps = -(-slots // users)
    times = np.sort(np.random.default_rng(seed + 13).random((users, steps)), axis=1)  # not the arrivals' stream
    user, step = np.divmod(np.argsort(times, axis=None, kind="stable")[:slots], steps)
    return user, (step + 1) / steps


class TimeOrdered:
    """One prepared handle per request of a run, bound before it. Request i is the users of slots [i x per,
    (i + 1) x per) at their time points (per = 1 user with drawn candidates, else batch_size users with the pool's
    candidates of each): every input but the items is the user's left-padded history, cut to that time."""

    def __init__(self, sized: SizedHandles, requests: int, rows: np.ndarray | None, seed: int):
        items = sized.item_input
        self.per = 1 if rows is not None else sized.batch_size
        self.user, self.share = time_order(len(sized.pool[items]), requests * self.per, seed)
        histories = {k: history_prefix(v[self.user], self.share) for k, v in sized.pool.items() if k != items}

        def inputs(i: int) -> dict[str, np.ndarray]:
            slots = slice(i * self.per, (i + 1) * self.per)
            cands = (sized.pool[items][self.user[slots]] if rows is None
                     else sized.cut(sized.start(int(rows[i]), i), int(rows[i]))[items])
            return {**{k: v[slots] for k, v in histories.items()}, items: cands}

        self.handles = [sized.prepare(inputs(i)) for i in range(requests)]

    def __call__(self, worker: int, rows: int, request: int) -> object:
        return self.handles[request]

    def fields(self) -> dict:
        """The record's `user_order`: users issued, requests per user (one user's part of a request counts once)."""
        counts = np.bincount(self.user)
        return {"order": "time", "users": len(counts), "users_per_request": self.per,
                "requests_per_user": {"mean": float(counts.mean()), "max": int(counts.max())},
                "history_share_mean": float(self.share.mean())}
