"""Serving charts: where a server run's latency goes (queue vs service) and p99 vs throughput per batcher setting."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure

from bench.records.rundir import RunDir, replica_id
from bench.records.schema import value_at
from bench.report.charts import MARKERS, NoData, Palette, _figure, _legend
from bench.report.data import Run

QUEUE, SERVICE = "#ff7f0e", "#1f77b4"


def _settings(pal: Palette, r: dict) -> list[tuple[str, dict]]:
    """A record's batcher settings (its batching_sweep, else the record itself), each with its label."""
    return [(pal.job(r) + (f" · delay {s['batching']['max_delay_ms']:g} ms" if s.get("batching") else ""), s)
            for s in r.get("batching_sweep") or [r]]


def from_raw(run: Run, r: dict) -> dict:
    """The record with its queue and service times recomputed from its replicas' raw per-request times, where kept
    (raw/<replica>.requests.npz)."""
    folder, repeat = RunDir(run.path), r.get("repeat") or 1
    kept = [t for k in range(repeat) if (t := folder.requests(replica_id(r["job_id"], k, repeat)))]
    if not kept:
        return r
    t = {k: np.concatenate([part[k] for part in kept]) for k in kept[0]}
    served = t["end_ns"] >= 0
    spans = {"queue_ms": t["dispatch_ns"] - t["scheduled_ns"], "service_ms": t["end_ns"] - t["dispatch_ns"]}
    return {**r, **{k: {"mean": v[served].mean() / 1e6, "p99": np.percentile(v[served], 99) / 1e6}
                    for k, v in spans.items()}}


def latency_breakdown(run: Run, pal: Palette, reference: str | None) -> tuple[Figure, str]:
    recs = [from_raw(run, r) for r in run.ok
            if None not in (value_at(r, "queue_ms.mean"), value_at(r, "service_ms.mean"))]
    if not recs:
        raise NoData("no server / max-qps records with queue and service times")
    pal = pal.within(recs)
    rows = [row for r in recs for row in _settings(pal, r)]
    fig, axes = _figure("Where the latency goes: queue wait vs service", 2, cols=2, height=0.35 * len(rows) + 1.5)
    y = np.arange(len(rows))
    for ax, stat in zip(axes, ("mean", "p99"), strict=True):
        queue = [value_at(s, f"queue_ms.{stat}") or 0.0 for _, s in rows]
        service = [value_at(s, f"service_ms.{stat}") or 0.0 for _, s in rows]
        if stat == "mean":  # means add up: queue + service = latency
            ax.barh(y, queue, color=QUEUE, label="queue wait")
            ax.barh(y, service, left=queue, color=SERVICE, label="service")
        else:  # percentiles do not add up: side by side, with the latency p99 marked
            ax.barh(y - 0.2, queue, height=0.4, color=QUEUE, label="queue wait")
            ax.barh(y + 0.2, service, height=0.4, color=SERVICE, label="service")
            ax.plot([value_at(s, "latency_ms.p99") or np.nan for _, s in rows], y, "k|", markersize=14, label="latency")
        ax.set_yticks(y, [label for label, _ in rows] if stat == "mean" else [""] * len(rows))
        ax.invert_yaxis()
        ax.set(xlabel=f"{stat} (ms)", title=f"{stat}: queue wait and service time")
    _legend(fig, axes)
    return fig, ("Queue wait runs from each request's scheduled arrival to its dispatch (it includes a batcher's hold "
                 "and the dispatcher's wake-up); service is gathering its batch and the inference call(s) that served "
                 "it; both recomputed from the requests' raw times where kept. "
                 "Server records at their offered load, max-qps records at the highest QPS within the budget.")


def _curve(r: dict, setting: dict) -> list[tuple[float, float]]:
    points = setting.get("curve") or [setting]
    out = []
    for p in sorted(points, key=lambda p: p.get("target_qps") or 0):
        x = p.get("throughput_sps") or (p.get("achieved_qps") or 0) * (r.get("batch_size") or 1)
        if x and value_at(p, "latency_ms.p99") is not None:
            out.append((x, value_at(p, "latency_ms.p99")))
    return out


def batching_sweep(run: Run, pal: Palette, reference: str | None) -> tuple[Figure, str]:
    recs = [r for r in run.ok if r.get("batching")]
    if not recs:
        raise NoData("no records served through a dynamic batcher")
    pal = pal.within(recs)
    fig, (ax,) = _figure("p99 vs throughput per batcher setting", 1, height=4.4)
    for i, r in enumerate(recs):
        for j, (label, s) in enumerate(_settings(pal, r)):
            pts = _curve(r, s)
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker=MARKERS[j % len(MARKERS)], color=f"C{(i * 3 + j) % 10}", label=label)
    ax.set(yscale="log", xlabel="achieved throughput (scored items/s)", ylabel="p99 latency (ms, log scale)")
    _legend(fig, [ax])
    return fig, ("One line per max_delay_ms setting (max-qps: every probe of its search; server: the offered load). "
                 "Pick the setting whose line stays under your p99 budget at the throughput you need.")


SERVING_CHARTS: list[tuple[str, str, Callable]] = [
    ("latency-breakdown", "Latency breakdown (queue vs service)", latency_breakdown),
    ("batching-sweep", "Dynamic batching: p99 vs throughput", batching_sweep),
]
