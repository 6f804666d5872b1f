"""A metric's trend across the runs in the history database: a table and a matplotlib chart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.errors import UserError
from bench.gate.evaluate import fmt_number, matches
from bench.gate.history import change_points
from bench.gate.metrics import get_metric
from bench.records.history import History, machine_id
from bench.records.schema import value_at
from bench.report.tables import print_table

SERIES = ["variant", "backend", "scenario", "batch_size", "target"]  # target: a fleet target's, "-" for a local run


def trend(history: History, select: dict, metric: str, machine: str | None = None) -> pd.DataFrame:
    """One row per (run, job) of the ok records matching `select`: the run, its job identity, the metric, the gate."""
    try:
        get_metric(metric)
    except ValueError as e:
        raise UserError(f"--metric: {e}") from None
    gates = {run_id: "pass" if passed else "fail" for run_id, passed in history.gate_status().items()}
    rows = [{"run_id": run["run_id"], "started_at": run["started_at"], "git": run["git_revision"],
             "machine": machine_id(json.loads(run["env"] or "{}")), **{k: rec.get(k) for k in SERIES},
             "target": rec.get("target") or "-", metric: value_at(rec, metric), "gate": gates.get(run["run_id"], "-")}
            for run, rec in history.records(machine) if rec.get("status") == "ok" and matches(rec, select)]
    return pd.DataFrame(rows, columns=["run_id", "started_at", "git", "machine", *SERIES, metric, "gate"])


def chart_name(metric: str, select: dict) -> str:
    """history-<metric>[-<field>-<value>...].png: a filtered chart never overwrites the unfiltered one."""
    parts = [metric, *(f"{k}-{v}" for k, v in sorted(select.items()))]
    return "history-" + re.sub(r"[^A-Za-z0-9._+-]+", "_", "-".join(str(p) for p in parts)) + ".png"


def changes(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each series' change points: the run where its new level starts, its git revision, magnitude and confidence."""
    columns = ["run_id", "started_at", "git", "machine", *SERIES]
    rows = [{**group.iloc[i][columns].to_dict(), "magnitude": m, "confidence": 1 - p, "p": p}
            for _, group in df.dropna(subset=[metric]).groupby(["machine", *SERIES], sort=True, dropna=False)
            for i, m, p in change_points(group[metric].tolist())]
    return pd.DataFrame(rows, columns=[*columns, "magnitude", "confidence", "p"])


def chart(df: pd.DataFrame, metric: str, path: Path, cps: pd.DataFrame | None = None) -> Path:
    """One line per (variant, backend, scenario, batch, target) over run start time; failed gates marked with a red x,
    change points with a dashed vertical line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    ax = fig.subplots()
    times = pd.to_datetime(df["started_at"], utc=True, format="ISO8601")
    failed_label = "gate failed"
    for (variant, backend, scenario, batch, target), group in df.assign(t=times).groupby(SERIES, sort=True):
        where = "" if target == "-" else f" {target}"
        ax.plot(group["t"], group[metric], marker="o", label=f"{variant} {backend} {scenario} b{batch}{where}")
        failed = group[group["gate"] == "fail"]
        if len(failed):
            ax.scatter(failed["t"], failed[metric], marker="x", s=80, color="red", zorder=3, label=failed_label)
            failed_label = None
    for i, t in enumerate(pd.to_datetime(cps["started_at"], utc=True, format="ISO8601") if cps is not None else []):
        ax.axvline(t, color="purple", linestyle="--", alpha=0.6, label=None if i else "change point")
    unit = get_metric(metric).unit
    ax.set(xlabel="run start (UTC)", ylabel=f"{metric} [{unit}]" if unit else metric, title=f"{metric} across runs")
    if times.nunique() == 1:  # one run: a day around it, not matplotlib's default five years
        ax.set_xlim(times.iloc[0] - pd.Timedelta(hours=12), times.iloc[0] + pd.Timedelta(hours=12))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), ncol=1 + len(ax.get_lines()) // 20)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def show_trend(console: Console, history: History, select: dict, metric: str, last: int, chart_path: Path,
               find_changes: bool = False, machine: str | None = None) -> None:
    """Print the newest `last` runs' values of `metric` as a table and draw the chart (with the change points found
    over the whole series)."""
    df = trend(history, select, metric, machine)
    cps = changes(df, metric) if find_changes else None
    runs = list(dict.fromkeys(df["run_id"]))[-last:]
    df = df[df["run_id"].isin(runs)]
    if df.empty:
        console.print(f"no ok records match {select or 'anything'} in {history.path}", highlight=False)
        return
    same = [c for c in ("machine", "target") if df[c].nunique() == 1]  # one value in every row: said once, above
    where = "".join(f", {c} {df[c].iloc[0]}" for c in same)
    table = Table(title=f"{metric} across {len(runs)} runs{where}", header_style="bold")
    for name in df.drop(columns=same).columns:  # ids, numbers and timestamps are never wrapped nor cut
        table.add_column(name, no_wrap=name in ("run_id", "started_at", "batch_size", metric),
                         justify="right" if name in ("batch_size", metric) else "left")
    for row in df.drop(columns=same).itertuples(index=False):
        table.add_row(*(Text("-" if v is None else fmt_number(v) if isinstance(v, float) else str(v)) for v in row))
    print_table(console, table)
    if cps is not None:  # pandas' text: a run id is never folded
        text = cps.to_string(index=False, float_format="{:.4g}".format)
        console.print(f"{len(cps)} change points in {metric}:\n{text}", highlight=False, soft_wrap=True)
    cps = None if cps is None else cps[cps["run_id"].isin(runs)]
    console.print(f"chart: {chart(df, metric, chart_path, cps)}", highlight=False)
