"""The per-target comparison of a fleet run: throughput and p99 of each variant x backend on each target."""

from __future__ import annotations

from bench.records.schema import value_at
from bench.report.tables import Table, num

ROW = ("variant", "backend", "scenario", "batch_size")


def targets_table(records: list[dict]) -> Table | None:
    """One row per (variant, backend, scenario, batch), a samples/s and a p99 column per target; None off a fleet."""
    fleet = [r for r in records if r.get("target") and r.get("status") == "ok"]
    if not fleet:
        return None
    targets = sorted({r["target"] for r in fleet})
    cells = {(tuple(r.get(k) for k in ROW), r["target"]): r for r in fleet}
    rows = []
    for key in sorted({k for k, _ in cells}, key=lambda k: tuple(str(v) for v in k[:3]) + (k[3] or 0,)):
        row = [str(v) for v in key]
        for t in targets:
            r = cells.get((key, t))
            row += [num(r.get("throughput_sps"), ",.0f"), num(value_at(r, "latency_ms.p99"), ".4g")] if r \
                else ["-", "-"]
        rows.append(row)
    cols = ["variant", "backend", "scenario", "batch"] + [f"{t} {m}" for t in targets for m in ("samples/s", "p99 ms")]
    return Table("Per target: throughput and p99", cols, rows, numeric=set(range(3, len(cols))),
                 note="one column pair per fleet target; '-' where the target does not run that job")
