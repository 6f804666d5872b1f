"""Knobs of the load scenarios: from the profile, overridden by `recbench run` flags."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bench.measure.serving.queueing import Batching
from bench.measure.serving.workload import Arrivals, Candidates

TIME_ORDER_USERS = 1024  # user_order time: the row pool holds this many users at least


class ScenarioOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qps: float | None = Field(None, gt=0)  # server target QPS; None: `load` x the measured closed-loop capacity
    load: float = Field(0.5, gt=0, le=1)  # server load when no QPS is given
    p99_budget_ms: float = Field(10.0, gt=0)  # max-qps bound; server requests slower than this count as late
    workers: int = Field(1, ge=1)  # server / max-qps: threads serving the request queue
    concurrency: list[int] = Field([1, 2, 4], min_length=1)  # concurrency: closed-loop client counts swept
    seed: int = 0  # arrival times of the server scenario
    arrivals: Arrivals = Arrivals()  # server / max-qps: poisson|constant|bursty or {file: gaps-in-us.txt}
    candidates: Candidates | None = None  # server / max-qps: rows per request drawn per request (else batch_size)
    batching: Batching | None = None  # server / max-qps: dynamic batching (else one call per request)
    # server / max-qps with a history model (hstu, din): "time" issues each user's requests in time-series order, a
    # later one with a longer history (MLPerf DLRMv3); "any": requests draw users from the pool in no order
    user_order: Literal["any", "time"] = "any"

    @model_validator(mode="after")
    def _one_user_per_call(self) -> ScenarioOptions:
        if self.user_order == "time" and self.batching is not None:
            raise ValueError("user_order time issues each user's request as its own call; batching packs several "
                             "requests' candidates under one history: drop one of them")
        return self

    def merged(self, overrides: ScenarioOptions) -> ScenarioOptions:
        """These options with the fields `overrides` sets explicitly replaced."""
        return self.model_copy(update={k: getattr(overrides, k) for k in overrides.model_fields_set})

    def varies(self) -> bool:
        """Whether calls vary in rows (drawn candidates or dynamic batching)."""
        return self.candidates is not None or self.batching is not None

    def row_pool(self, batch_size: int) -> int:
        """Distinct input rows variable-size or time-ordered calls are cut from (0: each call is one fixed batch):
        twice the largest call and the largest request, which each request's own rows are drawn from."""
        rows = max(2 * self.batching.max_batch if self.batching else 0,
                   2 * self.candidates.largest() if self.candidates else 0)
        return max(rows, TIME_ORDER_USERS) if self.user_order == "time" else rows
