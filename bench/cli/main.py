"""The `recbench` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.errors import USER_ERRORS, UserError

# Help texts print as written: rich markup would read `pkg.mod:factory:` as an emoji code and eat "[auto]" defaults.
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Benchmark compressed recommender models across inference runtimes.")
# Logs and CI get a wide console; an interactive terminal keeps its own width. No emoji codes in user strings.
console = Console(emoji=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, emoji=False, width=None if sys.stderr.isatty() else 160)
QUICK_HELP = ("short windows for smoke tests and CI: warm up 5 calls / 0.2 s, measure >= 0.5 s and until p99 is "
              "resolvable (662 iterations), at most 10 s per job; quality on 16,384 held-out samples")
SCENARIO_HELP = ("load scenario: single-stream, offline, server, concurrency, max-qps, server-loadgen "
                 "(default: the profile's)")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            console.print(f"recbench {version('recbench')}", highlight=False)
        except PackageNotFoundError:
            console.print("recbench (not installed: running from a source tree)", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(_: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="print the version and exit")) -> None:
    """Benchmark compressed recommender models across inference runtimes."""


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _ints(value: str | None, flag: str = "--batch-sizes", positive: bool = False) -> list[int] | None:
    items = _csv(value)
    if items is None:
        return None
    try:
        numbers = [int(v) for v in items]
    except ValueError:
        raise UserError(f"{flag} takes comma-separated integers, got '{value}'") from None
    if positive and (not numbers or min(numbers) < 1):
        raise UserError(f"{flag} takes positive integers, got '{value}'")
    return numbers


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
             "workers": workers, "concurrency": _ints(concurrency, "--concurrency", positive=True)}
    flags = {k: v for k, v in flags.items() if v is not None}
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    return {**base.get("scenario_options", {}), **flags} if flags else None


def _timing(base: dict, quick: bool, resolve: str | None, max_duration: float | None) -> dict | None:
    """The config file's timing with --quick's windows and the timing flags laid over it (None: not touched)."""
    from bench.config.sweep import TimingConfig

    flags = {k: v for k, v in {"resolve": resolve, "max_duration_s": max_duration}.items() if v is not None}
    if not quick and not flags:
        return None
    quick_fields = TimingConfig.quick().model_dump(exclude_unset=True) if quick else {}
    return {**base.get("timing", {}), **quick_fields, **flags}


@app.command()
def run(
    config: Path | None = typer.Option(None, "--config", help="YAML sweep config (flags override it)"),
    model: str | None = typer.Option(None, "--model", help="built-in model name, a model file (.onnx, .xml IR, "
                                     ".engine) or my_pkg.my_mod:factory returning a torch module"),
    input_spec: Path | None = typer.Option(None, "--input-spec", help="YAML: a bring-your-own model's inputs"),
    preset: str | None = typer.Option(None, "--preset", help="model size preset (tiny, edge, datacenter)"),
    variants: str | None = typer.Option(None, "--variants", help="comma-separated variants, or 'all'"),
    calibration: Path | None = typer.Option(None, "--calibration", help="int8-static calibration inputs "
                                            "(.npz / .parquet, one array per model input)"),
    student: str | None = typer.Option(None, "--student", help="pkg.mod:factory: distillation student of a "
                                       "bring-your-own model"),
    backends: str | None = typer.Option(None, "--backends", help="comma-separated backends"),
    batch_sizes: str | None = typer.Option(None, "--batch-sizes", help="e.g. 1,64,512"),
    profile: str | None = typer.Option(None, "--profile", help="edge, datacenter or a profile YAML"),
    scenario: str | None = typer.Option(None, "--scenario", help=SCENARIO_HELP),
    threads: int | None = typer.Option(None, "--threads", help="runtime threads per job"),
    out: Path | None = typer.Option(None, "--out", help="parent folder of the run folder (default: results)"),
    quick: bool = typer.Option(False, "--quick", help=QUICK_HELP),
    resolve: str | None = typer.Option(None, "--resolve", help="measure until this percentile is resolvable "
                                       "(p50, p90, p95, p99, p999; default p99)"),
    max_duration: float | None = typer.Option(None, "--max-duration", help="cap on each job's measured phase, "
                                              "seconds (default 60; 10 with --quick)"),
    timeout: float | None = typer.Option(None, "--timeout", help="seconds before a job is killed"),
    device: str | None = typer.Option(None, "--device", help="device to run on, e.g. cuda:1 (chosen backends that "
                                      "cannot use it are skipped; none can: exit 2) [each backend's own]"),
    no_report: bool = typer.Option(False, "--no-report", help="do not write RUN/report/ at the end"),
    qps: str | None = typer.Option(None, "--qps", help="server: target queries/s (default: the profile's share of "
                                   "capacity)"),
    p99_budget_ms: str | None = typer.Option(None, "--p99-budget-ms", help="max-qps: p99 bound in ms [10]"),
    workers: int | None = typer.Option(None, "--workers", help="server / max-qps: serving threads [1]"),
    concurrency: str | None = typer.Option(None, "--concurrency", help="concurrency: client counts, e.g. 1,2,4"),
    exporter: str | None = typer.Option(None, "--exporter", help="ONNX exporter of a module:factory model: "
                                        "auto (torchscript, then dynamo), torchscript or dynamo [auto]"),
    repeat: int | None = typer.Option(None, "--repeat", min=1, help="replicas per job, each its own process, "
                                      "interleaved across jobs [3; 1 with --quick]"),
    fleet: Path | None = typer.Option(None, "--fleet", help="fleet YAML: run on each target's Ray nodes"),
    cluster: str | None = typer.Option(None, "--cluster", help="Ray cluster address for --fleet, or auto [auto]"),
    op_profile: bool = typer.Option(False, "--op-profile", help="per-operator profile of each job (ops/<job>.json), "
                                    "in a pass after its timed phase"),
    shapes: str | None = typer.Option(None, "--shapes", help="static, dynamic or both (static,dynamic): input "
                                      "shapes of backends that compile for one batch (openvino, tensorrt); default: "
                                      "as deployed, static for a fixed batch, dynamic where the scenario's batch "
                                      "varies"),
) -> None:
    """Run a sweep: every variant x backend x scenario x batch size, one process per job.

    Exit 0 when every job is ok or skipped, 1 when one failed (the report lists each failure), 2 for bad input."""
    from bench.config.sweep import build_config
    from bench.records.history import record_run_quietly
    from bench.records.rundir import RunDir
    from bench.report.tables import print_summary
    from bench.run.fleet.runner import run_fleet
    from bench.run.sweep import run_sweep
    from models.fileio import load_yaml

    base = load_yaml(config) if config else {}
    overrides = {"model": model, "preset": preset, "variants": _csv(variants), "backends": _csv(backends),
                 "batch_sizes": _ints(batch_sizes), "profile": profile, "scenario": scenario, "threads": threads,
                 "out": out, "timeout_s": timeout, "input_spec": input_spec, "device": device,
                 "exporter": exporter, "calibration": calibration, "student": student,
                 "timing": _timing(base, quick, resolve, max_duration), "op_profile": op_profile or None,
                 "shapes": _csv(shapes),
                 "scenario_options": _scenario_flags(base, qps, p99_budget_ms, workers, concurrency),
                 "repeat": repeat or base.get("repeat") or (1 if quick else 3)}  # DESIGN.md, "Replicas"
    cfg = build_config(base, overrides, source=str(config or "command line"))
    run_path = run_fleet(cfg, fleet, cluster, console) if fleet or cluster else run_sweep(cfg, console)
    record_run_quietly(run_path, console.print)
    records = RunDir(run_path).records()
    print_summary(console, records, title=f"{cfg.model} run {run_path.name}")
    failed = sum(r["status"] == "failed" for r in records)
    ok = sum(r["status"] == "ok" for r in records)
    console.print(f"{ok} ok, {failed} failed, {len(records) - ok - failed} skipped; records: "
                  f"{run_path / 'records.jsonl'}", soft_wrap=True)
    busy = [r for r in records if (r.get("noise") or {}).get("busy")]
    if busy:
        worst = max((r["noise"].get("others_cpu_share") or 0) for r in busy)
        console.print(f"[yellow]warning[/]: the host was busy during {len(busy)} of {ok} jobs (other processes took up "
                      f"to {worst:.0%} of the cores): numbers are contended; `recbench doctor` says what to change, "
                      "`recbench gate --rerun` compares fairly", soft_wrap=True, highlight=False)
    if not no_report and records:
        from bench.report.build import build_report

        console.print(f"report: {build_report(run_path, require_ok=False).html}", soft_wrap=True, highlight=False)
    raise typer.Exit(1 if failed else 0)  # skipped jobs (no runtime, no artifact for it) are skipped on purpose


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="a run folder (results/<run-id>)"),
    out: Path | None = typer.Option(None, "--out", help="where to write the report [RUN_DIR/report]"),
    reference_backend: str | None = typer.Option(None, "--reference-backend",
                                                 help="backend of the fp32 baseline for speedups [torch-cpu]"),
    as_json: bool = typer.Option(False, "--json", help="print what was written as JSON (for machines)"),
) -> None:
    """Charts, tables, report.html and report.md from a run's records (nothing is re-run)."""
    import json

    from bench.report.build import build_report
    from bench.report.tables import print_summary

    rep = build_report(run_dir, out, reference_backend)
    if as_json:
        print(json.dumps(rep.as_dict(), indent=1))
        return
    print_summary(console, rep.run.records, title=f"run {rep.run.run_id}")
    if rep.run.interruption:
        console.print(f"[bold yellow]INCOMPLETE[/]: {escape(rep.run.interruption)}", highlight=False, soft_wrap=True)
    for c in rep.charts:
        where = f"{rep.out_dir / 'charts' / c.name}.png|svg" if c.figure else f"[dim]not drawn: {escape(c.skipped)}[/]"
        console.print(f"chart {c.name}: {where}", soft_wrap=True, highlight=False)
    console.print(f"report: {rep.html}\nmarkdown: {rep.markdown}", soft_wrap=True, highlight=False)


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="baseline run folder (A)"),
    run_b: Path = typer.Argument(..., help="candidate run folder (B)"),
    markdown: Path | None = typer.Option(None, "--markdown", help="also write the comparison as Markdown here"),
    html: Path | None = typer.Option(None, "--html", help="also write it as one self-contained HTML file here"),
    out: Path | None = typer.Option(None, "--out", help="write compare.md, compare.html and the chart here"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON (for machines)"),
    allow_interrupted: bool = typer.Option(False, "--allow-interrupted", help="accept an incomplete run as A"),
    across_targets: bool = typer.Option(False, "--across-targets",
                                        help="pair jobs of different fleet targets (kept apart by default)"),
    threshold: str = typer.Option("5%", "--threshold", help="the change tolerated: 'no difference' inside ±this, "
                                  "'slower' only when the whole CI lies beyond it"),
) -> None:
    """Side by side: ratios B/A of p50, p99, throughput and memory per matched job, and what changed (gate's rule)."""
    import json

    from bench import compare as cmp_mod
    from bench.gate.regression import parse_threshold

    tolerated = parse_threshold(threshold, "--threshold")
    cmp = cmp_mod.compare_runs(run_a, run_b, allow_interrupted, across_targets, tolerated)
    for r in (cmp.a, cmp.b):
        if r.interruption:
            err_console.print(f"warning: {r.interruption}", highlight=False, soft_wrap=True)
    written = cmp_mod.write(cmp, markdown, html, out)
    if as_json:
        print(json.dumps({**cmp.as_dict(), "written": [str(p) for p in written]}, indent=1))
        return
    from bench.report.tables import print_table

    if cmp.pairs:
        ratios = cmp_mod.ratios_table(cmp)
        print_table(console, ratios.to_rich(compact=True), ratios.keys)
    else:
        console.print(f"no job is in both runs (matched on {', '.join(cmp_mod.FIELDS)})", highlight=False)
    for extra in (cmp_mod.op_changes(cmp), cmp_mod.one_side_table(cmp)):
        if extra:
            print_table(console, extra.to_rich(), extra.keys)
    for path in written:
        console.print(f"wrote {path}", soft_wrap=True, highlight=False)


class _GateCommand(typer.core.TyperCommand):
    """`gate --help` ends with every metric a budget can limit (read from the record schema when help is asked for,
    so other commands do not pay for importing it)."""

    def format_help(self, ctx, formatter) -> None:
        from bench.gate.metrics import METRICS

        self.epilog = "Budget metrics (limits: keys): " + ", ".join(METRICS)
        super().format_help(ctx, formatter)


@app.command(cls=_GateCommand)
def gate(
    run_dir: Path = typer.Argument(..., help="the run folder to judge"),
    budgets: Path | None = typer.Option(None, "--budgets", help="budgets YAML: rules of select + limits"),
    baseline: str | None = typer.Option(None, "--baseline", help="baseline run folder, run id, last-pass or last"),
    max_regression: str = typer.Option("5%", "--max-regression", help="tolerated slowdown vs the baseline"),
    metrics: str | None = typer.Option(None, "--metrics", help="regression metrics, default: p50,p99,throughput "
                                       "(also p90, p95, mean, cpu)"),
    strict: bool = typer.Option(False, "--strict", help="judge budgets on the pessimistic end of each CI; "
                                "an inconclusive regression check fails"),
    junit: Path | None = typer.Option(None, "--junit", help="write JUnit XML (one test case per rule x job)"),
    markdown: Path | None = typer.Option(None, "--markdown", help="write a Markdown summary (pull-request comment)"),
    db: Path | None = typer.Option(None, "--db", help="history database [RUN_DIR/../history.sqlite]"),
    record: bool = typer.Option(False, "--record", help="store the verdict in the history (what last-pass reads; "
                                "CI does this, a trial of a budgets file does not)"),
    allow_interrupted: bool = typer.Option(False, "--allow-interrupted", help="accept an incomplete baseline run"),
    rerun: bool = typer.Option(False, "--rerun", help="re-measure the baseline's and the candidate's jobs now, "
                               "replicas interleaved (ABBA), and judge those (recommended on shared machines)"),
    repeat: int | None = typer.Option(None, "--repeat", min=2, help="with --rerun: at most this many replicas of "
                                      "each side [40] (it stops once every metric is decided)"),
    max_time: float | None = typer.Option(None, "--max-time", min=1, help="with --rerun: seconds per pair of jobs "
                                          "before the last look [180]"),
    history: bool = typer.Option(False, "--history", help="judge against the last runs on this machine class"),
    window: int = typer.Option(20, "--window", min=2, help="with --history: how many earlier runs"),
    model: str = typer.Option("t-test", "--model", help="with --history: t-test, z-score, percentage or iqr"),
    fail_on_change: bool = typer.Option(False, "--fail-on-change", help="with --history: fail on a change point "
                                        "for the worse in the newest 3 runs"),
) -> None:
    """Release gate: exit 0 when every check passes, 1 when a budget or the regression check fails, 2 bad input.

    A regression check whose noise hides the threshold is `inconclusive`: exit 0, but 1 with --strict."""
    from bench.cli.gate import run_gate

    ok = run_gate(console, run_dir, budgets, baseline, max_regression, metrics, strict, junit, markdown, db,
                  rerun, repeat, record, allow_interrupted, max_time, history, window, model, fail_on_change)
    raise typer.Exit(0 if ok else 1)


@app.command()
def history(
    folder: Path = typer.Argument(Path("results"), help="results folder: run folders and history.sqlite"),
    rebuild: bool = typer.Option(False, "--rebuild", help="re-read every run folder under FOLDER into the database"),
    metric: str = typer.Option("latency_ms.p99", "--metric", help="record metric to trend"),
    model: str | None = typer.Option(None, "--model"),
    preset: str | None = typer.Option(None, "--preset"),
    variant: str | None = typer.Option(None, "--variant", help="glob patterns allowed, e.g. 'int8*'"),
    backend: str | None = typer.Option(None, "--backend"),
    scenario: str | None = typer.Option(None, "--scenario"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    last: int = typer.Option(20, "--last", min=1, help="show the newest N runs"),
    chart: Path | None = typer.Option(None, "--chart", help="PNG path [FOLDER/history-METRIC.png]"),
    db: Path | None = typer.Option(None, "--db", help="history database [FOLDER/history.sqlite]"),
    change_points: bool = typer.Option(False, "--change-points", help="find each series' change points (Otava)"),
    machine: str | None = typer.Option(None, "--machine", help="only the runs of this machine class (its column)"),
) -> None:
    """Trend of a metric across recorded runs (table + chart); --rebuild re-reads the run folders."""
    from bench.records.history import History, default_db
    from bench.report.trend import chart_name, show_trend

    db = db or default_db(folder)
    if not rebuild and not db.exists():
        raise UserError(f"no history database at {db}; `recbench run` creates it, "
                        f"`recbench history --rebuild {folder}` rebuilds it from run folders")
    with History(db) as h:
        if rebuild:
            console.print(f"rebuilt {db} from {h.rebuild(folder)} run folders under {folder}", highlight=False)
        select = {k: v for k, v in {"model": model, "preset": preset, "variant": variant, "backend": backend,
                                    "scenario": scenario, "batch_size": batch_size}.items() if v is not None}
        show_trend(console, h, select, metric, last, chart or folder / chart_name(metric, select), change_points,
                   machine)


@app.command("fleet")
def list_fleet(
    cluster: str = typer.Option("auto", "--cluster", help="Ray cluster address, or auto"),
    fleet: Path | None = typer.Option(None, "--fleet", help="fleet YAML: name each node's targets and backends"),
) -> None:
    """The cluster's nodes: their device resources (targets), what they run and whether they are busy."""
    from bench.report.tables import print_table
    from bench.run.fleet.spec import connect, live_nodes, load_fleet

    spec = load_fleet(fleet) if fleet else None
    with connect(cluster) as ray:
        nodes = live_nodes(ray)
    table = Table("node", "address", "devices", "targets", "runs", "state", header_style="bold")
    for n in nodes:
        targets = spec.target_of(n.devices) if spec else []
        table.add_row(n.node_id[:12], escape(n.address),
                      escape(", ".join(f"{r}: {v:g}" for r, v in n.devices.items()) or "-"),
                      escape(", ".join(t.name for t in targets) or "-"),
                      escape(", ".join(dict.fromkeys(b for t in targets for b in t.backends)) or "-"),
                      "[yellow]busy" if n.busy else "idle")
    print_table(console, table)
    for t in spec.targets if spec else []:
        if not any(n.devices.get(t.resource) for n in nodes):
            console.print(f"[red]target {escape(t.name)}: no node offers {escape(t.resource)}", highlight=False)


@app.command("machine")
def machine(
    show_cached: bool = typer.Option(False, "--cached", help="print the cached peaks instead of measuring"),
) -> None:
    """Measure this machine's peaks (fp32/int8 GEMM, STREAM triad, Zipf gather) and cache them for the roofline."""
    from bench.measure import env
    from bench.measure import machine as mach

    environment = env.capture()
    peaks = mach.cached(environment) if show_cached else mach.measure(environment, err_console.print)
    if peaks is None:
        raise UserError("no cached peaks for this machine: run `recbench machine`")
    for line in mach.describe(peaks):
        console.print(line, soft_wrap=True, highlight=False)
    console.print(f"cached: {mach.cache_path(environment)}", soft_wrap=True, highlight=False)


@app.command()
def ab(
    x: str = typer.Argument(..., help="A: a variant (fp32), MODEL@VARIANT, or a model (name, file, pkg.mod:factory)"),
    y: str = typer.Argument(..., help="B: the same forms as A"),
    model: str = typer.Option("dlrm", "--model", help="the model of a side given as a bare variant name"),
    preset: str | None = typer.Option(None, "--preset", help="model size preset"),
    backends: str | None = typer.Option(None, "--backends", help="comma-separated backends"),
    batch_sizes: str | None = typer.Option(None, "--batch-sizes", help="e.g. 1,64"),
    profile: str | None = typer.Option(None, "--profile", help="edge, datacenter or a profile YAML"),
    scenario: str | None = typer.Option(None, "--scenario", help="load scenario"),
    quick: bool = typer.Option(False, "--quick", help="short measurement windows"),
    repeat: int | None = typer.Option(None, "--repeat", min=2, help="at most this many replicas of each side [40], "
                                      "interleaved A B, B A, ... (it stops once every metric is decided)"),
    max_time: float | None = typer.Option(None, "--max-time", min=1, help="seconds per pair of jobs before the last "
                                          "look [180]"),
    max_regression: str = typer.Option("5%", "--max-regression", help="tolerated slowdown of B vs A"),
    metrics: str | None = typer.Option(None, "--metrics", help="default: p50,p99,throughput"),
    strict: bool = typer.Option(False, "--strict", help="an inconclusive check fails"),
    out: Path | None = typer.Option(None, "--out", help="parent folder of OUT/ab/<stamp>-ab-A|B [results]"),
) -> None:
    """Interleaved A/B of two models, artifacts or variants on this machine now: exit 0 B is not worse, 1 it is."""
    from bench.cli.gate import judge_sequentially
    from bench.config.sweep import TimingConfig, build_config
    from bench.gate import output
    from bench.gate.regression import parse_metrics, parse_threshold
    from bench.report.tables import print_table
    from bench.run import ab as ab_mod

    threshold, names = parse_threshold(max_regression), parse_metrics(metrics)
    cfgs = []
    for text in (x, y):
        m, v = ab_mod.side(text, model)
        cfgs.append(build_config({}, {"model": m, "variants": [v], "preset": preset, "backends": _csv(backends),
                                      "batch_sizes": _ints(batch_sizes), "profile": profile, "scenario": scenario,
                                      "out": out, "timing": TimingConfig.quick() if quick else None}, source=text))
    (run_a, run_b), result = judge_sequentially(console, lambda look: ab_mod.run_ab(
        cfgs[0], cfgs[1], repeat or ab_mod.DEFAULT_PAIRS, console.print, look, max_time or ab_mod.MAX_TIME_S),
        threshold, names, strict, ab_mod.ab_key)
    print_table(console, output.table([result], title=f"B ({y}) vs A ({x}), interleaved"), 2)
    console.print(("[green]" if result.passed else "[bold red]") + output.summary([result]), highlight=False)
    console.print(f"measurements: {run_a.path} {run_b.path}", soft_wrap=True, highlight=False)
    raise typer.Exit(0 if result.passed else 1)


@app.command()
def doctor(
    seconds: float = typer.Option(2.0, "--seconds", min=0.2, help="how long to watch the machine"),
) -> None:
    """Is this machine quiet enough to benchmark now? Exit 0 quiet, 1 not (each finding says what to change)."""
    from bench.doctor import examine, quiet
    from bench.report.tables import print_table

    findings = examine(seconds)
    table = Table("check", "value", "verdict", "what to change", header_style="bold")
    for f in findings:
        table.add_row(f.check, escape(f.value), "[green]ok" if f.verdict == "ok" else "[yellow]warn",
                      "" if f.verdict == "ok" else f.advice)
    print_table(console, table)
    ok = quiet(findings)
    console.print("[green]quiet enough to benchmark" if ok else "[yellow]not quiet: numbers measured now will be "
                  "noisy; prefer interleaved comparisons (gate --rerun, recbench ab) and more replicas (--repeat)")
    raise typer.Exit(0 if ok else 1)


@app.command()
def recommend(
    budgets: Path = typer.Option(..., "--budgets", help="budgets YAML (as for `gate`): what a configuration must meet"),
    model: str = typer.Option("dlrm", "--model", help="built-in model, a model file or my_pkg.my_mod:factory"),
    input_spec: Path | None = typer.Option(None, "--input-spec", help="YAML: a bring-your-own model's inputs"),
    preset: str | None = typer.Option(None, "--preset", help="model size preset (tiny, edge, datacenter)"),
    profile: str = typer.Option("default", "--profile", help="edge, datacenter or a profile YAML"),
    time_budget: str = typer.Option("10m", "--time-budget", help="wall-clock limit of the search, e.g. 90s, 10m"),
    objective: str = typer.Option("throughput", "--objective", help="throughput, p99, size or max-qps (serving)"),
    scenario: str = typer.Option("single-stream", "--scenario", help="what each trial runs: single-stream, "
                                 "concurrency (searches client streams) or max-qps (server QPS under a p99 budget)"),
    concurrency: str | None = typer.Option(None, "--concurrency", help="concurrency: client counts, e.g. 1,2,4,8"),
    p99_budget_ms: float | None = typer.Option(None, "--p99-budget-ms", help="max-qps: the server's p99 budget"),
    max_delays: str | None = typer.Option(None, "--max-delays", help="max-qps: dynamic batcher delays (ms) to "
                                          "search, e.g. 0,1,2,4 [no batching]"),
    max_batch: int = typer.Option(128, "--max-batch", min=1, help="max-qps with --max-delays: rows per call at most"),
    variants: str | None = typer.Option(None, "--variants", help="variants to search [all; a bring-your-own "
                                        "model: as given]"),
    backends: str | None = typer.Option(None, "--backends", help="backends to search [every available CPU one]"),
    batch_sizes: str | None = typer.Option(None, "--batch-sizes", help="batch sizes to search [the profile's]"),
    threads: str | None = typer.Option(None, "--threads", help="thread counts to search [1 and the profile's]"),
    write: Path = typer.Option(Path("recommended.yaml"), "--write", help="where the recommended config goes"),
    out: Path = typer.Option(Path("results"), "--out", help="parent folder of the search's runs and summary"),
) -> None:
    """Find the best deployable configuration (variant, backend, batch, threads; serving: client streams, or the
    server's max QPS under a p99 budget with the batcher's delay) under latency/memory/quality budgets: exit 0 found
    (config written), 1 none meets the budgets (closest misses printed), 2 bad input."""
    from bench.cli.recommend import recommend as search
    from bench.config.sweep import build_config
    from models.byo import is_byo

    names = _csv(variants) or (None if is_byo(model) else ["all"])
    overrides = {"model": model, "input_spec": input_spec, "preset": preset, "profile": profile,
                 "variants": names, "backends": _csv(backends), "batch_sizes": _ints(batch_sizes), "out": out,
                 "scenario": scenario}
    serving = {"concurrency": _ints(concurrency, "--concurrency", positive=True), "p99_budget_ms": p99_budget_ms,
               "batching": max_delays and {"max_batch": max_batch, "max_delay_ms": _csv(max_delays)}}
    cfg = build_config({"scenario_options": {k: v for k, v in serving.items() if v}}, overrides, source="command line")
    thread_counts = _ints(threads, "--threads", positive=True)
    raise typer.Exit(0 if search(console, cfg, budgets, objective, time_budget, thread_counts, write) else 1)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="a run folder (results/<run-id>)"),
    fmt: str = typer.Option("parquet", "--format", help="parquet, csv, bmf (Bencher), gab or gab-bigger (github-action-"
                            "benchmark customSmallerIsBetter latencies / customBiggerIsBetter throughputs)"),
    out: Path | None = typer.Option(None, "--out", help="the file to write [RUN_DIR/records.<format>]"),
) -> None:
    """A run's records as one table (one row per job, columns like latency_ms.p50) in Parquet or CSV, or its metrics
    as the JSON CI tools ingest (one benchmark per job, named by its identity)."""
    import json

    from bench.records import frame
    from bench.records.rundir import RunDir
    from bench.report.export import FORMATS, bmf, gab

    if fmt not in FORMATS:
        written = frame.export_run(run_dir, fmt, out)
    else:  # the CI formats: JSON, by default RUN_DIR/<format>.json
        records, written = RunDir(run_dir).records(), out or run_dir / f"{fmt}.json"
        written.write_text(json.dumps(bmf(records) if fmt == "bmf" else gab(records, fmt == "gab-bigger"), indent=2))
    console.print(f"wrote {written}", highlight=False, soft_wrap=True)


@app.command("backends")
def list_backends() -> None:
    """Every known backend: available or not, and why."""
    from backends import registry
    from bench.report.tables import print_table

    table = Table("backend", "devices", "loads", "status", header_style="bold")
    for name in registry.BACKENDS:
        cls = registry.get(name)
        ok, why = cls.available()
        table.add_row(name, ",".join(cls.devices), ",".join(cls.formats), ("[green]" if ok else "[red]") + escape(why))
    print_table(console, table)


@app.command("variants")
def list_variants(
    model: str | None = typer.Option(None, "--model", help="a model (built-in name, file or pkg.mod:factory): "
                                     "which techniques apply to it, and why not"),
    preset: str | None = typer.Option(None, "--preset", help="built-in model preset"),
    input_spec: Path | None = typer.Option(None, "--input-spec", help="YAML: a bring-your-own model's inputs"),
    student: str | None = typer.Option(None, "--student", help="pkg.mod:factory: distillation student"),
) -> None:
    """Every variant and which backend can run it; with --model, what applies to that model."""
    from backends import registry
    from bench.report.tables import print_table
    from models.variants import VARIANTS

    if model is not None:
        from bench.config.profiles import load_profile
        from bench.config.sweep import build_config
        from bench.run.sweep import open_model
        from models.variants import variant_matrix

        cfg = build_config({}, {"model": model, "preset": preset, "input_spec": input_spec, "student": student})
        family, _, ws = open_model(cfg, cfg.batch_sizes or load_profile(cfg.profile).batch_sizes, console.print)
        table = Table("variant", "level", "builds", "why not", header_style="bold", title=f"{model} ({ws.kind})")
        for row in variant_matrix(ws, getattr(family, "variant", None)):
            table.add_row(row["variant"], row["level"], ("[green]" if row["formats"] else "[red]") +
                          (",".join(row["formats"]) or "nothing"), escape("; ".join(row["reasons"])))
        print_table(console, table)
        return
    # presets support what their class does
    classes = {n: registry.get(n) for n in registry.BACKENDS if n not in registry.PRESET_OPTIONS}
    available = {n: cls.available()[0] for n, cls in classes.items()}
    table = Table("variant", *classes, "what it is", header_style="bold",
                  caption="yes*: the backend could run it but is not available here (`recbench backends` says why)")
    for v in VARIANTS.values():
        cells = [("[green]yes" if available[n] else "[yellow]yes*") if cls.supports(v.formats, cls.devices[0])[0]
                 else "[dim]-" for n, cls in classes.items()]
        table.add_row(v.name, *cells, v.summary)
    print_table(console, table)


@app.command("models")
def list_models() -> None:
    """Every built-in model with its presets."""
    from models.registry import FAMILIES

    for fam in FAMILIES.values():
        console.print(f"{fam.name}  presets: {', '.join(fam.presets)} (default {fam.default_preset})  "
                      f"{fam.summary}", soft_wrap=True, highlight=False)


def main() -> None:
    from bench.run.lifecycle import RunInterrupted

    try:
        app()  # click itself turns usage errors into exit code 2
    except USER_ERRORS as e:
        err_console.print(f"error: {escape(str(e))}", highlight=False, soft_wrap=True)  # [extras] are not markup
        sys.exit(2)
    except RunInterrupted as e:  # Ctrl-C or SIGTERM during `run`, `ab` or `gate --rerun`: what ended is kept
        err_console.print(f"interrupted: {escape(str(e))}; results so far: {e.run.records_path}", highlight=False,
                          soft_wrap=True)
        sys.exit(130)
