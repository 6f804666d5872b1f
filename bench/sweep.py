"""Expands a sweep config into jobs, prepares each variant once, runs every job and records it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from backends import registry
from bench import env, machine, scenarios
from bench.config import SweepConfig
from bench.errors import USER_ERRORS, UserError
from bench.harness_options import check_options
from bench.jobs import Job, job_id
from bench.launcher import launch
from bench.profiles import load_profile
from bench.records import RunDir, write_json_atomic
from bench.validation import lookup
from models.artifacts import Workspace
from models.byo import AS_GIVEN, ByoModel, is_byo, open_byo
from models.registry import FAMILIES
from models.variants import resolve_variants


@dataclass
class BackendChoice:
    name: str
    cls: type
    device: str
    available: bool
    reason: str


def choose_backends(cfg: SweepConfig) -> list[BackendChoice]:
    """The sweep's backends; a backend named explicitly must be available, a default one is skipped."""
    explicit = cfg.backends is not None
    names = cfg.backends if explicit else list(registry.CPU_BACKENDS)
    out = []
    for name in names:
        cls = registry.load_class(lookup("backend", name, registry.BACKENDS))
        device = cfg.device if cfg.device.split(":")[0] in cls.devices else cls.devices[0]
        ok, why = cls.available_on(device)
        if explicit and not ok:
            raise UserError(f"backend {name} is not available: {why}")
        out.append(BackendChoice(name, cls, device, ok, why))
    return out


def new_run_id(model: str, preset: str) -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{model}-{preset}"


def save_input_pool(run: RunDir, ws: Workspace, batch_size: int, pool: int) -> str:
    path = run.path / "inputs" / f"b{batch_size}.npz"
    if not path.exists():
        batches = ws.bench_inputs(batch_size, pool)
        np.savez(path, **{f"{i}/{k}": v for i, b in enumerate(batches) for k, v in b.items()})
    return str(path)


def open_model(cfg: SweepConfig, batch_sizes: list[int]):
    """A built-in model family by name, or a bring-your-own model (a file or module:factory), checked before jobs."""
    if is_byo(cfg.model):
        return open_byo(cfg.model, cfg.input_spec, cfg.student, cfg.calibration, cfg.exporter, batch_sizes)
    for flag, given in (("--input-spec describes", cfg.input_spec), ("--student distils", cfg.student)):
        if given is not None:
            raise UserError(f"{flag} a bring-your-own model (a file or module:factory), "
                            f"not the built-in model {cfg.model}")
    return lookup("model", cfg.model, FAMILIES)


def open_workspace(family, preset: str, cfg: SweepConfig, log: Callable[[str], None]):
    """What variants are built from: the bring-your-own model itself, or the built-in preset's workspace."""
    if isinstance(family, ByoModel):
        return family
    ws = Workspace(family, preset, log=log)
    if cfg.calibration is not None:
        ws.use_calibration(cfg.calibration)
    return ws


class Sweep:
    """A validated sweep: the job grid it will run and where it writes."""

    def __init__(self, cfg: SweepConfig, log: Callable[[str], None] = print):
        self.cfg = cfg
        self.profile = load_profile(cfg.profile)
        self.batch_sizes = cfg.batch_sizes or self.profile.batch_sizes
        self.family = open_model(cfg, self.batch_sizes)
        self.preset = cfg.preset or self.family.default_preset
        self.family.preset(self.preset)
        self.ws = open_workspace(self.family, self.preset, cfg, log)
        self.variants = resolve_variants(cfg.variants, self.ws, getattr(self.family, "variant", None))
        if isinstance(self.family, ByoModel) and "fp32" in cfg.variants:
            log(f"{self.family.name}: fp32 stands for the model as given ({AS_GIVEN}), the baseline of its variants")
        self.scenarios = [cfg.scenario] if cfg.scenario else self.profile.scenarios
        for s in self.scenarios:
            scenarios.scenario(s)
        self.backends = choose_backends(cfg)
        for v in self.variants:  # a missing quantizer package is bad input, said before anything runs
            for b in self.backends:
                need = b.available and v.missing(b.cls.pick_format(v.formats) or "")
                if need:
                    raise UserError(need)
        for name in cfg.backend_options:  # a misspelt backend name under backend_options is a typo too
            lookup("backend", name, registry.BACKENDS)
        self.harness = {(v.name, b.name): check_options(b.name, b.cls, self.backend_options(v, b))
                        for v in self.variants for b in self.backends}
        self.affinity = self.profile.pinned()
        self.threads = cfg.threads or self.profile.thread_count()
        self.scenario_options = self.profile.scenario_options.merged(cfg.scenario_options)
        self.log = log

    def backend_options(self, variant, b: BackendChoice) -> dict:
        """A job's options: the backend name's presets, then the variant's, then the config's."""
        return {**registry.PRESET_OPTIONS.get(b.name, {}), **variant.backend_options(b.name),
                **self.cfg.backend_options.get(b.name, {})}

    def grid(self):
        for variant in self.variants:
            for b in self.backends:
                for scenario in self.scenarios:
                    for batch in self.batch_sizes:
                        yield variant, b, scenario, batch

    def run(self, progress: Progress | None = None) -> RunDir:
        run = RunDir.create(self.cfg.out, new_run_id(self.family.name, self.preset))
        environment = env.capture()
        peaks = machine.cached(environment)
        write_json_atomic(run.path / "env.json", {**environment, "machine": peaks})
        write_json_atomic(run.path / "config.json", {**self.cfg.model_dump(mode="json"), "threads": self.threads,
                                                    "affinity": self.affinity, "profile_detail":
                                                    self.profile.model_dump(),
                                                    "scenario_options": self.scenario_options.model_dump()})
        ws = self.ws
        grid = list(self.grid())
        task = progress.add_task("sweep", total=len(grid)) if progress else None
        prepared: dict[str, object] = {}
        for index, (variant, b, scenario, batch) in enumerate(grid):
            job = Job(
                job_id=job_id(index, self.family.name, variant.name, b.name, scenario, batch), run_id=run.run_id,
                run_dir=str(run.path), model=self.family.name, preset=self.preset, variant=variant.name,
                backend=b.name, backend_entry=registry.BACKENDS[b.name], device=b.device,
                profile=self.profile.name, scenario=scenario, batch_size=batch, threads=self.threads,
                timing=self.cfg.timing, timeout_s=self.harness[variant.name, b.name].timeout_s or self.cfg.timeout_s,
                inputs=self.family.input_names,
                affinity=self.affinity, memory_cap_bytes=self.profile.memory_cap_bytes,
                env_id=environment["env_id"], quality_entry=self.family.quality_entry,
                backend_options=self.backend_options(variant, b),
                scenario_options=self.scenario_options.model_dump(), profile_detail=self.profile.model_dump(),
                op_profile=self.cfg.op_profile, machine_peaks=peaks,
            )
            if progress:
                progress.update(task, description=f"{variant.name} {b.name} {scenario} b{batch}")
            run.append(self._run_one(job, variant, b, ws, run, prepared))
            if progress:
                progress.advance(task)
        return run

    def _run_one(self, job: Job, variant, b: BackendChoice, ws: Workspace, run: RunDir, prepared: dict) -> dict:
        if not b.available:
            return job.outcome("skipped", b.reason)
        ok, why = b.cls.supports(variant.formats, b.device)
        if not ok:
            unbuilt = [variant.unbuilt[f] for f in b.cls.formats if f in variant.unbuilt]
            return job.outcome("skipped", unbuilt[0] if unbuilt else why)
        fmt = b.cls.pick_format(variant.formats)
        why = variant.skip_reason(ws, fmt)
        if why:
            return job.outcome("skipped", why)
        key = f"{variant.name}/{fmt}"
        if key not in prepared:
            try:
                prepared[key] = ws.prepare(variant, {fmt})
            except USER_ERRORS:
                raise
            except Exception as e:  # noqa: BLE001 - a variant that cannot be built fails its jobs only
                prepared[key] = f"building {variant.name} [{fmt}] failed: {type(e).__name__}: {e}"
        p = prepared[key]
        if isinstance(p, str):
            return job.outcome("failed", p)
        job.artifact, job.artifact_format = p.files[fmt], fmt
        job.params, job.flops_per_sample, job.reference = p.params, p.flops_per_sample, p.reference
        job.variant_notes = p.notes
        job.inputs_path = save_input_pool(run, ws, job.batch_size, job.timing.pool_size)
        record = launch(job)
        loops = p.notes.get("onnx_loop_ops") if fmt == "onnx" else None
        if loops:
            record["warnings"] = [*(record.get("warnings") or []), f"the ONNX graph has {loops} Loop/Scan ops: "
                                  "usually a per-row embedding path (e.g. EmbeddingBag), slow on ONNX runtimes"]
        return record


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def run_sweep(cfg: SweepConfig, console: Console) -> Path:
    sweep = Sweep(cfg, log=console.print)
    with progress_bar(console) as progress:
        sweep.log = progress.console.print
        run = sweep.run(progress)
    return run.path
