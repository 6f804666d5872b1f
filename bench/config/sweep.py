"""Sweep configuration: validated from YAML, CLI flags or Python, then expanded into jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bench.config.scenario_options import ScenarioOptions
from bench.config.validation import describe
from bench.errors import UserError
from bench.stats.percentiles import DEFAULT_RESOLVE, PERCENTILES, min_samples


class TimingConfig(BaseModel):
    """How long each job warms up and measures; both a count and a duration must be reached."""

    model_config = ConfigDict(extra="forbid")
    warmup_iters: int = Field(20, ge=0)
    warmup_s: float = Field(1.0, ge=0)
    min_iters: int = Field(200, ge=1)
    min_duration_s: float = Field(3.0, ge=0)
    max_duration_s: float = Field(60.0, gt=0)  # the cap: the measured phase never runs longer
    replica_min_s: float = Field(1.0, ge=0)  # a replica measures at least this long (or min_duration_s if shorter)
    resolve: str | None = DEFAULT_RESOLVE  # measure until this percentile is resolvable (min_samples); None: off
    pool_size: int = Field(8, ge=1)
    quality_samples: int | None = Field(None, ge=1)  # None: the whole held-out set

    @field_validator("resolve")
    @classmethod
    def _percentile(cls, v: str | None) -> str | None:
        if v is not None and v not in PERCENTILES:
            raise ValueError(f"resolve takes one of {', '.join(PERCENTILES)}, got '{v}'")
        return v

    def target_iters(self) -> int:
        """Iterations the measured phase aims at: min_iters, raised to what `resolve` needs (capped by time)."""
        return max(self.min_iters, min_samples(PERCENTILES[self.resolve]) if self.resolve else 0)

    @classmethod
    def quick(cls) -> TimingConfig:
        """Short windows that still resolve p99 (the measured phase extends to its 662 iterations, up to 10 s)."""
        return cls(warmup_iters=5, warmup_s=0.2, min_iters=100, min_duration_s=0.5, max_duration_s=10,
                   quality_samples=16_384)


class SweepConfig(BaseModel):
    """Everything `recbench run` needs; each list is one axis of the job grid."""

    model_config = ConfigDict(extra="forbid")
    model: str = "dlrm"
    preset: str | None = None
    variants: list[str] = ["fp32"]
    backends: list[str] | None = None  # None: every available CPU backend
    batch_sizes: list[int] | None = None  # None: the profile's
    profile: str = "default"
    scenario: str | None = None
    threads: int | None = Field(None, ge=1)
    device: str = "cpu"
    timing: TimingConfig = TimingConfig()
    timeout_s: float = Field(300.0, gt=0)
    out: Path = Path("results")
    backend_options: dict[str, dict] = {}
    input_spec: Path | None = None  # inputs of a bring-your-own model (YAML, see DESIGN.md)
    exporter: Literal["auto", "torchscript", "dynamo"] = "auto"  # ONNX exporter of a bring-your-own torch factory
    calibration: Path | None = None  # int8-static calibration inputs (.npz / .parquet); overrides the spec's
    student: str | None = None  # pkg.mod:factory: the distillation student of a bring-your-own model
    scenario_options: ScenarioOptions = ScenarioOptions()  # fields set here override the profile's
    repeat: int = Field(1, ge=1)  # replicas: separate processes per job, interleaved (the CLI defaults to 3, quick 1)
    op_profile: bool = False  # per-operator profile of every job, after its timed phase
    # input shapes a backend that can specialise compiles; None: as deployed (static for a fixed batch, dynamic where
    # the scenario's batch varies); both: one job each
    shapes: list[Literal["static", "dynamic"]] | None = None

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or any(b <= 0 for b in v)):
            raise ValueError(f"batch sizes must be positive integers, got {v}")
        return v


def build_config(base: dict, overrides: dict, source: str = "config") -> SweepConfig:
    """Merge CLI overrides (None = not given) over a config file's values and validate."""
    merged = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return SweepConfig(**merged)
    except ValidationError as e:
        raise UserError(f"{source}: {describe(e, SweepConfig)}") from None
