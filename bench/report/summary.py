"""Terminal tables of a run's records (rich; colour only where the terminal supports it)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from bench.report.tables import jobs_table, print_table


def print_summary(console: Console, records: list[dict], title: str) -> None:
    table = jobs_table(records, title, reasons=False)
    print_table(console, table.to_rich(compact=True), table.keys)
    for r in records:
        if r.get("status") != "ok":
            console.print(f"[dim]{r.get('status')}[/] {escape(r['job_id'])}: {escape(r.get('reason') or '')}",
                          highlight=False, soft_wrap=True)
    for r in records:
        if r.get("warnings"):  # one line per job; the record keeps each warning separately
            console.print(f"[yellow]warning[/] {escape(r['job_id'])}: {escape('; '.join(r['warnings']))}",
                          highlight=False, soft_wrap=True)
