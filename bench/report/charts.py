"""The report's charts (matplotlib, no pyplot): each one is drawn only when the run holds its data."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.errors import UserError
from bench.recommend.judge import pareto_front
from bench.records.schema import value_at
from bench.report import document
from bench.report.data import BASELINE_VARIANT, Run, is_load, load_points, varying
from bench.report.tables import IDENTITY, is_ci
from bench.report.variant_ratio import speedup, speedup_reading
from bench.stats.hboot import FASTER, NO_DIFFERENCE, SLOWER, TOLERANCE

STYLE = {"font.size": 9, "axes.titlesize": 10, "figure.titlesize": 12, "axes.grid": True, "grid.alpha": 0.3,
         "svg.hashsalt": "recbench", "axes.spines.top": False, "axes.spines.right": False}
COLOURS = matplotlib.colormaps["tab10"].colors
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", ":", "-.")
CDF_POINTS = 2_000  # points per CDF line: enough for the eye, keeps the SVG small
MAX_PANELS = 12
MAX_SERIES = 8  # lines one panel can tell apart (4 line styles x distinct colours); more: one panel per backend
LEGEND_CHARS = 150  # characters of legend text that fit on one row of a WIDTH_IN-wide chart
WIDTH_IN = 11.0  # every chart as wide as the report's column, so none is scaled differently


class NoData(Exception):
    """The run lacks what a chart needs; the message says what."""


@dataclass
class Chart:
    name: str
    title: str
    figure: Figure | None = None
    caption: str = ""
    skipped: str = ""  # why the chart was not drawn

    def save(self, out_dir: Path) -> document.Figure:
        """Write the chart as PNG and SVG; returns it as a report block."""
        out_dir.mkdir(parents=True, exist_ok=True)
        block = document.Figure(self.title, out_dir / f"{self.name}.png", out_dir / f"{self.name}.svg", self.caption)
        with matplotlib.rc_context(STYLE):
            self.figure.savefig(block.png, dpi=110)
            self.figure.savefig(block.svg, metadata={"Date": None})
        return block


class Palette:
    """One colour per backend (and device), one marker/line style per variant, the same in every chart; panels of
    one backend colour their variants (`variant_colours`, tab20: 20 distinct colours)."""

    def __init__(self, records: list[dict]):
        self.fields = varying(records, IDENTITY) or ["backend"]
        engines = _unique(_engine(r) for r in records)
        variants = _unique(r.get("variant") for r in records)
        self.colours = {e: COLOURS[i % len(COLOURS)] for i, e in enumerate(engines)}
        tab20 = matplotlib.colormaps["tab20"].colors
        self.variant_colours = {v: tab20[(2 * i) % 20 + (i // 10) % 2] for i, v in enumerate(variants)}
        self.markers = {v: MARKERS[i % len(MARKERS)] for i, v in enumerate(variants)}
        self.lines = {v: LINESTYLES[i % len(LINESTYLES)] for i, v in enumerate(variants)}

    def within(self, records: list[dict]) -> Palette:
        """The same colours and markers, labelled by what varies among these records only."""
        pal = copy.copy(self)
        pal.fields = varying(records, IDENTITY) or ["backend"]
        return pal

    def label(self, r: dict) -> str:
        return " · ".join(str(r.get(f)) for f in self.fields)

    def job(self, r: dict) -> str:
        """The series label and the batch size: one job."""
        return f"{self.label(r)} · b{r.get('batch_size')}"

    def style(self, r: dict) -> dict:
        return {"color": self.colours[_engine(r)], "marker": self.markers[r.get("variant")],
                "linestyle": self.lines[r.get("variant")]}


def _engine(r: dict) -> str:
    return f"{r.get('backend')} ({r.get('device')})" if r.get("device") not in (None, "cpu") else str(r.get("backend"))


def _unique(items: Iterable) -> list:
    return list(dict.fromkeys(items))


def groups(records: Iterable[dict], key: Callable[[dict], object]) -> dict:
    out: dict = {}
    for r in records:
        out.setdefault(key(r), []).append(r)
    return out


def _figure(title: str, panels: int = 1, cols: int = 3, height: float = 3.6) -> tuple[Figure, list]:
    cols = min(cols, panels)
    rows = -(-panels // cols)
    fig = Figure(figsize=(WIDTH_IN, height * rows + 1.0), layout="constrained")
    fig.suptitle(title, fontweight="bold")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, list(axes[:panels])


def _legend(fig: Figure, axes: list, extra: list | None = None) -> None:
    handles: dict = {}  # each label once, from the first axes that has it
    for h in [h for ax in axes for h in ax.get_legend_handles_labels()[0]] + (extra or []):
        handles.setdefault(h.get_label(), h)
    if handles:
        per_row = max(1, LEGEND_CHARS // (max(len(label) for label in handles) + 8))
        fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                   ncol=min(len(handles), per_row, 5), frameon=False)


def closed_loop(run: Run) -> list[dict]:
    """Ok records measured back to back (not under load) with latency percentiles."""
    return [r for r in run.ok if not is_load(r) and value_at(r, "latency_ms.p50") is not None]


def latency_cdf(run: Run, pal: Palette, reference: str | None) -> tuple[Figure, str]:
    recs = [r for r in run.ok if run.raw_ms(r) is not None]
    if not recs:
        raise NoData("no raw per-iteration latencies (raw/*.npy) in the run")
    pal = pal.within(recs)
    panels = groups(recs, lambda r: (r.get("scenario"), r.get("batch_size")))
    by_engine = max(len(rs) for rs in panels.values()) > MAX_SERIES  # too many lines to tell apart: facet
    if by_engine:
        panels = groups(recs, lambda r: (r.get("scenario"), r.get("batch_size"), _engine(r)))
        pal = pal.within([{**r, "backend": None, "device": None} for r in recs])
    keys = sorted(panels, key=lambda k: (str(k[0]), k[1] or 0, *k[2:]))[:MAX_PANELS]
    many_scenarios = len({k[0] for k in keys}) > 1
    fig, axes = _figure("Latency distribution per " + ("variant and backend" if by_engine else "backend") + " (CDF)",
                        len(keys))
    for ax, key in zip(axes, keys, strict=True):
        for r in panels[key]:
            ms = np.sort(run.raw_ms(r))
            idx = np.unique(np.linspace(0, len(ms) - 1, min(len(ms), CDF_POINTS)).astype(int))
            colour = pal.variant_colours[r.get("variant")] if by_engine else pal.style(r)["color"]
            ax.plot(ms[idx], (idx + 1) / len(ms), drawstyle="steps-post", color=colour,
                    linestyle=pal.lines[r.get("variant")], label=pal.label(r))
            for q, marker in ((50, "o"), (99, "D")):
                value = value_at(r, f"latency_ms.p{q}")  # null where the job had too few samples for it
                if value is not None:
                    ax.plot([value], [q / 100], marker, color=colour, label=f"_p{q}")
        for q in (0.5, 0.99):
            ax.axhline(q, color="grey", linewidth=0.6, linestyle=":")
        ax.set(xscale="log", ylim=(0, 1.02), xlabel="latency per request (ms, log scale)",
               ylabel="fraction of requests ≤ latency", title=(f"{key[0]}, " if many_scenarios else "")
               + f"batch {key[1]}" + (f", {key[2]}" if by_engine else ""))
    _legend(fig, axes, [Line2D([], [], marker=marker, color="black", linestyle="none", label=label)
                        for marker, label in (("o", "p50"), ("D", "p99"))])
    skipped = len(panels) - len(keys)
    return fig, ("Each line is every measured iteration of one job; dots mark p50, diamonds p99."
                 + (" One panel per backend: the run has too many series for one panel." if by_engine else "")
                 + (f" {skipped} more panels not drawn (at most {MAX_PANELS})." if skipped else ""))


def _per_batch_lines(run: Run, pal: Palette, reference: str | None, title: str, metrics: list[tuple[str, str, str]],
                     caption: str) -> tuple[Figure, str]:
    """One panel per metric (field, ci field, y label), one line per series over batch size (log scales)."""
    recs = [r for r in closed_loop(run) if value_at(r, metrics[0][0]) is not None]
    batches = sorted({r["batch_size"] for r in recs if r.get("batch_size")})
    if not recs:
        raise NoData("no records measured back to back (single-stream / offline)")
    if len(batches) < 2:
        raise NoData(f"needs at least 2 batch sizes (the run has {len(batches)})")
    pal = pal.within(recs)
    fig, axes = _figure(title, len(metrics), cols=2, height=4.0 if len(metrics) > 1 else 3.2)
    series = groups(sorted(recs, key=lambda r: r["batch_size"]), pal.label)
    for ax, (field, ci_field, ylabel) in zip(axes, metrics, strict=True):
        for label, rs in series.items():
            rs = [r for r in rs if value_at(r, field) is not None]  # a percentile too few samples back is null
            if not rs:
                continue
            st = pal.style(rs[0])
            ax.plot([r["batch_size"] for r in rs], [value_at(r, field) for r in rs], label=label, **st)
            bars = [r for r in rs if is_ci(value_at(r, ci_field))]  # the points whose 95% CI is recorded
            if bars:
                y = np.array([value_at(r, field) for r in bars])
                err = np.abs(np.array([value_at(r, ci_field) for r in bars]).T - y)
                ax.errorbar([r["batch_size"] for r in bars], y, yerr=err, fmt="none", ecolor=st["color"], capsize=3,
                            alpha=0.7)
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.minorticks_off()
        ax.set(xlabel="batch size (samples per request)", yscale="log", ylabel=ylabel,
               title=ylabel.split(" (")[0] if len(metrics) > 1 else "")
    _legend(fig, axes)
    return fig, caption


def latency_vs_load(run: Run, pal: Palette, reference: str | None) -> tuple[Figure, str]:
    recs = [r for r in run.ok if load_points(r)]
    if not recs:
        raise NoData("no server / concurrency / max-qps records")
    pal = pal.within(recs)
    batches = _unique(r.get("batch_size") for r in recs)
    fig, (ax,) = _figure("Latency vs achieved throughput under load", 1, height=4.4)
    xs_all = [p["samples_per_s"] for r in recs for p in load_points(r)]
    for r in recs:
        pts = sorted(load_points(r), key=lambda p: p["offered"])  # in the order the load was raised
        colour = pal.style(r)["color"]
        marker = MARKERS[batches.index(r.get("batch_size")) % len(MARKERS)]  # batch sizes told apart by marker
        xs = [p["samples_per_s"] for p in pts]
        ax.plot(xs, [p["p99"] for p in pts], color=colour, marker=marker,
                label=pal.job(r) if len(batches) > 1 else pal.label(r))
        if all(p["p50"] is not None for p in pts):
            ax.plot(xs, [p["p50"] for p in pts], color=colour, marker=marker, linestyle="--", alpha=0.6, label="_p50")
        for x, p in zip(xs, pts, strict=True):
            if p["clients"] is not None:
                ax.annotate(f"{p['clients']}", (x, p["p99"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    log_x = max(xs_all) > 20 * min(xs_all)
    ax.set(yscale="log", xscale="log" if log_x else "linear", ylabel="latency (ms, log scale)",
           xlabel="achieved throughput (samples/s" + (", log scale)" if log_x else ")"))
    marks = [Line2D([], [], color="black", label="p99"), Line2D([], [], color="black", linestyle="--", label="p50")]
    _legend(fig, [ax], marks)
    return fig, ("Each point is one offered load: a QPS target (server, max-qps; latency counts from the scheduled "
                 "arrival) or a number of concurrent clients (the number beside the point).")


def quality_pareto(run: Run, pal: Palette, reference: str | None) -> tuple[Figure, str]:
    recs = [r for r in closed_loop(run)
            if value_at(r, "quality.auc_delta") is not None and value_at(r, "latency_ms.p99")]
    by_batch = groups(recs, lambda r: r.get("batch_size"))
    batches = sorted(b for b, rs in by_batch.items() if len({r.get("variant") for r in rs}) >= 2)
    if not batches:
        raise NoData("needs at least 2 variants with measured quality at one batch size")
    recs = by_batch[batches[0]]
    pal = pal.within(recs)
    pts = [(value_at(r, "latency_ms.p99"), value_at(r, "quality.auc_delta")) for r in recs]
    on_front = {id(r) for r in pareto_front(recs, (("latency_ms.p99", False), ("quality.auc_delta", True)))}
    front = [i for i, r in enumerate(recs) if id(r) in on_front]
    fig, (ax,) = _figure(f"Quality vs latency of the variants (batch {batches[0]})", 1, height=4.6)
    for i, r in enumerate(recs):
        (x, y), st, top = pts[i], pal.style(r), i in front
        ax.scatter(x, y, color=st["color"], marker=st["marker"], s=70 if top else 35, alpha=1 if top else 0.55,
                   edgecolors="black" if top else "none", label=pal.label(r), zorder=3)
        ci = value_at(r, "latency_ci_ms.p99")
        if ci:
            ax.errorbar(x, y, xerr=[[max(x - ci[0], 0)], [max(ci[1] - x, 0)]], color=st["color"], linewidth=0.8,
                        capsize=2, zorder=2)
        if top or len(recs) <= MAX_SERIES:  # many points: name the front only (the legend names the rest)
            # ' (= fp32)' when its p99 is no different from fp32's on the same backend (the CI inside ±5%)
            base = next((b for b in recs if b.get("variant") == BASELINE_VARIANT and _engine(b) == _engine(r)), r)
            up = None if base is r else speedup(run.path, base, r, "p99")
            same = f" (= {BASELINE_VARIANT})" if up is not None and speedup_reading(up) == NO_DIFFERENCE else ""
            ax.annotate(f"{r.get('variant')}{same}", (x, y), textcoords="offset points",
                        fontsize=7, xytext=(5, -10 if top and front.index(i) % 2 else 4))  # front labels alternate
    fx, fy = zip(*sorted(pts[i] for i in front), strict=True)
    ax.plot(fx, fy, drawstyle="steps-post", color="black", linewidth=1.6, label="Pareto front", zorder=2)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xscale="log", xlabel="p99 latency (ms per request, log scale)",
           ylabel=f"AUC delta vs {BASELINE_VARIANT} (higher is better)")
    _legend(fig, [ax])
    return fig, ("Outlined points are on the front: no other variant/backend is both faster at p99 and more accurate. "
                 f"Bars: the p99's 95% CI; '(= {BASELINE_VARIANT})': the p99 ratio to {BASELINE_VARIANT} on the same "
                 f"backend has its whole CI inside ±{TOLERANCE:.0%} (no difference).")


def memory(run: Run, pal: Palette, reference: str | None) -> tuple[Figure, str]:
    rss = ("footprint_bytes", "footprint (runtime + model + inference)") \
        if any(r.get("footprint_bytes") for r in run.ok) else ("peak_rss_bytes", "peak RSS")
    metrics = [(f, t) for f, t in (rss, ("model_bytes", "model artifact size"), ("gpu_mem_bytes", "GPU memory"))
               if any(r.get(f) for r in run.ok)]
    if not metrics:
        raise NoData("no memory fields (peak_rss_bytes, model_bytes, gpu_mem_bytes) in the records")
    variants, engines = _unique(r.get("variant") for r in run.ok), _unique(_engine(r) for r in run.ok)
    many = len(variants) > 6  # one wide panel per metric, rotated names, no bar labels: they would collide
    fig, axes = _figure("Memory per variant and backend", len(metrics), cols=1 if many else 3, height=4.0)
    width = min(0.8 / len(engines), 0.25)
    for ax, (field, title) in zip(axes, metrics, strict=True):
        for j, engine in enumerate(engines):
            vals = [max((r[field] for r in run.ok if r.get("variant") == v and _engine(r) == engine and r.get(field)),
                        default=0) / 2**20 for v in variants]
            bars = ax.bar(np.arange(len(variants)) + (j - (len(engines) - 1) / 2) * width, vals, width,
                          color=pal.colours[engine], label=engine)
            if len(variants) * len(engines) <= 24:
                ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
        ax.set_xticks(np.arange(len(variants)), variants, rotation=90 if many else 0)
        ax.set(xlabel="variant", ylabel=f"{title} (MiB)", title=title)
    _legend(fig, axes)
    return fig, ("Largest value over the job's batch sizes and scenarios; the footprint is what serving the model adds "
                 "to a process (RSS high-water mark growth over loading and measuring, not the harness nor quality "
                 "scoring), peak RSS where older records lack it.")


def pick_reference(run: Run, reference: str | None) -> str | None:
    """The backend whose fp32 p50 is the speedup baseline: the one asked for, else torch-cpu, else the first."""
    baseline = _unique(_engine(r) for r in closed_loop(run) if r.get("variant") == BASELINE_VARIANT)
    if reference and reference not in baseline:
        raise UserError(f"--reference-backend {reference}: the run has no {BASELINE_VARIANT} measurement on it; "
                        f"valid: {', '.join(baseline) or 'none (no fp32 records)'}")
    return reference or ("torch-cpu" if "torch-cpu" in baseline else next(iter(baseline), None))


def speedup_heatmap(run: Run, pal: Palette, reference: str | None) -> tuple[Figure, str]:
    recs = closed_loop(run)
    ref = pick_reference(run, reference)
    if ref is None:
        raise NoData(f"no {BASELINE_VARIANT} record measured back to back (single-stream / offline) to compare against")
    variants, engines = _unique(r["variant"] for r in recs), _unique(_engine(r) for r in recs)
    if len(variants) * len(engines) < 2:
        raise NoData("needs at least 2 variant x backend cells")
    cells = {(r.get("scenario"), r["batch_size"], r["variant"], _engine(r)): r for r in recs}
    panels = sorted({(s, b) for s, b, v, e in cells if v == BASELINE_VARIANT and e == ref}, key=lambda k: k[1])[:4]
    fig, axes = _figure(f"Speedup vs {BASELINE_VARIANT} on {ref} (p50 latency)", len(panels),
                        cols=2 if len(engines) > 2 or len(variants) > 6 else 3, height=1.6 + 0.6 * len(variants))
    for ax, (scenario, batch) in zip(axes, panels, strict=True):
        base = cells[(scenario, batch, BASELINE_VARIANT, ref)]
        # the cell's speedup over the baseline with its CI (from the replicas), None where it was not measured
        ups = [[None if (rec := cells.get((scenario, batch, v, e))) is None else speedup(run.path, base, rec)
                for e in engines] for v in variants]
        # only a decided change is coloured; no difference, not slower, inconclusive: neutral, never a bare ratio
        said = [[u and speedup_reading(u) for u in row] for row in ups]
        grid = np.array([[np.nan if u is None else u.value if w in (FASTER, SLOWER) else 1.0
                          for u, w in zip(row, words, strict=True)] for row, words in zip(ups, said, strict=True)])
        ax.imshow(np.log2(grid), cmap="RdYlGn", norm=TwoSlopeNorm(vcenter=0, vmin=-3, vmax=3), aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            u = ups[i][j]
            dark = not np.isnan(value) and abs(np.log2(value)) > 1.8  # saturated colours need white text
            text = "n/a" if u is None else "1 (ref.)" if (variants[i], engines[j]) == (BASELINE_VARIANT, ref) else \
                f"{u.value:.2f}×\n[{u.ci[0]:.2f}, {u.ci[1]:.2f}]" if said[i][j] in (FASTER, SLOWER) else \
                f"{said[i][j]}\n[{u.ci[0]:.2f}, {u.ci[1]:.2f}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
        ax.set_xticks(range(len(engines)), engines, rotation=30 if len(engines) > 2 else 0, ha="right"
                      if len(engines) > 2 else "center")
        ax.set_yticks(range(len(variants)), variants)
        ax.set(xlabel="backend", ylabel="variant", title=f"batch {batch}")
        ax.grid(False)
    return fig, (f"Cell = p50 of {BASELINE_VARIANT} on {ref} / p50 of the cell at the same batch size, with its 95% CI "
                 "from replicas interleaved with the baseline's (bootstrap over pairs), read by the gate's rule at "
                 f"±{TOLERANCE:.0%}: coloured only where decided (green: faster, the CI above 1; red: slower by more "
                 f"than {TOLERANCE:.0%}); 'no difference' where the CI lies inside ±{TOLERANCE:.0%}, else 'not slower' "
                 "or 'inconclusive'.")


CHARTS: list[tuple[str, str, Callable]] = [
    ("latency-cdf", "Latency distribution", latency_cdf),
    ("latency-vs-batch", "Latency vs batch size", partial(_per_batch_lines, title="Latency vs batch size", metrics=[
        ("latency_ms.p50", "latency_ci_ms.p50", "p50 latency (ms per request, log scale)"),
        ("latency_ms.p99", "latency_ci_ms.p99", "p99 latency (ms per request, log scale)")],
        caption="One line per backend (and variant); error bars are 95% CIs where recorded.")),
    ("throughput-vs-batch", "Throughput vs batch size", partial(
        _per_batch_lines, title="Throughput vs batch size",
        metrics=[("throughput_sps", "throughput_ci_sps", "throughput (samples/s, log scale)")],
        caption="Samples over the wall time of the measured phase; error bars are 95% CIs where recorded.")),
    ("latency-vs-load", "Latency under load", latency_vs_load),
    ("quality-vs-latency", "Quality vs latency (Pareto front)", quality_pareto),
    ("memory", "Memory", memory),
    ("speedup", "Speedup heatmap", speedup_heatmap),
]


def draw_all(run: Run, reference: str | None = None, charts: list | None = None) -> list[Chart]:
    """Every chart of `charts` (default CHARTS) the run has data for; the others come back with `skipped` saying why."""
    pal = Palette(run.ok)
    out = []
    with matplotlib.rc_context(STYLE):
        for name, title, draw in charts or CHARTS:
            try:
                fig, caption = draw(run, pal, reference)
            except NoData as e:
                out.append(Chart(name, title, skipped=str(e)))
            else:
                out.append(Chart(name, title, fig, caption))
    return out
