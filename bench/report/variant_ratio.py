"""A variant's speed relative to fp32 from replicas interleaved with fp32's, with its CI; "no difference" when the
CI spans 1 (a pruned-but-dense graph reading 1.81x fp32 was noise, not a speedup)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.records.rundir import RunDir, replica_raws
from bench.stats.hboot import ratio, with_unseen_noise

NO_DIFFERENCE = "no difference"


@dataclass(frozen=True)
class Speedup:
    """How many times faster the variant is than the baseline (baseline statistic / variant statistic)."""

    value: float
    ci: tuple[float, float]
    paired: bool  # from replicas interleaved round by round with the baseline's

    @property
    def differs(self) -> bool:
        return self.ci[0] > 1 or self.ci[1] < 1

    def text(self, digits: int = 2) -> str:
        """'1.81x [1.62, 2.03]', or 'no difference [0.80, 1.30]' when the CI spans 1."""
        head = f"{self.value:.{digits}f}x" if self.differs else NO_DIFFERENCE
        return f"{head} [{self.ci[0]:.{digits}f}, {self.ci[1]:.{digits}f}]"


def speedup(run_path: Path, base: dict, rec: dict, statistic: str = "p50") -> Speedup | None:
    """Speedup of `rec` over `base` (two records of one run) on a latency statistic; None without raw latencies.

    Replica k of every job of a run ran in round k, so replicas pair up across jobs; a one-replica run cannot
    show its between-process noise, which is then assumed (bench.stats.hboot.SINGLE_REPLICA_CV)."""
    run = RunDir(run_path)
    groups_b, groups_r = replica_raws(run, base), replica_raws(run, rec)
    if not groups_b or not groups_r:
        return None
    paired = len(groups_b) == len(groups_r) > 1
    est = ratio(groups_r, groups_b, statistic, paired=paired)
    if not paired:
        est = with_unseen_noise(est, (len(groups_b) == 1) + (len(groups_r) == 1))
    return Speedup(est.value, est.ci, paired)
