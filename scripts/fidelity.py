"""Helpers of scripts/openvino-vs-benchmark-app and scripts/ort-vs-native-loop: recbench against a runtime's own
tool, the same batch on both sides, interleaved pairs, and the ratio with its CI from bench.stats.hboot.ratio."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from bench.measure.inputs import InputPool
from bench.stats.hboot import Estimate, ratio


def interleaved(first: Callable[[], float], second: Callable[[], float], pairs: int) -> tuple[list[float], list[float]]:
    """`pairs` measurements of each in ABBA order (A B, B A, ...), so a drift in machine load hits both alike."""
    a, b = [], []
    for i in range(pairs):
        if i % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return a, b


def paired_ratio(ours: list[float], theirs: list[float]) -> Estimate:
    """ours / theirs over interleaved pairs of processes, each side one statistic (p50) per process."""
    return ratio([np.array([x]) for x in theirs], [np.array([x]) for x in ours], "p50", paired=True)


def recbench_job(backend: str, batch: int, preset: str, out: Path, seconds: float = 3.0,
                 extra: tuple[str, ...] = ()) -> tuple[dict, Path]:
    """One `recbench run` job fed a single batch over and over (pool_size 1, like the vendor tools); returns its
    record and run folder."""
    out.mkdir(parents=True, exist_ok=True)
    config = out / "fidelity.yaml"
    config.write_text(yaml.safe_dump({"timing": {"pool_size": 1, "min_duration_s": seconds, "min_iters": 200,
                                                 "quality_samples": 1024}}))
    before = set(out.glob("*/records.jsonl"))
    subprocess.run([sys.executable, "-m", "bench", "run", "--config", str(config), "--backends", backend,
                    "--preset", preset, "--batch-sizes", str(batch), "--out", str(out), "--no-report", *extra],
                   check=True, capture_output=True)
    path = next(p for p in out.glob("*/records.jsonl") if p not in before)
    record = json.loads(path.read_text().splitlines()[0])
    if record["status"] != "ok":
        raise RuntimeError(f"recbench {backend} b{batch}: {record['status']}: {record.get('reason')}")
    return record, path.parent


def batch_arrays(run: Path, batch: int) -> dict[str, np.ndarray]:
    """The first pooled batch the run fed its job, by input name."""
    return InputPool.load(InputPool.path(run, batch)).batches[0]


def print_ratios(title: str, rows: list[tuple[int, list[float], list[float]]]) -> None:
    """One line per batch: medians of both sides and the paired ratio ours / theirs with its CI."""
    print(title)
    print(f"{'batch':>6}{'pairs':>6}{'recbench p50 ms':>17}{'other p50 ms':>14}{'ratio [95% CI]':>24}")
    for batch, ours, theirs in rows:
        r = paired_ratio(ours, theirs)
        print(f"{batch:>6}{len(ours):>6}{np.median(ours):>17.4f}{np.median(theirs):>14.4f}"
              f"{f'{r.value:.3f} [{r.ci[0]:.3f}, {r.ci[1]:.3f}]':>24}")
