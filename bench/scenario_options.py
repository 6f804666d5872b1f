"""Knobs of the load scenarios: from the profile, overridden by `recbench run` flags."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bench.serving.arrivals import Arrivals
from bench.serving.batching import Batching
from bench.serving.candidates import Candidates


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

    def merged(self, overrides: ScenarioOptions) -> ScenarioOptions:
        """These options with the fields `overrides` sets explicitly replaced."""
        return self.model_copy(update={k: getattr(overrides, k) for k in overrides.model_fields_set})

    def row_pool(self, batch_size: int) -> int:
        """Distinct input rows variable-size calls are cut from (0: every call is one fixed batch)."""
        if self.candidates is None and self.batching is None:
            return 0
        if self.batching:
            return 2 * self.batching.max_batch
        return 2 * (self.candidates.largest() if self.candidates else batch_size)
