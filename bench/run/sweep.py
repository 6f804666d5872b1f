"""Expands a sweep config into jobs, prepares each variant once, runs every job and records it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import product
from pathlib import Path

from rich.console import Console

from backends import registry
from bench.config.harness_options import check_options
from bench.config.profiles import load_profile
from bench.config.sweep import SweepConfig
from bench.config.validation import lookup
from bench.errors import USER_ERRORS, UserError
from bench.measure import env, machine, scenarios
from bench.measure.inputs import InputPool
from bench.measure.jobspec import Artifacts, Job, job_id
from bench.records.rundir import RunDir
from bench.run.interleave import Interleaver, Planned
from bench.run.lifecycle import lifecycle
from bench.run.progress import SweepProgress, output_to
from models.artifacts import Workspace
from models.byo import AS_GIVEN, ByoModel, is_byo, open_byo
from models.errors import NotApplicable
from models.registry import FAMILIES
from models.variants import resolve_variants


@dataclass
class BackendChoice:
    name: str
    cls: type
    device: str
    available: bool
    reason: str


def choose_backends(cfg: SweepConfig, here: bool = True) -> list[BackendChoice]:
    """The sweep's backends: one named explicitly must be available, a default one is skipped (so is one that cannot
    use a `device` given; none that can is bad input). here=False: a fleet's nodes check availability themselves."""
    explicit = cfg.backends is not None
    names = cfg.backends if explicit else list(registry.CPU_BACKENDS)
    classes = {name: registry.load_class(lookup("backend", name, registry.BACKENDS)) for name in names}
    kind = cfg.device.split(":")[0]
    given = "device" in cfg.model_fields_set
    if given and not any(kind in cls.devices for cls in classes.values()):
        able = [name for name, entry in registry.BACKENDS.items() if kind in registry.load_class(entry).devices]
        raise UserError(f"device {cfg.device}: none of the chosen backends ({', '.join(names)}) runs on {kind}; "
                        + (f"backends for {kind}: {', '.join(able)}" if able else f"no backend runs on {kind}"))
    out = []
    for name, cls in classes.items():
        if given and kind not in cls.devices:
            out.append(BackendChoice(name, cls, cfg.device, False, f"{name} runs on {', '.join(cls.devices)}, "
                                                                   f"not {cfg.device} (--device)"))
            continue
        device = cfg.device if given else cls.devices[0]
        ok, why = cls.available_on(device) if here else (True, "")
        if explicit and not ok:
            raise UserError(f"backend {name} is not available: {why}")
        out.append(BackendChoice(name, cls, device, ok, why))
    return out


def save_input_pool(run: RunDir, ws: Workspace, rows: int, pool: int, row_pool: bool = False) -> str:
    """The run's pool of `pool` distinct batches of `rows` rows (or its row pool), saved once; its path."""
    path = InputPool.path(run.path, rows, row_pool)
    if not path.exists():
        InputPool(ws.bench_inputs(rows, pool)).save(path)
    return str(path)


def open_model(cfg: SweepConfig, batch_sizes: list[int], log: Callable[[str], None]) -> tuple:
    """(family, preset, workspace): a built-in family and its preset's workspace, or a bring-your-own model (checked
    before jobs: a factory's pre-flight and parity need the batch sizes), which is its own workspace."""
    if is_byo(cfg.model):
        family = open_byo(cfg.model, cfg.input_spec, cfg.student, cfg.calibration, cfg.exporter, batch_sizes)
    else:
        for flag, given in (("--input-spec describes", cfg.input_spec), ("--student distils", cfg.student)):
            if given is not None:
                raise UserError(f"{flag} a bring-your-own model (a file or module:factory), "
                                f"not the built-in model {cfg.model}")
        family = lookup("model", cfg.model, FAMILIES)
    preset = cfg.preset or family.default_preset
    family.preset(preset)
    if isinstance(family, ByoModel):
        return family, preset, family
    ws = Workspace(family, preset, log=log)
    if cfg.calibration is not None:
        ws.use_calibration(cfg.calibration)
    return family, preset, ws


class Sweep:
    """A validated sweep: the job grid it will run and where it writes."""

    def __init__(self, cfg: SweepConfig, log: Callable[[str], None] = print, target: str | None = None):
        self.cfg = cfg
        self.target = target  # a fleet target's name: its nodes run the jobs (None: this machine)
        here = target is None  # a fleet node checks its backends, pins and counts its own cores
        self.profile = load_profile(cfg.profile)
        self.batch_sizes = cfg.batch_sizes or self.profile.batch_sizes
        self.family, self.preset, self.ws = open_model(cfg, self.batch_sizes, log)
        self.variants = resolve_variants(cfg.variants, self.ws, getattr(self.family, "variant", None))
        if isinstance(self.family, ByoModel) and "fp32" in cfg.variants:
            log(f"{self.family.name}: fp32 stands for the model as given ({AS_GIVEN}), the baseline of its variants")
        self.scenarios = [cfg.scenario] if cfg.scenario else self.profile.scenarios
        for s in self.scenarios:
            scenarios.scenario(s)
        self.backends = choose_backends(cfg, here)
        for v, b in product(self.variants, self.backends):  # a missing quantizer package is bad input, said first
            if need := b.available and v.missing(b.cls.pick_format(v.formats) or ""):
                raise UserError(need)
        for name in cfg.backend_options:  # a misspelt backend name under backend_options is a typo too
            lookup("backend", name, registry.BACKENDS)
        self.harness = {(v.name, b.name): check_options(b.name, b.cls, self.backend_options(v, b))
                        for v in self.variants for b in self.backends}
        self.affinity = self.profile.pinned() if here else None
        self.threads = cfg.threads or (self.profile.thread_count() if here else self.profile.threads)
        self.scenario_options = self.profile.scenario_options.merged(cfg.scenario_options)
        if self.scenario_options.user_order == "time" and not getattr(self.ws, "item_input", None):
            raise UserError(f"scenario_options user_order: time issues each user's requests in time order; "
                            f"{self.family.name}'s requests carry no user history (hstu and din's do)")
        self.repeat = cfg.repeat
        self.log = log

    def backend_options(self, variant, b: BackendChoice) -> dict:
        """A job's options: the backend name's presets, then the variant's, then the config's."""
        return {**registry.PRESET_OPTIONS.get(b.name, {}), **variant.backend_options(b.name),
                **self.cfg.backend_options.get(b.name, {})}

    def config_json(self) -> dict:
        """config.json: the config as given with every default resolved to what this sweep runs."""
        return {**self.cfg.model_dump(mode="json"), "preset": self.preset, "variants": [v.name for v in self.variants],
                "backends": [b.name for b in self.backends], "batch_sizes": self.batch_sizes,
                "scenarios": self.scenarios, "threads": self.threads, "affinity": self.affinity,
                "profile_detail": self.profile.model_dump(mode="json"),
                "scenario_options": self.scenario_options.model_dump(mode="json"),
                "repeat": self.repeat, "given": self.cfg.model_dump(mode="json", exclude_unset=True)}

    def grid(self) -> Iterator[tuple]:
        for variant, b, scenario, batch in product(self.variants, self.backends, self.scenarios, self.batch_sizes):
            for shapes in self.shapes(b, scenario):
                yield variant, b, scenario, batch, shapes

    def shapes(self, b: BackendChoice, scenario: str) -> list[str]:
        """The input shapes a job is measured with, as it would be deployed: a backend that can compile for one batch
        does so for a fixed batch and keeps dynamic shapes where the scenario's batch varies; `cfg.shapes` asks."""
        if not b.cls.static_shapes:
            return ["dynamic"]
        varies = scenarios.scenario(scenario).batch_varies(self.scenario_options)
        return list(dict.fromkeys(self.cfg.shapes or ["dynamic" if varies else "static"]))

    def new_run(self) -> RunDir:
        return RunDir.create(self.cfg.out, f"{datetime.now():%Y%m%d-%H%M%S}-{self.family.name}-{self.preset}")

    def environment(self) -> dict:
        """env.json: this machine (env.capture) and its cached peaks."""
        environment = env.capture()
        return {**environment, "machine": machine.cached(environment)}

    def run(self, progress: SweepProgress | None = None) -> RunDir:
        """Run every job's replicas into a new run folder (Ctrl-C: RunInterrupted, every replica that ended kept)."""
        run = self.new_run()
        environment = self.environment()
        with lifecycle(run, environment, self.config_json(), len(list(self.grid())) * self.repeat):
            plans = self.plan(run, environment)
            if progress:
                progress.start(len(plans), self.repeat)

            def done(plan: Planned, line: dict) -> None:
                run.append(line)
                if progress:
                    progress.finished(line)

            Interleaver(self.repeat, on_launch=progress and progress.launched).run(plans, done)
        return run

    def plan(self, run: RunDir, environment: dict, first_index: int = 0, skip: str | None = None) -> list[Planned]:
        """Every job of the grid, its variant built and its inputs saved, or its skipped / failed record (every
        job `skipped` with the reason `skip` when given); job ids count from `first_index`."""
        prepared: dict[str, object] = {}
        plans = []
        for index, (variant, b, scenario, batch, shapes) in enumerate(self.grid(), first_index):
            named = shapes if len(self.shapes(b, scenario)) > 1 else None
            job = Job(
                job_id=job_id(index, self.family.name, variant.name, b.name, scenario, batch, self.target, named),
                shapes=shapes, run_id=run.run_id, run_dir=str(run.path), model=self.family.name, preset=self.preset,
                variant=variant.name, backend=b.name, backend_entry=registry.BACKENDS[b.name], device=b.device,
                profile=self.profile.name, scenario=scenario, batch_size=batch, threads=self.threads,
                timing=self.cfg.timing, timeout_s=self.harness[variant.name, b.name].timeout_s or self.cfg.timeout_s,
                inputs=self.family.input_names, affinity=self.affinity, memory_cap_bytes=self.profile.memory_cap_bytes,
                env_id=environment["env_id"], quality_entry=self.family.quality_entry,
                backend_options=self.backend_options(variant, b), scenario_options=self.scenario_options,
                profile_detail=self.profile.model_dump(mode="json"), op_profile=self.cfg.op_profile,
                machine_peaks=environment["machine"], target=self.target)
            ready = job.outcome("skipped", skip) if skip else self._prepare(job, variant, b, self.ws, run, prepared)
            plans.append(Planned(job, run, ready) if isinstance(ready, dict) else
                         Planned(replace(job, artifacts=ready), run))
        return plans

    def _prepare(self, job: Job, variant, b: BackendChoice, ws: Workspace, run: RunDir, prepared: dict
                 ) -> Artifacts | dict:
        """The job's artifacts (its variant built, its inputs saved), or the record it gets without running."""
        if not b.available:
            return job.outcome("skipped", b.reason)
        if job.shapes == "static" and scenarios.scenario(job.scenario).batch_varies(self.scenario_options):
            return job.outcome("skipped", f"static shapes compile one batch, but {job.scenario}'s calls vary in rows "
                                          f"(scenario_options candidates / batching): measure it with --shapes dynamic")
        ok, why = b.cls.supports(variant.formats, b.device)
        if not ok:  # a format the backend loads that the variant could not build says why first
            unbuilt = (variant.unbuilt[f] for f in b.cls.formats if f in variant.unbuilt)
            return job.outcome("skipped", next(unbuilt, why))
        fmt = b.cls.pick_format(variant.formats)
        why = variant.skip_reason(ws, fmt)
        if why:
            return job.outcome("skipped", why)
        key = f"{variant.name}/{fmt}"
        if key not in prepared:
            try:
                with output_to(run.path / "logs" / f"{job.job_id}.log"):
                    prepared[key] = ws.prepare(variant, {fmt})
            except USER_ERRORS:
                raise
            except NotApplicable as e:  # found only while building: skipped, with why
                prepared[key] = ("skipped", f"{variant.name}: {e}")
            except Exception as e:  # noqa: BLE001 - a variant that cannot be built fails its jobs only
                prepared[key] = ("failed", f"building {variant.name} [{fmt}] failed: {type(e).__name__}: {e}")
        p = prepared[key]
        if isinstance(p, tuple):
            return job.outcome(*p)
        rows = self.scenario_options.row_pool(job.batch_size)
        return Artifacts(p.files[fmt], fmt, p.params, p.flops_per_sample, p.reference, p.notes,
                         input_pool=save_input_pool(run, ws, job.batch_size, job.timing.pool_size),
                         row_pool=save_input_pool(run, ws, rows, 1, row_pool=True) if rows else "",
                         item_input=getattr(ws, "item_input", None) or "")


def run_sweep(cfg: SweepConfig, console: Console) -> Path:
    sweep = Sweep(cfg, log=console.print)
    with SweepProgress(console) as progress:
        sweep.log = progress.log
        return sweep.run(progress).path
