"""Terminal tables of a run's records (rich; colour only where the terminal supports it)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _mib(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**20:,.0f}"


def _num(x: float | None, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def records_table(records: list[dict], title: str = "") -> Table:
    """One row per job: latency percentiles, throughput, memory and quality delta."""
    table = Table(title=title or None, header_style="bold")
    for col in ("variant", "backend", "scenario", "batch"):
        table.add_column(col)
    for col in ("p50 ms", "p99 ms", "samples/s", "RSS MiB", "AUC", "ΔAUC"):
        table.add_column(col, justify="right")
    table.add_column("status")
    for r in records:
        lat, q = r.get("latency_ms") or {}, r.get("quality") or {}
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {(r.get('reason') or '')[:60]}"
        table.add_row(
            r["variant"], r["backend"], r["scenario"], str(r["batch_size"]),
            _num(lat.get("p50"), ".3f"), _num(lat.get("p99"), ".3f"), _num(r.get("throughput_sps"), ",.0f"),
            _mib(r.get("peak_rss_bytes")), _num(q.get("auc"), ".4f"), _num(q.get("auc_delta"), "+.4f"), status,
        )
    return table


def print_summary(console: Console, records: list[dict], title: str) -> None:
    console.print(records_table(records, title))
    for r in records:
        for w in r.get("warnings") or []:
            console.print(f"[yellow]warning[/] {r['job_id']}: {w}")
