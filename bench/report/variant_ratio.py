"""A variant's speed relative to its baseline from replicas interleaved with the baseline's, with its CI, read by the
one decision rule: a number only where it decides faster or slower ("no difference" inside ±5%: a pruned-but-dense
graph reading 1.81x fp32 was noise, not a speedup)."""

from __future__ import annotations

from pathlib import Path

from bench.records.rundir import RunDir, replica_raws
from bench.stats.hboot import FASTER, SLOWER, TOLERANCE, Estimate, decide, ratio, reading


def speedup(run_path: Path, base: dict, rec: dict, statistic: str = "p50") -> Estimate | None:
    """How many times faster `rec` is than `base` (two records of one run): base statistic / rec statistic, with its
    CI; None without raw latencies. Replica k of every job of a run ran in round k, so replicas pair up across jobs;
    a one-replica side cannot show its between-process noise, which is then assumed (bench.stats.hboot.ratio)."""
    run = RunDir(run_path)
    groups_base, groups_rec = replica_raws(run, base), replica_raws(run, rec)
    return ratio(groups_rec, groups_base, statistic, paired=True) if groups_base and groups_rec else None


def speedup_reading(up: Estimate, threshold: float = TOLERANCE) -> str:
    """faster, slower, no difference (inside ±threshold), not slower or inconclusive (bench.stats.hboot.reading)."""
    return reading(*decide(up.inverse, threshold))


def speedup_label(up: Estimate, digits: int = 2) -> str:
    """'1.81x [1.62, 2.03]' where decided faster or slower, else 'no difference [0.97, 1.04]', 'inconclusive [...]'."""
    said = speedup_reading(up)
    head = f"{up.value:.{digits}f}x" if said in (FASTER, SLOWER) else said
    return f"{head} [{up.ci[0]:.{digits}f}, {up.ci[1]:.{digits}f}]"
