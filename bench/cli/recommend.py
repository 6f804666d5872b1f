"""`recbench recommend`: validate the inputs, search, say what to ship and write the config that reproduces it."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console

from bench.config.sweep import SweepConfig
from bench.config.validation import lookup
from bench.errors import UserError
from bench.gate.budgets import load_budgets
from bench.recommend import output
from bench.recommend.judge import OBJECTIVES
from bench.report.tables import print_table
from bench.run.search import Search
from bench.run.sweep import Sweep

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$")
_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
SCENARIOS = dict.fromkeys(("single-stream", "concurrency", "max-qps"))  # what a trial can run


def parse_duration(text: str) -> float:
    """'10m', '90s', '1h' or plain seconds."""
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise UserError(f"--time-budget takes a positive duration such as 90s, 10m or 1h, got '{text}'")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def search_space(sweep: Sweep) -> tuple[list[tuple[str, str]], dict[tuple[str, str], str]]:
    """(variant, backend) pairs worth timing, and the pairs that cannot run with the reason."""
    pairs, unrunnable = [], {}
    for v in sweep.variants:
        for b in sweep.backends:
            ok, why = b.cls.supports(v.formats, b.device) if b.available else (False, b.reason)
            # a technique that does not fit the model (e.g. no student) is never timed
            why = v.skip_reason(sweep.ws, b.cls.pick_format(v.formats)) if ok else why
            if why is None:
                pairs.append((v.name, b.name))
            else:
                unrunnable[(v.name, b.name)] = f"cannot run: {why}"  # grouped on output
    return pairs, unrunnable


def recommend(console: Console, base: SweepConfig, budgets_path: Path, objective: str, time_budget: str,
              threads: list[int] | None, write: Path) -> bool:
    """Search and report; True when a configuration meets every budget."""
    started = time.monotonic()
    lookup("objective", objective, OBJECTIVES)
    lookup("scenario", base.scenario, SCENARIOS)
    if (objective == "max-qps") != (base.scenario == "max-qps"):
        raise UserError("--objective max-qps and --scenario max-qps go together (the max-qps trials report it)")
    seconds = parse_duration(time_budget)
    budgets = load_budgets(budgets_path)
    sweep = Sweep(base, log=console.print)  # validates model, variants, backends, batch sizes, profile
    base = base.model_copy(update={"preset": sweep.preset, "batch_sizes": sweep.batch_sizes})
    thread_options = threads or sorted({1, sweep.threads})
    pairs, unrunnable = search_space(sweep)
    if not pairs:
        raise UserError("no variant x backend pair can run here: " + "; ".join(unrunnable.values()))
    out = Path(base.out) / f"recommend-{datetime.now():%Y%m%d-%H%M%S}-{sweep.family.name}-{sweep.preset}"
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"recommend: {len(pairs)} variant x backend pairs x batch {sweep.batch_sizes} x threads "
                  f"{thread_options}, objective {objective}, time budget {seconds:.0f} s; work in {out}",
                  soft_wrap=True, highlight=False)
    search = Search(base, budgets, objective, seconds, thread_options, out, console.print, started)
    result = search.run(pairs, sweep.batch_sizes)
    result.rejected.update(unrunnable)
    outcome = output.decide(result, budgets, objective)
    title = f"recommend {sweep.family.name}/{sweep.preset}: objective {objective}, budgets {budgets_path}"
    md = output.write_markdown(out / "recommendation.md", outcome, result, title)
    chart = output.draw_front(out / "pareto.png", outcome)
    _print(console, outcome, result.elapsed_s)
    (out / "recommendation.json").write_text(json.dumps({
        "chosen": outcome.chosen and output.config_for(base, outcome.chosen), "reasons": outcome.reasons,
        "closest_misses": outcome.misses, "rounds": result.rounds, "elapsed_s": result.elapsed_s,
        "pareto_front": [output.config_for(base, t) for t in outcome.front]}, indent=1))
    console.print(f"details: {md}" + (f"; Pareto chart: {chart}" if chart else ""), soft_wrap=True, highlight=False)
    if outcome.chosen is None:
        return False
    written = output.write_config(write, base, outcome.chosen, objective)
    console.print(f"[bold green]recommended[/]: {outcome.chosen.candidate.label()}; config: {written}",
                  soft_wrap=True, highlight=False)
    return True


def _print(console: Console, outcome: output.Outcome, elapsed: float) -> None:
    table = output.table(outcome, f"configurations measured ({elapsed:.0f} s), best first", limit=15)
    print_table(console, table.to_rich(), keys=table.keys)
    for line in outcome.reasons:
        console.print(f"  not chosen: {line}", soft_wrap=True, highlight=False)
    if outcome.chosen is None:
        console.print("[bold red]no configuration meets every budget[/]; closest misses:", highlight=False)
        for m in outcome.misses:
            console.print(f"  {m}", soft_wrap=True, highlight=False)
