"""Users issued in time-series order (MLPerf DLRMv3's rule; `scenario_options: {user_order: time}`): a user's later
request carries a longer history and is issued after their earlier one."""

from __future__ import annotations

import numpy as np

from bench.measure.serving.request_handles import SizedHandles
from models.data_sequence import history_prefix

REQUESTS_PER_USER = 8  # each user's requests in one run, where the pool has users enough (else more each)


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
