"""A variant's speed relative to its baseline from replicas interleaved with the baseline's, with its CI; "no
difference" when the CI spans 1 (a pruned-but-dense graph reading 1.81x fp32 was noise, not a speedup)."""

from __future__ import annotations

from pathlib import Path

from bench.records.rundir import RunDir, replica_raws
from bench.stats.hboot import NO_DIFFERENCE, Estimate, ratio


def speedup(run_path: Path, base: dict, rec: dict, statistic: str = "p50") -> Estimate | None:
    """How many times faster `rec` is than `base` (two records of one run): base statistic / rec statistic, with its
    CI; None without raw latencies. Replica k of every job of a run ran in round k, so replicas pair up across jobs;
    a one-replica side cannot show its between-process noise, which is then assumed (bench.stats.hboot.ratio)."""
    run = RunDir(run_path)
    groups_base, groups_rec = replica_raws(run, base), replica_raws(run, rec)
    return ratio(groups_rec, groups_base, statistic, paired=True) if groups_base and groups_rec else None


def speedup_label(up: Estimate, digits: int = 2) -> str:
    """'1.81x [1.62, 2.03]', or 'no difference [0.80, 1.30]' when the CI spans 1."""
    head = f"{up.value:.{digits}f}x" if up.differs else NO_DIFFERENCE
    return f"{head} [{up.ci[0]:.{digits}f}, {up.ci[1]:.{digits}f}]"
