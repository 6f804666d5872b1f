"""Device profiles: how a target machine is emulated (threads, pinned cores, batches, scenarios)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.config.scenario_options import ScenarioOptions
from bench.config.validation import describe, unknown
from bench.errors import UserError
from models.fileio import load_yaml


def usable_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    threads: int | None = Field(None, ge=1)  # None: every usable core
    cores: int | None = Field(None, ge=1)  # pin the job to this many cores (the first usable ones)
    affinity: list[int] | None = None  # or pin to exactly these core ids
    batch_sizes: list[int] = [1, 64, 512]
    scenarios: list[str] = ["single-stream"]
    memory_cap_bytes: int | None = Field(None, gt=0)
    scenario_options: ScenarioOptions = ScenarioOptions()  # server QPS/load, latency budget, workers, concurrency
    description: str = ""

    def pinned(self) -> list[int] | None:
        """The core ids jobs are pinned to, or None for no pinning."""
        cores = usable_cores()
        if self.affinity is not None:
            bad = sorted(set(self.affinity) - set(cores))
            if bad or not self.affinity:
                raise UserError(f"profile {self.name}: affinity names cores {bad or '[]'}; usable cores: {cores}")
            return sorted(self.affinity)
        if self.cores is not None:
            return cores[: self.cores]
        return None

    def thread_count(self) -> int:
        pinned = self.pinned()  # checks the affinity even where threads are given
        return self.threads or len(pinned or usable_cores())


BUILTIN = {p.name: p for p in (
    Profile(name="default", description="all cores, batch 1/64/512, single-stream"),
    Profile(name="edge", threads=2, cores=2, batch_sizes=[1, 4, 16], scenarios=["single-stream", "server"],
            scenario_options=ScenarioOptions(load=0.25), description="an edge box: 2 pinned cores, small batches, one "
            "request at a time and a low-QPS server (a quarter of the measured capacity)"),
    Profile(name="datacenter", batch_sizes=[64, 512, 4096], scenarios=["offline", "server"],
            scenario_options=ScenarioOptions(load=0.5), description="a server: all cores, large batches, offline "
            "throughput and a server at half the measured capacity"),
    Profile(name="mlperf-dlrmv3", batch_sizes=[1, 16, 64], scenarios=["offline", "server"],
            scenario_options=ScenarioOptions(load=0.5, p99_budget_ms=80, user_order="time"),
            description="MLPerf Inference DLRMv3 (--model hstu): offline and server; server requests are issued in "
            "time-series order (a user's later request, with a longer history, after their earlier one) and those "
            "over the 80 ms p99 bound count as late; its accuracy rule (NE, accuracy, AUC each within 99.9% of fp32) "
            "is scripts/budgets/mlperf-dlrmv3.yaml, for recbench gate and recbench recommend"),
)}


def load_profile(name_or_path: str) -> Profile:
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        raise UserError(f"{unknown('profile', name_or_path, BUILTIN)} or a YAML file")
    data = load_yaml(path)
    data.setdefault("name", path.stem)
    try:
        return Profile(**data)
    except ValidationError as e:
        raise UserError(f"profile {path}: {describe(e, Profile)}") from None
