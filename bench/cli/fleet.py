"""`recbench fleet`: the live nodes of a Ray cluster, their devices and what the fleet file runs on them."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.report.tables import print_table
from bench.run.fleet.cluster import connect, live_nodes
from bench.run.fleet.spec import load_fleet


def show_nodes(console: Console, cluster: str, fleet: Path | None) -> None:
    """One row per live node: id, address, device resources, targets and backends (from the fleet file), busy."""
    spec = load_fleet(fleet) if fleet else None
    with connect(cluster) as ray:
        nodes = live_nodes(ray)
    table = Table("node", "address", "devices", "targets", "runs", "state", header_style="bold")
    for n in nodes:
        targets = spec.target_of(n.devices) if spec else []
        table.add_row(n.node_id[:12], escape(n.address), escape(", ".join(f"{r}: {v:g}" for r, v in n.devices.items())
                                                              or "-"),
                      escape(", ".join(t.name for t in targets) or "-"),
                      escape(", ".join(dict.fromkeys(b for t in targets for b in t.backends)) or "-"),
                      "[yellow]busy" if n.busy else "idle")
    print_table(console, table)
    if spec:
        for t in spec.targets:
            if not any(n.devices.get(t.resource) for n in nodes):
                console.print(f"[red]target {escape(t.name)}: no node offers {escape(t.resource)}", highlight=False)
