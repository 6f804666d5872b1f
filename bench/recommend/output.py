"""What `recommend` says: the choice, why not its neighbours, the Pareto front, the closest misses, the config."""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from bench.config.sweep import SweepConfig
from bench.gate.budgets import Budgets, rule_label
from bench.gate.evaluate import fmt_number, matches
from bench.recommend.judge import OBJECTIVES, Miss, metric_value, misses, pareto_front, quality_axis, rank_key, versus
from bench.recommend.trials import SearchResult, Trial
from bench.records.schema import value_at
from bench.report.tables import Table

SPEED_AXES = (("throughput_sps", True), ("latency_ms.p99", False), ("model_bytes", False))  # the front's, + quality


@dataclass
class Outcome:
    """The search read back: the chosen trial (None: nothing meets the budgets) and every candidate's latest."""

    chosen: Trial | None
    latest: list[Trial]  # one per candidate timed past the screen (or screened only), best first
    front: list[Trial]
    quality: str | None = None  # the quality metric of the front and the table (bench.recommend.judge.quality_axis)
    reasons: list[str] = field(default_factory=list)  # why not the others: reasons()
    misses: list[str] = field(default_factory=list)  # closest_misses()


def _latest(result: SearchResult) -> list[Trial]:
    """Every configuration's latest measurement, of the pairs that were not rejected."""
    return [t for t in result.latest().values() if t.record["status"] == "ok"
            and (t.candidate.variant, t.candidate.backend) not in result.rejected]


def judged(latest: list[Trial], result: SearchResult) -> list[Trial]:
    """What the pick is made from: the last stage's measurements (the final's full statistics when it ran)."""
    last = result.trials[-1].stage if result.trials else ""
    return [t for t in latest if t.stage == last] or latest


def decide(result: SearchResult, budgets: Budgets, objective: str) -> Outcome:
    latest = sorted(_latest(result), key=lambda t: rank_key(t.record, budgets, objective))
    chosen = next((t for t in judged(latest, result) if not misses(t.record, budgets)), None)
    axis = quality_axis(budgets, [t.record for t in latest])
    feasible = [t.record for t in latest if not misses(t.record, budgets)]
    ids = {id(r) for r in pareto_front(feasible, SPEED_AXES + ((axis,) if axis else ()))}
    outcome = Outcome(chosen, latest, [t for t in latest if id(t.record) in ids], axis and axis[0])
    outcome.reasons, outcome.misses = reasons(outcome, result, budgets, objective), closest_misses(result, budgets)
    return outcome


def _speed(record: dict) -> str:
    p50, p99 = (fmt_number(metric_value(record, f"latency_ms.{q}") or 0) for q in ("p50", "p99"))
    qps = record.get("max_qps") and f", max {record['max_qps']:,.0f} QPS within p99 {record['p99_budget_ms']:g} ms"
    return f"{record.get('throughput_sps') or 0:,.0f} samples/s, p50 {p50} ms, p99 {p99} ms{qps or ''}"


def _ratio(record: dict, chosen: dict, objective: str) -> str:
    path, larger = OBJECTIVES[objective]
    a, b = metric_value(record, path), metric_value(chosen, path)
    if not a or not b:
        return f"{path} not comparable"
    return f"{a / b:.2f}x the recommended {path}" if larger else f"{path} {a / b:.2f}x the recommended one"


def reasons(outcome: Outcome, result: SearchResult, budgets: Budgets, objective: str) -> list[str]:
    """One line per rejected neighbour of the recommendation, and per variant x backend the quality screen dropped."""
    lines = []
    screen = {(t.candidate.variant, t.candidate.backend): t.record for t in result.trials
              if t.stage == "screen" and t.record["status"] == "ok"}
    grouped: dict[str, list[str]] = {}  # reasons shared by many pairs (not tried, cannot run) on one line each
    for (variant, backend), why in result.rejected.items():
        if why.startswith(("not tried", "cannot run")):
            grouped.setdefault(why.split(":")[0], []).append(f"{variant} on {backend}")
            continue
        base, mine = screen.get(("fp32", backend)), screen.get((variant, backend))
        if base and mine and base.get("throughput_sps") and variant != "fp32":
            why = f"{mine['throughput_sps'] / base['throughput_sps']:.2f}x fp32's throughput but {why}"
        lines.append(f"{variant} on {backend}: {why}")
    hints = {"not tried": " (the time budget ran out during the quality screen: raise --time-budget)",
             "cannot run": " (no artifact this backend loads; `recbench variants` shows the matrix)"}
    lines += [f"{kind}{hints.get(kind, '')}: {', '.join(pairs)}" for kind, pairs in grouped.items()]
    if (chosen := outcome.chosen) is None:
        return lines
    same_stage = {t.stage: t.record for t in result.trials if t.candidate == chosen.candidate}
    for t in outcome.latest:  # the neighbours: configurations that differ from the chosen one in exactly one dimension
        if sum(a != b for a, b in zip(astuple(t.candidate), astuple(chosen.candidate), strict=True)) != 1:
            continue
        beside = same_stage.get(t.stage)  # measured side by side with the recommendation, in the same round
        why = "; ".join(m.describe() for m in misses(t.record, budgets))
        if not why:
            against = beside or chosen.record
            parts = [] if beside else ["not measured beside the recommendation"]
            parts += [_ratio(t.record, against, objective), versus(t.record, against, objective)]
            why = "; ".join(p for p in parts if p)
        lines.append(f"{t.candidate.label()}: {why} ({t.stage})")
    return lines


def _meeting(trials: list[Trial], rule, limit) -> list[Trial]:
    return [t for t in trials if matches(t.record, rule.select)
            and limit.holds(metric_value(t.record, limit.metric.path) or float("nan"))]


def closest_misses(result: SearchResult, budgets: Budgets) -> list[str]:
    """For every limit: the configuration that came closest to it, or how many met it, among the measurements the
    pick was made from; shorter ones that met it are counted apart (the full statistics did not confirm them)."""
    pool = judged(_latest(result), result)
    final = bool(pool) and pool[0].stage == "final"
    shorter = [t for t in result.trials if t.record["status"] == "ok" and all(t is not p for p in pool)]
    lines = []
    for i, rule in enumerate(budgets.rules):
        for limit in rule.limits.values():
            selected = [t for t in pool if matches(t.record, rule.select)]
            met, unconfirmed = _meeting(selected, rule, limit), _meeting(shorter, rule, limit) if final else []
            head = f"rule '{rule_label(rule, i)}' {limit.metric.path} {limit.text}:"
            if not selected:
                lines.append(f"{head} no configuration measured selects it")
            elif met:
                lines.append(f"{head} met by {len(met)} of {len(selected)} {'final ' * final}measurements, each of "
                             "which breaks another limit")
            else:
                best = min(selected, key=lambda t: Miss(limit, metric_value(t.record, limit.metric.path)).relative)
                miss = Miss(limit, metric_value(best.record, limit.metric.path))
                aside = f" (met in {len(unconfirmed)} shorter measurements, not in the final)" if unconfirmed else ""
                lines.append(f"{head} closest miss {miss.describe().split(' breaks ')[0]} "
                             f"({best.candidate.label()}), {miss.relative:+.0%} past the limit{aside}")
    return lines


def config_for(base: SweepConfig, t: Trial) -> dict:
    """A `recbench run --config` file that measures exactly this configuration (serving: with the load settings the
    trial found best, its batcher and client count)."""
    c, r = t.candidate, t.record
    found = {"batching": r.get("batching"), "concurrency": [r["concurrency"]] if r.get("concurrency") else None}
    opts = {**base.scenario_options.model_dump(mode="json", exclude_unset=True),
            **{k: v for k, v in found.items() if v}}
    cfg = {"model": base.model, "preset": base.preset, "variants": [c.variant], "backends": [c.backend],
           "batch_sizes": [c.batch_size], "threads": c.threads, "profile": base.profile,
           "scenario": base.scenario or "single-stream", "scenario_options": opts or None,
           "input_spec": str(Path(base.input_spec).resolve()) if base.input_spec else None}
    return {k: v for k, v in cfg.items() if v is not None}


def write_config(path: Path, base: SweepConfig, chosen: Trial, objective: str) -> Path:
    header = (f"# written by `recbench recommend` on {datetime.now():%Y-%m-%d %H:%M} (objective: {objective}).\n"
              f"# measured: {_speed(chosen.record)}\n# reproduce: recbench run --config {path.name}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(config_for(base, chosen), sort_keys=False))
    return path


def table(outcome: Outcome, title: str = "", limit: int | None = None) -> Table:
    """The `limit` best configurations' latest measurements (batch ... quality are numbers: never wrapped nor cut)."""
    rows = []
    for t in outcome.latest:
        r = t.record
        q = value_at(r, outcome.quality) if outcome.quality else None
        rows.append([t.candidate.variant, t.candidate.backend, str(t.candidate.batch_size), str(t.candidate.threads),
                     f"{r.get('throughput_sps') or 0:,.0f}", fmt_number(metric_value(r, "latency_ms.p50") or 0),
                     fmt_number(metric_value(r, "latency_ms.p99") or 0), f"{(r.get('model_bytes') or 0) / 1e6:.2f}",
                     "-" if q is None else f"{q:+.4f}", t.stage,
                     "chosen" if t is outcome.chosen else "front" if any(t is f for f in outcome.front) else ""])
    return Table(title, HEADER, rows[:limit], numeric=set(range(2, HEADER.index("stage"))), keys=4)


HEADER = ["variant", "backend", "batch", "threads", "samples/s", "p50 ms", "p99 ms", "model MB", "quality",
          "stage", ""]


def write_markdown(path: Path, outcome: Outcome, result: SearchResult, title: str) -> Path:
    md = [f"# {title}", "", f"searched {result.elapsed_s:.0f} s: " + "; ".join(result.rounds or ["screen only"]), ""]
    if outcome.chosen:
        md += [f"**recommended: {outcome.chosen.candidate.label()}** — {_speed(outcome.chosen.record)}", ""]
    else:
        md += ["**no configuration meets every budget**", "", *[f"- {m}" for m in outcome.misses], ""]
    md += ["## why not the others", "", *[f"- {line}" for line in outcome.reasons], "",
           f"## configurations (latest measurement; quality = {outcome.quality or 'none'})", "",
           table(outcome).to_markdown()]
    path.write_text("\n".join(md) + "\n")
    return path


def draw_front(path: Path, outcome: Outcome) -> Path | None:
    """p99 against throughput of every configuration timed; the Pareto front labelled, the choice starred."""
    from matplotlib.figure import Figure

    points = [(t, metric_value(t.record, "latency_ms.p99"), t.record.get("throughput_sps")) for t in outcome.latest]
    points = [(t, x, y) for t, x, y in points if x and y]
    if not points:
        return None
    fig = Figure(figsize=(8, 5), layout="tight")
    ax = fig.subplots()
    ax.scatter([x for _, x, _ in points], [y for _, _, y in points], s=18, color="0.6", label="measured")
    front = sorted((p for p in points if any(p[0] is f for f in outcome.front)), key=lambda p: p[1])
    if front:
        ax.scatter([x for _, x, _ in front], [y for _, _, y in front], s=36, color="tab:blue",
                   label="Pareto front (throughput, p99, size, quality)")
        for k, (t, x, y) in enumerate(front):
            ax.annotate(f"{t.candidate.variant}/{t.candidate.backend}/b{t.candidate.batch_size}/t{t.candidate.threads}",
                        (x, y), fontsize=7, xytext=(5, 8 if k % 2 else -10), textcoords="offset points")
    for _, x, y in (p for p in points if p[0] is outcome.chosen):
        ax.plot(x, y, "*", color="tab:red", markersize=16, label="recommended")
    ax.set(xscale="log", yscale="log", xlabel="p99 latency (ms)", ylabel="throughput (samples/s)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path)
    fig.savefig(path.with_suffix(".svg"))
    return path
