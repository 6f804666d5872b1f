"""Successive halving over variants x backends x batch sizes x threads, inside a wall-clock budget; for serving,
each trial is a load scenario (concurrency: the client counts swept; max-qps: the highest QPS within the p99 budget,
the batcher's delays swept) and the trial reports its best setting.

Quality first: one short job per (variant, backend) scores the held-out set; a pair that breaks a quality budget
is never timed again. The survivors, at every batch size and thread count, then race in rounds of growing
measurement windows; each round keeps the best third (budgets met first, then the objective), and the last round
measures the finalists with the full statistics, FINAL_REPEAT replicas each.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

from bench.config.sweep import SweepConfig, TimingConfig
from bench.gate.budgets import Budgets
from bench.recommend.judge import misses, rank_key
from bench.recommend.trials import Candidate, SearchResult, Trial
from bench.run.sweep import Sweep

KEEP = 1 / 3  # share of configurations that survive a round
FINALISTS = 2
FINAL_REPEAT = 3  # finalists run as replicas (separate processes): their CIs include the between-process noise
SCREEN_SHARE = 0.5  # at most this share of the time budget goes to the quality screen
FINAL_RESERVE = 0.2  # kept back for the finalists' full measurement
SLACK = 0.05  # never planned: estimates of a job's cost on a busy machine run short

SCREEN_TIMING = TimingConfig(warmup_iters=3, warmup_s=0.05, min_iters=50, min_duration_s=0.1, max_duration_s=1.0)
TOKEN = {"quality_samples": 256}  # quality comes from the screen: later rounds and the final score a token sample
ROUND_TIMINGS = (  # growing windows
    TimingConfig(warmup_iters=5, warmup_s=0.1, min_iters=100, min_duration_s=0.3, max_duration_s=2, **TOKEN),
    TimingConfig(warmup_iters=10, warmup_s=0.2, min_iters=300, min_duration_s=1, max_duration_s=5, **TOKEN),
)
FINAL_TIMING = TimingConfig(warmup_iters=20, warmup_s=0.5, min_iters=1000, min_duration_s=2, max_duration_s=20, **TOKEN)


class _Subset(Sweep):
    """A sweep over exactly these (variant, backend, batch) triples of its config's grid."""

    def __init__(self, cfg: SweepConfig, wanted: set[tuple[str, str, int]], log: Callable[[str], None]):
        super().__init__(cfg, log)
        self.wanted = wanted

    def grid(self):
        return (g for g in super().grid() if (g[0].name, g[1].name, g[3]) in self.wanted)


class Search:
    """The search state: the base sweep config, the budgets, the objective and the clock."""

    def __init__(self, base: SweepConfig, budgets: Budgets, objective: str, time_budget_s: float,
                 threads: list[int], out: Path, log: Callable[[str], None], started: float | None = None):
        self.base, self.budgets, self.objective = base, budgets, objective
        self.threads, self.out, self.log = threads, out, log
        self.start, self.budget = started or time.monotonic(), time_budget_s
        self.job_s = 5.0  # fixed cost of one job (spawn, load, warm-up), refined from every round
        self.sweeps = 0
        self.p50_ms: dict[tuple[str, str, int], float] = {}  # last measured p50 per (variant, backend, batch)

    def remaining(self) -> float:
        return self.budget - (time.monotonic() - self.start)

    def measure(self, cands: list[Candidate], timing: TimingConfig, stage: str) -> list[Trial]:
        """Run the candidates (one sweep per thread count) and return their trials."""
        trials = []
        for threads in sorted({c.threads for c in cands}):
            group = [c for c in cands if c.threads == threads]
            self.sweeps += 1
            cfg = self.base.model_copy(update={
                "variants": list(dict.fromkeys(c.variant for c in group)),
                "backends": list(dict.fromkeys(c.backend for c in group)),
                "batch_sizes": sorted({c.batch_size for c in group}), "threads": threads, "timing": timing,
                "repeat": FINAL_REPEAT if stage == "final" else 1,
                "out": self.out / f"{self.sweeps:02d}-{stage.replace(' ', '')}-t{threads}"})
            t0 = time.monotonic()
            run = _Subset(cfg, {(c.variant, c.backend, c.batch_size) for c in group}, self.log).run()
            records = run.records()
            spent = time.monotonic() - t0
            launched = [r for r in records if r["status"] != "skipped"]
            if launched:  # what a job cost beyond its measurement window
                self.job_s = max(0.5, (spent - sum(r.get("duration_s") or 0 for r in launched)) / len(launched))
            for r in records:
                r["run_dir"] = str(run.path)
                if (r.get("latency_ms") or {}).get("p50"):
                    self.p50_ms[(r["variant"], r["backend"], r["batch_size"])] = r["latency_ms"]["p50"]
                trials.append(Trial(Candidate(r["variant"], r["backend"], r["batch_size"], threads), stage, r))
        return trials

    def screen(self, pairs: list[tuple[str, str]], result: SearchResult) -> list[tuple[str, str]]:
        """Quality first: one short job per (variant, backend); return the pairs that meet the quality budgets,
        best first by the objective at the screen's batch."""
        batch, threads = min(self.base.batch_sizes), max(self.threads)
        passed: list[Trial] = []
        for variant in dict.fromkeys(v for v, _ in pairs):
            cands = [Candidate(v, b, batch, threads) for v, b in pairs if v == variant]
            if time.monotonic() - self.start > SCREEN_SHARE * self.budget:
                result.rejected.update({(c.variant, c.backend): "not tried: time budget" for c in cands})
                continue
            self.log(f"screen {variant}: quality on {', '.join(c.backend for c in cands)} "
                     f"({self.remaining():.0f} s left)")
            timing = SCREEN_TIMING.model_copy(update={"quality_samples": self.base.timing.quality_samples})
            for t in self.measure(cands, timing, "screen"):
                result.trials.append(t)
                key = (t.candidate.variant, t.candidate.backend)
                if t.record["status"] != "ok":
                    result.rejected[key] = f"{t.record['status']}: {t.record.get('reason') or ''}".strip()
                    continue
                result.quality[key] = t.record.get("quality") or {}
                broken = misses(t.record, self.budgets, quality_only=True)
                if broken:
                    result.rejected[key] = "; ".join(m.describe() for m in broken)
                else:
                    passed.append(t)
        return [(t.candidate.variant, t.candidate.backend) for t in self.ranked(passed, result)]

    def ranked(self, trials: list[Trial], result: SearchResult) -> list[Trial]:
        for t in trials:  # quality is the screen's (the full held-out sample), speed is this round's
            t.record["quality"] = result.quality.get((t.candidate.variant, t.candidate.backend))
        return sorted((t for t in trials if t.record["status"] == "ok"),
                      key=lambda t: rank_key(t.record, self.budgets, self.objective))

    def affordable(self, cands: list[Candidate], timing: TimingConfig, reserve: float, repeat: int = 1) -> int:
        """How many of these candidates (in order, `repeat` replicas each) fit in the time left, keeping `reserve`
        seconds back."""
        left = self.remaining() - reserve
        windows = (timing.target_iters() * self.p50_ms.get((c.variant, c.backend, c.batch_size), 0.0) / 1e3
                   for c in cands)
        costs = (repeat * (self.job_s + timing.warmup_s + min(timing.max_duration_s, max(timing.min_duration_s, w)))
                 for w in windows)
        return sum(spent <= left for spent in accumulate(costs))

    def run(self, pairs: list[tuple[str, str]], batch_sizes: list[int]) -> SearchResult:
        result = SearchResult()
        survivors = self.screen(pairs, result)
        # When round 1 cannot afford every configuration, the first ones run: every pair at the batch most likely
        # to win the objective (the largest for throughput), then the next batch, ...; the screen's order within.
        batches = sorted(batch_sizes, reverse=self.objective == "throughput")
        cands = [Candidate(v, b, bs, t) for bs in batches for t in self.threads for v, b in survivors]
        self.log(f"quality screen: {len(survivors)} of {len(pairs)} variant x backend pairs meet the quality "
                 f"budgets -> {len(cands)} configurations")
        for i, timing in enumerate(ROUND_TIMINGS, start=1):
            fit = self.affordable(cands, timing, FINAL_RESERVE * self.budget)
            if len(cands) <= FINALISTS or fit < FINALISTS:
                break
            cands = cands[:fit]  # the best-ranked so far (before round 1: the screen's order)
            stage = f"round {i}"
            result.rounds.append(f"{stage}: {len(cands)} configurations, {timing.min_duration_s:g} s windows")
            self.log(f"{stage}: {len(cands)} configurations x {timing.min_duration_s:g} s ({self.remaining():.0f} s "
                     f"left)")
            trials = self.measure(cands, timing, stage)
            result.trials += trials
            best = self.ranked(trials, result)
            if best:
                self.log(f"{stage}: best so far {best[0].candidate.label()}")
            cands = [t.candidate for t in best[:max(FINALISTS, math.ceil(len(best) * KEEP))]]
        self.final(cands[:FINALISTS], result)
        result.elapsed_s = time.monotonic() - self.start
        return result

    def final(self, finalists: list[Candidate], result: SearchResult) -> None:
        """The finalists with the full statistics; while none of those meets every budget, the next-best
        configurations (that met them in shorter windows), two at a time, with the same statistics, as time allows."""
        shorter = self.ranked([t for t in result.latest().values() if t.stage != "final"], result)
        queue = finalists + [t.candidate for t in shorter if t.candidate not in finalists
                             and not misses(t.record, self.budgets)]
        measured: list[Candidate] = []
        while group := queue[:FINALISTS][:self.affordable(queue[:FINALISTS], FINAL_TIMING, SLACK * self.budget,
                                                                       FINAL_REPEAT)]:
            queue = queue[len(group):]
            if measured:
                self.log(f"final: none of {len(measured)} configurations meets every budget with the full statistics; "
                         "measuring the next best")
            self.log(f"final: {', '.join(c.label() for c in group)} ({self.remaining():.0f} s left)")
            trials = self.measure(group, FINAL_TIMING, "final")
            result.trials += trials
            measured += group
            if any(not misses(t.record, self.budgets) for t in self.ranked(trials, result)):
                break
        if measured:
            result.rounds.append(f"final: {len(measured)} configurations, full statistics")
