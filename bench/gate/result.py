"""What a gate decided: one Check per (rule, job, metric), grouped into a pass/fail GateResult."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bench.stats.hboot import FAIL, INCONCLUSIVE, PASS  # noqa: F401 - the verdicts of the one decision rule

SKIP = "skip"


@dataclass(frozen=True)
class Check:
    rule: str
    job: str
    metric: str
    limit: str
    measured: str
    margin: str
    verdict: str  # pass | fail | skip | inconclusive
    note: str = ""
    ratio: tuple[float, float, float] | None = None  # a regression check's ratio B/A and its CI (value, low, high)


@dataclass
class GateResult:
    """Every check of one gate run; it passes when no check failed."""

    kind: str  # "budgets" or "regression"
    source: str  # the budgets file or the baseline run
    checks: list[Check] = field(default_factory=list)
    strict: bool = False  # inconclusive checks fail the gate

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == FAIL or (self.strict and c.verdict == INCONCLUSIVE)]

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}
