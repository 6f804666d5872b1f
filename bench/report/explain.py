"""Report parts that explain the numbers: time by op type, top nodes, the roofline, energy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from bench.records.rundir import RunDir
from bench.report.charts import NoData, Palette, _figure, _legend, _unique
from bench.report.data import BASELINE_VARIANT, Run
from bench.report.tables import Table, num

MAX_JOBS = 40
OP_COLOURS = colormaps["tab20"].colors


def profiled(run: Run) -> list[dict]:
    return [r for r in run.ok if (r.get("op_profile") or {}).get("top")][:MAX_JOBS]


def op_breakdown(run: Run, pal: Palette, reference: str | None) -> tuple[Figure, str]:
    """One stacked bar per job: share of the measured mean iteration per op type, then what no op accounts for."""
    recs = profiled(run)
    if not recs:
        raise NoData("no operator profiles in the records (run with --op-profile)")
    types = _unique(t["op_type"] for r in recs for t in r["op_profile"]["top"])
    fig, (ax,) = _figure("Where the time goes: share of the measured iteration by op type", 1,
                         height=1.2 + 0.38 * len(recs))
    y = np.arange(len(recs))
    left = np.zeros(len(recs))
    for i, t in enumerate(types):  # past tab20's colours, hatched
        shares = np.array([next((x["share"] or 0.0 for x in r["op_profile"]["top"] if x["op_type"] == t), 0.0)
                           for r in recs])
        ax.barh(y, shares * 100, left=left * 100, color=OP_COLOURS[i % len(OP_COLOURS)],
                hatch="//" if i >= len(OP_COLOURS) else None, label=t, edgecolor="white")
        left += shares
    ax.barh(y, np.clip(1 - left, 0, None) * 100, left=left * 100, color="#dddddd",
            label="not in any op (framework overhead)")
    ax.axvline(100, color="black", linewidth=0.8)
    ax.set_yticks(y, [pal.job(r) for r in recs])
    ax.invert_yaxis()
    ax.set_xlabel("% of the measured mean iteration time (op times from the runtime's profiler, separate pass)")
    _legend(fig, [ax])
    return fig, ("Each op type's time per iteration in the profiled pass over the mean iteration of the timed phase; "
                 "bars past 100% mean the profiler's own cost (or load) inflated the ops.")


def roofline(run: Run, pal: Palette, reference: str | None) -> tuple[Figure, str]:
    """Jobs as points (FLOPs per byte, achieved GFLOP/s) under this machine's measured roofs."""
    peaks = run.env.get("machine")
    if not peaks:
        raise NoData("no machine peaks in env.json: run `recbench machine` once on this machine before the run")
    recs = [r for r in run.ok if r.get("achieved_gflops") and r.get("bytes_per_sample")]
    if not recs:
        raise NoData("no record has both achieved_gflops and bytes_per_sample")
    fig, (ax,) = _figure("Roofline (measured peaks of this machine)", 1, height=5.0)
    intensity = [r["flops_per_sample"] / r["bytes_per_sample"] for r in recs]
    x = np.geomspace(min(intensity) / 4, max(intensity) * 4, 200)
    for key, label, style in (("fp32_gemm_gflops", "fp32 GEMM peak", "-"), ("int8_gemm_gops", "int8 GEMM peak", "--")):
        if peaks.get(key):
            ax.axhline(peaks[key], color="black", linestyle=style, linewidth=1, label=f"{label} {peaks[key]:.0f}")
    for key, label, c in (("triad_gbps", "memory (STREAM triad)", "#555"), ("gather_gbps", "Zipf gather", "#999")):
        if peaks.get(key):
            ax.plot(x, peaks[key] * x, color=c, linestyle=":", label=f"{label} {peaks[key]:.1f} GB/s")
    for r, i in zip(recs, intensity, strict=True):
        style = pal.style(r)
        ax.scatter([i], [r["achieved_gflops"]], color=style["color"], marker=style["marker"], s=40,
                   label=pal.label(r), zorder=3)
        ax.annotate(f"b{r.get('batch_size')}", (i, r["achieved_gflops"]), fontsize=7, xytext=(4, 2),
                    textcoords="offset points")
    ax.set(xscale="log", yscale="log", ylabel="achieved GFLOP/s",
           xlabel="operational intensity (FLOPs per byte read: embedding rows + weights once per batch)")
    _legend(fig, [ax])
    return fig, (f"Peaks measured by `recbench machine` on {peaks.get('threads')} threads "
                 f"({peaks.get('measured_at')}); each record's `bound` names the roof it is closest to, or overhead "
                 "when under 10% of all.")


CHARTS: list[tuple[str, str, Callable]] = [
    ("op-breakdown", "Time by op type", op_breakdown),
    ("roofline", "Roofline", roofline),
]


def top_nodes_table(run: Run, per_job: int = 5) -> Table | None:
    """The nodes that take the most time in each profiled job (from ops/<job>.json)."""
    pal = Palette(run.ok)
    rows = [[pal.job(r), n["node"][:70], n["op_type"], n.get("kernel", "-"), num(n["ms_per_iter"]),
             num(n["share"], ".1%")]
            for r in profiled(run) for n in (RunDir(run.path).op_table(r) or {}).get("nodes", [])[:per_job]]
    if not rows:
        return None
    return Table("Top nodes per job (operator profile)", ["job", "node", "op type", "kernel", "ms/iter", "share"],
                 rows, numeric={4, 5}, note="share: of the measured mean iteration time of the timed phase")


def explain_table(run: Run) -> Table | None:
    """Roofline position, op-profile coverage and energy per job."""
    pal = Palette(run.ok)
    recs = [r for r in run.ok if r.get("bytes_per_sample") or r.get("op_profile") or r.get("power_source")]
    if not recs:
        return None
    rows = []
    for r in recs:
        prof = r.get("op_profile") or {}
        energy = num(r.get("joules_per_1k_samples")) if r.get("energy_j") is not None else r.get("power_source", "-")
        rows.append([pal.job(r), *(num(r.get(f), ".3g") for f in ("flops_per_sample", "bytes_per_sample",
                                                                   "achieved_gflops", "achieved_gbps")),
                     num(r.get("fraction_of_peak"), ".1%"), str(r.get("bound") or "-"),
                     num(prof.get("share_sum"), ".0%") if prof.get("share_sum") is not None else prof.get("error", "-"),
                     num(r.get("avg_watts"), ".1f"), str(energy)])
    cols = ["job", "FLOPs/sample", "bytes/sample", "GFLOP/s", "GB/s", "of peak", "bound", "ops cover", "W",
            "J/1k samples"]
    return Table("Explained: roofline, operator coverage, energy", cols, rows, numeric={1, 2, 3, 4, 5, 7, 8, 9},
                 note="ops cover: the op profile's time per iteration over the measured mean iteration")


def op_changes_table(items: list[tuple[str, dict, dict]], title: str, top: int = 3) -> Table | None:
    """Per (job label, op table A, op table B) with both tables: the op types whose time changed most, B vs A."""
    rows = [[label, c["op_type"], num(c["a_ms"]), num(c["b_ms"]), num(c["delta_ms"], "+.4g"),
             num(c["ratio"], ".3g") if c["ratio"] is not None else ("new" if not c["a_ms"] else "gone")]
            for label, a, b in items if a and b for c in changes(a, b, top)]
    if not rows:
        return None
    return Table(title, ["job", "op type", "A ms/iter", "B ms/iter", "Δ ms", "B/A"], rows, numeric={2, 3, 4, 5},
                 note="time per iteration in each job's profiled pass (--op-profile), largest absolute change first")


def variant_op_changes(run: Run) -> Table | None:
    """Each profiled variant against the fp32 job on the same backend, batch and scenario: which ops got faster."""
    recs = profiled(run)
    slot = ("backend", "device", "scenario", "batch_size")
    base = {tuple(r.get(k) for k in slot): r for r in recs if r.get("variant") == BASELINE_VARIANT}
    items = [(f"{r['variant']} vs {BASELINE_VARIANT} · {r.get('backend')} · b{r.get('batch_size')}",
              RunDir(run.path).op_table(b), RunDir(run.path).op_table(r))
             for r in recs if r.get("variant") != BASELINE_VARIANT and (b := base.get(tuple(r.get(k) for k in slot)))]
    return op_changes_table(items, f"Op types that changed most vs {BASELINE_VARIANT}")


def changes(a: dict, b: dict, top: int = 5) -> list[dict]:
    """Op types whose time per iteration moved most from table a to table b (by absolute ms), with the ratio b/a."""
    ta, tb = ({t["op_type"]: t["ms_per_iter"] for t in x["op_types"]} for x in (a, b))
    rows = [{"op_type": k, "a_ms": ta.get(k, 0.0), "b_ms": tb.get(k, 0.0), "delta_ms": tb.get(k, 0.0) - ta.get(k, 0.0),
             "ratio": tb[k] / ta[k] if ta.get(k) and k in tb else None} for k in ta.keys() | tb.keys()]
    return sorted(rows, key=lambda r: -abs(r["delta_ms"]))[:top]
