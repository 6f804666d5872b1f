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
Segments = list[tuple[int, int, int]]  # what one call serves: (request, first row, end row) of each request in it
HandleFor = Callable[[int, Segments], Any]  # (worker, segments) -> the call's handle


def rotating(handles: list[Any], workers: int) -> HandleFor:
    """Fixed-size requests: each worker rotates through its own share of the job's prepared batches."""
    own = [itertools.cycle(handles[w::workers]) for w in range(workers)]
    return lambda worker, segments: next(own[worker])


class SizedHandles:
    """Each request's own rows, drawn from one long pool of distinct rows (generated with the model's Zipf ids): a
    call's inputs are its requests' rows gathered when it is dispatched (as a server copies requests into a batch)
    and prepared then, inside the measured service time.

    Request i's rows follow a shuffled order of the pool from position i x STRIDE, so consecutive requests never
    carry the same rows. With `item_input` (a model whose request is one user's history + N candidates: hstu, din) a
    row is a candidate: a request is one pool user's other inputs with N items from the pool's items end to end."""

    STRIDE = 104_729  # a prime larger than any pool: consecutive requests start far apart in the shuffled order

    def __init__(self, prepare: Callable[[dict], Any], rows: dict[str, np.ndarray], batch_size: int,
                 item_input: str = "", seed: int = 0):
        self.prepare, self.batch_size, self.item_input, self.pool = prepare, batch_size, item_input, rows
        self.rows = {**rows, item_input: rows[item_input].reshape(1, -1)} if item_input else rows
        self.total = self.rows[item_input].shape[1] if item_input else len(next(iter(rows.values())))
        self.users = len(next(v for k, v in rows.items() if k != item_input)) if item_input else self.total
        self.order = np.tile(np.random.default_rng(seed + 11).permutation(self.total), 2)

    def cut(self, segments: list[tuple[int, int, int]]) -> dict[str, np.ndarray]:
        """The inputs of one call: rows [first, end) of each (request, first, end) segment, one after another."""
        if (most := max(end for _, _, end in segments)) > self.total:
            raise ValueError(f"a request of {most} rows needs a row pool that large; the pool has {self.total}")
        picks = np.concatenate([self.order[(i * self.STRIDE) % self.total:][lo:hi] for i, lo, hi in segments])
        if not self.item_input:
            return {k: v[picks] for k, v in self.rows.items()}
        user = segments[0][0] * 7919 % self.users  # batched requests share the first one's history
        return {k: v[:, picks] if k == self.item_input else v[user:user + 1] for k, v in self.rows.items()}

    def __call__(self, worker: int, segments: list[tuple[int, int, int]]) -> Any:
        return self.prepare(self.cut(segments))


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
                     else sized.cut([(i, 0, int(rows[i]))])[items])
            return {**{k: v[slots] for k, v in histories.items()}, items: cands}

        self.handles = [sized.prepare(inputs(i)) for i in range(requests)]

    def __call__(self, worker: int, segments: Segments) -> object:
        return self.handles[segments[0][0]]

    def fields(self) -> dict:
        """The record's `user_order`: users issued, requests per user (one user's part of a request counts once)."""
        counts = np.bincount(self.user)
        return {"order": "time", "users": len(counts), "users_per_request": self.per,
                "requests_per_user": {"mean": float(counts.mean()), "max": int(counts.max())},
                "history_share_mean": float(self.share.mean())}
