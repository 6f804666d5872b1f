"""Knobs of the load scenarios: from the profile, overridden by `recbench run` flags."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ScenarioOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qps: float | None = Field(None, gt=0)  # server target QPS; None: `load` x the measured closed-loop capacity
    load: float = Field(0.5, gt=0, le=1)  # server load when no QPS is given
    p99_budget_ms: float = Field(10.0, gt=0)  # max-qps bound; server requests slower than this count as late
    workers: int = Field(1, ge=1)  # server / max-qps: threads serving the request queue
    concurrency: list[int] = Field([1, 2, 4], min_length=1)  # concurrency: closed-loop client counts swept
    seed: int = 0  # arrival times of the server scenario

    def merged(self, overrides: ScenarioOptions) -> ScenarioOptions:
        """These options with the fields `overrides` sets explicitly replaced."""
        return self.model_copy(update=overrides.model_dump(exclude_unset=True))
