"""The `recbench` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.errors import UserError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Benchmark compressed recommender models across inference runtimes.")
# Logs and CI get a wide console; an interactive terminal keeps its own width.
console = Console() if sys.stdout.isatty() else Console(width=160)
err_console = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _ints(value: str | None, flag: str = "--batch-sizes") -> list[int] | None:
    items = _csv(value)
    if items is None:
        return None
    try:
        return [int(v) for v in items]
    except ValueError:
        raise UserError(f"{flag} takes comma-separated integers, got '{value}'") from None


def _positive_number(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"{flag} takes a number, got '{value}'") from None
    if not number > 0 or number == float("inf"):
        raise UserError(f"{flag} must be a positive finite number, got '{value}'")
    return number


def _scenario_flags(base: dict, qps: str | None, budget: str | None, workers: int | None,
                    concurrency: str | None) -> dict | None:
    """The config file's scenario_options with the scenario flags given on the command line laid over them."""
    flags = {"qps": _positive_number(qps, "--qps"), "p99_budget_ms": _positive_number(budget, "--p99-budget-ms"),
             "workers": workers, "concurrency": _ints(concurrency, "--concurrency")}
    flags = {k: v for k, v in flags.items() if v is not None}
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if any(k < 1 for k in flags.get("concurrency", [1])):
        raise UserError(f"--concurrency takes positive integers, got '{concurrency}'")
    return {**base.get("scenario_options", {}), **flags} if flags else None


@app.command()
def run(
    config: Path | None = typer.Option(None, "--config", help="YAML sweep config (flags override it)"),
    model: str | None = typer.Option(None, "--model", help="built-in model name"),
    preset: str | None = typer.Option(None, "--preset", help="model size preset (tiny, edge, datacenter)"),
    variants: str | None = typer.Option(None, "--variants", help="comma-separated variants, or 'all'"),
    backends: str | None = typer.Option(None, "--backends", help="comma-separated backends"),
    batch_sizes: str | None = typer.Option(None, "--batch-sizes", help="e.g. 1,64,512"),
    profile: str | None = typer.Option(None, "--profile", help="edge, datacenter or a profile YAML"),
    scenario: str | None = typer.Option(None, "--scenario", help="load scenario"),
    threads: int | None = typer.Option(None, "--threads", help="runtime threads per job"),
    out: Path | None = typer.Option(None, "--out", help="parent folder of the run folder [results]"),
    quick: bool = typer.Option(False, "--quick", help="short measurement windows (smoke tests, CI)"),
    timeout: float | None = typer.Option(None, "--timeout", help="seconds before a job is killed"),
    qps: str | None = typer.Option(None, "--qps", help="server: target queries/s [profile: a share of capacity]"),
    p99_budget_ms: str | None = typer.Option(None, "--p99-budget-ms", help="max-qps: p99 bound in ms [10]"),
    workers: int | None = typer.Option(None, "--workers", help="server / max-qps: serving threads [1]"),
    concurrency: str | None = typer.Option(None, "--concurrency", help="concurrency: client counts, e.g. 1,2,4"),
) -> None:
    """Run a sweep: every variant x backend x scenario x batch size, one process per job."""
    from bench.config import TimingConfig, build_config, load_yaml
    from bench.records import RunDir
    from bench.summary import print_summary
    from bench.sweep import run_sweep

    base = load_yaml(config) if config else {}
    overrides = {"model": model, "preset": preset, "variants": _csv(variants), "backends": _csv(backends),
                 "batch_sizes": _ints(batch_sizes), "profile": profile, "scenario": scenario, "threads": threads,
                 "out": out, "timeout_s": timeout, "timing": TimingConfig.quick() if quick else None,
                 "scenario_options": _scenario_flags(base, qps, p99_budget_ms, workers, concurrency)}
    cfg = build_config(base, overrides, source=str(config or "command line"))
    run_path = run_sweep(cfg, console)
    records = RunDir(run_path).records()
    print_summary(console, records, title=f"{cfg.model} run {run_path.name}")
    failed = sum(r["status"] == "failed" for r in records)
    ok = sum(r["status"] == "ok" for r in records)
    console.print(f"{ok} ok, {failed} failed, {len(records) - ok - failed} skipped; records: "
                  f"{run_path / 'records.jsonl'}", soft_wrap=True)


@app.command("backends")
def list_backends() -> None:
    """Every known backend: available or not, and why."""
    from backends import registry

    table = Table("backend", "devices", "loads", "status", header_style="bold")
    for name in registry.BACKENDS:
        cls = registry.get(name)
        ok, why = cls.available()
        table.add_row(name, ",".join(cls.devices), ",".join(cls.formats), ("[green]" if ok else "[red]") + escape(why))
    console.print(table)


@app.command("variants")
def list_variants() -> None:
    """Every variant and which backend can run it."""
    from backends import registry
    from models.variants import VARIANTS

    names = list(registry.BACKENDS)
    table = Table("variant", *names, "what it is", header_style="bold")
    for v in VARIANTS.values():
        cells = []
        for name in names:
            cls = registry.get(name)
            ok, _ = cls.supports(v.formats, cls.devices[0])
            cells.append("[green]yes" if ok else "[dim]-")
        table.add_row(v.name, *cells, v.summary)
    console.print(table)


@app.command("models")
def list_models() -> None:
    """Every built-in model with its presets."""
    from models.registry import FAMILIES

    for fam in FAMILIES.values():
        console.print(f"{fam.name}  presets: {', '.join(fam.presets)} (default {fam.default_preset})  "
                      f"{fam.summary}", soft_wrap=True, highlight=False)


def main() -> None:
    try:
        app()  # click itself turns usage errors into exit code 2
    except UserError as e:
        err_console.print(f"error: {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
