"""`recbench compare RUN_A RUN_B`: match jobs across two runs, ratios B/A, and what changed by the one decision rule
(the ratio, CI and verdict of `recbench gate --baseline` at the threshold, read both ways: bench.stats.hboot)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure as MplFigure

from bench.gate.regression import decide
from bench.records.jobkey import FIELDS, JobKey
from bench.records.rundir import RunDir, replica_raws
from bench.records.schema import value_at
from bench.report import charts, explain
from bench.report.data import Run, env_summary, read_run
from bench.report.document import Bullets, Document, Facts, Section
from bench.report.tables import Table, identity_columns, num, with_ci
from bench.stats.hboot import FASTER, SLOWER, TOLERANCE, Estimate, ratio, reading

RATIOS = {"p50": "latency_ms.p50", "p99": "latency_ms.p99", "throughput": "throughput_sps",
          "peak_rss": "peak_rss_bytes", "model_bytes": "model_bytes"}


def verdict(test: Estimate | None, threshold: float, a: dict, b: dict) -> str:
    """B vs A at a tolerated change of ±threshold: slower (the whole CI beyond 1+T), faster (below 1), no difference
    (inside ±T), not slower, inconclusive; recorded runs never call B slower on noise they cannot show (a side of
    one replica, a busy host: bench.gate.regression.decide). Not tested without raw latencies."""
    return "not tested" if test is None else reading(*decide(test, threshold, False, "", a, b))


@dataclass
class Pair:
    """One job measured in both runs."""

    a: dict
    b: dict
    tests: dict[str, Estimate]  # p50 / p99 ratios B/A from the replicas' raw latencies, where both sides have them
    threshold: float = TOLERANCE

    @property
    def ratios(self) -> dict[str, float | None]:
        """B / A of each RATIOS field from the records; None where A's is 0 or either is missing."""
        values = {k: (value_at(self.a, f), value_at(self.b, f)) for k, f in RATIOS.items()}
        return {k: b / a if a and b is not None else None for k, (a, b) in values.items()}

    def verdict_of(self, stat: str) -> str:
        return verdict(self.tests.get(stat), self.threshold, self.a, self.b)

    @property
    def verdict(self) -> str:
        return self.verdict_of("p50")

    def as_dict(self) -> dict:
        return {"job": JobKey.of(self.a).as_dict(), "job_id_a": self.a.get("job_id"),
                "job_id_b": self.b.get("job_id"), "ratios_b_over_a": self.ratios,
                "a": {k: value_at(self.a, f) for k, f in RATIOS.items()},
                "b": {k: value_at(self.b, f) for k, f in RATIOS.items()},
                "tests": {k: {"ratio": t.value, "ci": list(t.ci), "mde": t.mde, "replicas": t.replicas,
                              "verdict": self.verdict_of(k)} for k, t in self.tests.items()},
                "verdict": self.verdict}


@dataclass
class RunComparison:
    a: Run
    b: Run
    pairs: list[Pair]
    only_a: list[dict]
    only_b: list[dict]
    threshold: float = TOLERANCE

    def as_dict(self) -> dict:
        only = {f"only_in_{side}": [{**JobKey.of(r).as_dict(), "job_id": r.get("job_id")} for r in recs]
                for side, recs in (("a", self.only_a), ("b", self.only_b))}
        return {"a": str(self.a.path), "b": str(self.b.path), "matched_on": list(FIELDS), "threshold": self.threshold,
                "pairs": [p.as_dict() for p in self.pairs], **only}


def _tests(a: Run, b: Run, ra: dict, rb: dict) -> dict[str, Estimate]:
    """Runs made at different times: never paired (a one-replica side gets the between-process noise it cannot show)."""
    ga, gb = replica_raws(RunDir(a.path), ra), replica_raws(RunDir(b.path), rb)
    return {} if ga is None or gb is None else {stat: ratio(ga, gb, stat) for stat in ("p50", "p99")}


def compare_runs(path_a: Path, path_b: Path, allow_interrupted: bool = False,
                 across_targets: bool = False, threshold: float = TOLERANCE) -> RunComparison:
    """Match the ok jobs of two runs on their JobKey (preset and fleet target included: a tiny and an edge model,
    or two targets' jobs, never pair unless `across_targets`).

    An incomplete run (interrupted, killed) is no baseline A unless `allow_interrupted`."""
    a, b = read_run(path_a), read_run(path_b)
    RunDir(a.path).refuse_interrupted("baseline A", allow_interrupted)
    key = (lambda r: JobKey.of(r).across_targets()) if across_targets else JobKey.of
    by_a, by_b = ({key(r): r for r in run.ok} for run in (a, b))
    pairs = [Pair(ra, by_b[k], _tests(a, b, ra, by_b[k]), threshold) for k, ra in by_a.items() if k in by_b]
    return RunComparison(a, b, pairs, [r for k, r in by_a.items() if k not in by_b],
                         [r for k, r in by_b.items() if k not in by_a], threshold)


def _ratio_cell(value: float | None, test: Estimate | None = None) -> str:
    """The tested ratio with its CI (what the gate prints), else the records' ratio."""
    return with_ci(test.value, test.ci, ".3g") if test else with_ci(value, None, ".3g")


def ratios_table(cmp: RunComparison) -> Table:
    """Each matched job: A and B p50, ratios B/A with their CIs, verdict."""
    records = [p.a for p in cmp.pairs]
    ident = identity_columns(records)
    cols = [*ident, "batch", "p50 ms A → B", "p50 B/A [95% CI]", "p99 B/A [95% CI]", "thr B/A", "RSS B/A",
            "model B/A", "verdict"]
    table = Table(f"B / A — A: {cmp.a.run_id}, B: {cmp.b.run_id}", cols,
                  numeric=set(range(len(ident) + 1, len(cols) - 1)), keys=len(ident) + 1,
                  note="ratio < 1: lower in B (faster for latency, smaller for memory). p50/p99: the replicas' ratio "
                       "with its 95% CI (bootstrap of replicas, as `recbench gate --baseline`; a side measured in one "
                       "process gets an assumed between-process noise). The verdict (at p50, tolerated change "
                       f"±{cmp.threshold:.0%}): slower when the whole CI lies beyond +{cmp.threshold:.0%}, faster when "
                       f"it lies below 1, no difference inside ±{cmp.threshold:.0%}, else not slower / inconclusive.")
    for p in cmp.pairs:
        table.rows.append([str(p.a.get(f)) for f in ident] + [str(p.a.get("batch_size")),
                          f"{num(value_at(p.a, 'latency_ms.p50'))} → {num(value_at(p.b, 'latency_ms.p50'))}",
                          *(_ratio_cell(ratio, p.tests.get(k)) for k, ratio in p.ratios.items()),
                          (p.verdict, {FASTER: "green", SLOWER: "red"}.get(p.verdict, "dim"))])
    return table


def _labels(cmp: RunComparison) -> list[str]:
    """Each matched job's identity and batch size, as the chart and the op table name it."""
    ident = identity_columns([p.a for p in cmp.pairs])
    return [" · ".join(str(p.a.get(f)) for f in ident) + f" · b{p.a.get('batch_size')}" for p in cmp.pairs]


def op_changes(cmp: RunComparison) -> Table | None:
    """The op types that changed most per matched job where both runs have an operator profile."""
    items = [(label, RunDir(cmp.a.path).op_table(p.a), RunDir(cmp.b.path).op_table(p.b))
             for label, p in zip(_labels(cmp), cmp.pairs, strict=True)]
    return explain.op_changes_table(items, "Op types that changed most (B vs A)")


def one_side_table(cmp: RunComparison) -> Table | None:
    """Jobs measured (ok) in only one of the two runs."""
    rows = [(cmp.a.run_id, r) for r in cmp.only_a] + [(cmp.b.run_id, r) for r in cmp.only_b]
    if not rows:
        return None
    ident = identity_columns([r for _, r in rows])
    return Table("Jobs in one run only", ["only in", *ident, "batch"],
                 [[run_id] + [str(r.get(f)) for f in ident] + [str(r.get("batch_size"))] for run_id, r in rows],
                 keys=len(ident) + 1)


SETTINGS = ("preset", "threads", "timing")  # job settings outside the match key that change what a number means


def differences(cmp: RunComparison) -> Bullets:
    """Environment lines and job settings that differ between the runs: read the ratios with them in mind."""
    ea, eb = dict(env_summary(cmp.a.env)), dict(env_summary(cmp.b.env))
    items = [f"{k}: A {ea.get(k)} / B {eb.get(k)}" for k in ea if ea.get(k) != eb.get(k) and k != "versions"]
    va, vb = cmp.a.env.get("versions") or {}, cmp.b.env.get("versions") or {}
    items += [f"{pkg}: A {va.get(pkg) or '-'} / B {vb.get(pkg) or '-'}" for pkg in {**va, **vb}
              if va.get(pkg) != vb.get(pkg)]
    for field in SETTINGS:
        va, vb = ({json.dumps(r.get(field), sort_keys=True) for r in run.ok} for run in (cmp.a, cmp.b))
        if va != vb:
            items.append(f"{field}: A {', '.join(sorted(va))} / B {', '.join(sorted(vb))}")
    return Bullets("What differs between the two runs", items)


def ratio_chart(cmp: RunComparison) -> charts.Chart | None:
    """p50 and p99 ratios B/A per matched job with their CIs, on a log axis around 1."""
    if not cmp.pairs:
        return None
    labels = _labels(cmp)
    colours = {FASTER: "#1a7f37", SLOWER: "#cf222e"}
    with matplotlib.rc_context(charts.STYLE):
        fig = MplFigure(figsize=(10, 1.6 + 0.32 * len(cmp.pairs)), layout="constrained")
        fig.suptitle(f"B / A per job — A: {cmp.a.run_id}, B: {cmp.b.run_id}", fontweight="bold")
        axes = fig.subplots(1, 2, sharey=True)
        y = np.arange(len(cmp.pairs))
        for ax, stat in zip(axes, ("p50", "p99"), strict=True):
            for i, p in enumerate(cmp.pairs):
                t = p.tests.get(stat)
                value = t.value if t else p.ratios[stat]
                if value is None:
                    continue
                colour = colours.get(p.verdict_of(stat), "#57606a")
                err = [[value - t.ci[0]], [t.ci[1] - value]] if t else None
                ax.errorbar([value], [i], xerr=err, fmt="o", color=colour, capsize=3, label=labels[i])
            ax.axvline(1.0, color="black", linewidth=0.8)
            ax.set(xscale="log", xlabel=f"{stat} latency ratio B/A (log scale; < 1 = B faster)",
                   title=f"{stat} latency")
        axes[0].set_yticks(y, labels)
        axes[0].invert_yaxis()
    return charts.Chart("compare-latency-ratios", "Latency ratios B/A", fig,
                        "Bars: 95% CI of the ratio (bootstrap over replicas); green: faster (the CI "
                        f"below 1), red: slower by more than {cmp.threshold:.0%} (the whole CI beyond it).")


def write(cmp: RunComparison, markdown_file: Path | None = None, html_file: Path | None = None,
          out_dir: Path | None = None) -> list[Path]:
    """Write the comparison as Markdown and/or HTML (out_dir: both, plus the chart). Returns what was written."""
    if out_dir:
        markdown_file, html_file = markdown_file or out_dir / "compare.md", html_file or out_dir / "compare.html"
    if not (markdown_file or html_file):
        return []
    chart = ratio_chart(cmp)
    figure = chart.save(out_dir or (markdown_file or html_file).parent) if chart else None
    doc = Document(f"recbench compare: {cmp.a.run_id} → {cmp.b.run_id}",
                   f"A = {cmp.a.path}, B = {cmp.b.path}; {len(cmp.pairs)} matched jobs, "
                   f"{len(cmp.only_a)} only in A, {len(cmp.only_b)} only in B.")
    doc.add(Facts("Environment A", env_summary(cmp.a.env)), Facts("Environment B", env_summary(cmp.b.env)),
            differences(cmp), Section("Ratios B / A"), figure, ratios_table(cmp), op_changes(cmp),
            one_side_table(cmp))
    return ([figure.png, figure.svg] if figure else []) + doc.write(markdown_file, html_file)
