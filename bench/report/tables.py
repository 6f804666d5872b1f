"""Tables of exact numbers, built once and rendered to a terminal (rich), Markdown or HTML."""

from __future__ import annotations

import copy
import dataclasses
import html
from dataclasses import dataclass, field

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table as RichTable
from rich.text import Text

from bench.records.jobkey import SERIES_FIELDS
from bench.records.schema import value_at
from bench.report.data import load_points, varying

# a cell is its text, or (text, style) where style is a colour name: rich uses it, HTML maps it to a class
Cell = str | tuple[str, str]
STYLE_CLASSES = {"green": "good", "red": "bad", "yellow": "warn", "dim": "dim"}
TEXT_MIN_WIDTH = 6  # text columns fold down to this width in a narrow terminal; numbers never shrink


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)  # right-aligned column indexes
    note: str = ""
    keys: int = 1  # the leading columns that name a row: repeated in each part of a table too wide to print whole

    def to_rich(self, compact: bool = False) -> RichTable:
        """compact: no vertical rules. Numbers never wrap nor get cut; text columns fold to fit."""
        t = RichTable(title=self.title or None, header_style="bold", caption=self.note or None, pad_edge=not compact,
                      box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD, collapse_padding=compact)
        for i, col in enumerate(self.columns):  # a number is never cut: its column is at least as wide as it
            widest = max((len(_text(row[i])) for row in self.rows), default=0)
            t.add_column(col, justify="right" if i in self.numeric else "left", no_wrap=i in self.numeric,
                         min_width=widest if i in self.numeric else min(widest, TEXT_MIN_WIDTH), overflow="fold")
        for row in self.rows:
            t.add_row(*(Text(c[0], style=c[1]) if isinstance(c, tuple) else Text(c) for c in row))
        return t

    def to_markdown(self) -> str:
        lines = [f"**{self.title}**", ""] if self.title else []
        lines += ["| " + " | ".join(self.columns) + " |",
                  "|" + "|".join("---:" if i in self.numeric else "---" for i in range(len(self.columns))) + "|",
                  *("| " + " | ".join(_text(c).replace("|", "\\|") for c in row) + " |" for row in self.rows)]
        return "\n".join(lines + (["", f"_{self.note}_"] if self.note else []))

    def to_html(self) -> str:
        def cell(tag: str, c: Cell, i: int) -> str:
            classes = [x for x in ("num" if i in self.numeric else "", isinstance(c, tuple) and STYLE_CLASSES.get(c[1]))
                       if x]
            attr = f' class="{" ".join(classes)}"' if classes else ""
            return f"<{tag}{attr}>{html.escape(_text(c))}</{tag}>"

        head = "".join(cell("th", c, i) for i, c in enumerate(self.columns))
        body = "".join("<tr>" + "".join(cell("td", c, i) for i, c in enumerate(row)) + "</tr>" for row in self.rows)
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        note = f'<p class="note">{html.escape(self.note)}</p>' if self.note else ""
        return (f'<div class="wide"><table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
                f"{note}")


def print_table(console: Console, table: RichTable, keys: int = 1) -> None:
    """Print `table` so that no number is cut and no column dropped at the console's width (rich would crop both).

    A table that does not fit gets fixed column widths: no-wrap (numeric) columns and every header keep their
    full width, text columns fold down to TEXT_MIN_WIDTH. If even that is too wide, the table is printed in parts,
    each holding as many of the other columns as fit beside its first `keys` columns (the row's identity)."""
    options = console.options.update_width(10**6)
    natural, floor = [], []  # each column's widest cell (or header), and the width below which something is cut
    for col in table.columns:
        header = Measurement.get(console, options, col.header).maximum
        natural.append(max([header, *(Measurement.get(console, options, c).maximum for c in col.cells)]))
        floor.append(natural[-1] if col.no_wrap else max(header, col.min_width or 0, min(natural[-1], TEXT_MIN_WIDTH)))
    every = list(range(len(table.columns)))
    if _width(console, table, every, natural) <= console.width:
        parts = [table]
    elif _width(console, table, every, floor) <= console.width:
        parts = [_sized(console, table, every, natural, floor)]
    else:
        head = every[:max(1, min(keys, len(every) - 1))]
        groups: list[list[int]] = [[]]
        for i in every[len(head):]:
            if groups[-1] and _width(console, table, head + groups[-1] + [i], floor) > console.width:
                groups.append([])
            groups[-1].append(i)
        parts = [_sized(console, table, head + g, natural, floor) for g in groups]
        for k, part in enumerate(parts, 1):
            part.title = f"{table.title or ''} (part {k} of {len(parts)})".lstrip()
            part.caption = table.caption if k == len(parts) else None
    for part in parts:
        console.print(part)


def _subset(table: RichTable, columns: list[int], widths: list[int]) -> RichTable:
    """`table` with only `columns` (indexes), each fixed at its width (rich never resizes it) and folding (no "…")."""
    part = copy.copy(table)
    part.columns = [dataclasses.replace(table.columns[i], _index=j, width=widths[i], overflow="fold")
                    for j, i in enumerate(columns)]
    return part


def _width(console: Console, table: RichTable, columns: list[int], widths: list[int]) -> int:
    """The printed width of `table` with those columns at those widths (borders and padding included)."""
    return Measurement.get(console, console.options.update_width(10**6), _subset(table, columns, widths)).maximum


def _sized(console: Console, table: RichTable, columns: list[int], natural: list[int], floor: list[int]) -> RichTable:
    """`columns` of `table` at the console's width: every column as wide as it needs up to one level, the widest
    ones capped at it (never below their floor), the level as high as fits."""
    frame = _width(console, table, columns, floor) - sum(floor[i] for i in columns)  # borders and padding
    for level in range(max(natural[i] for i in columns), -1, -1):
        widths = [max(f, min(n, level)) for f, n in zip(floor, natural, strict=True)]
        if frame + sum(widths[i] for i in columns) <= console.width:
            break
    return _subset(table, columns, widths)


def _text(c: Cell) -> str:
    return c[0] if isinstance(c, tuple) else c


def num(x: float | None, fmt: str = ".4g") -> str:
    """x formatted; a value that rounds to zero never shows a minus sign ("-0.0000")."""
    if x is None:
        return "-"
    text = format(x, fmt)
    return format(0.0, fmt) if text.startswith("-") and not any(c in "123456789" for c in text) else text


def mib(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**20:,.1f}"


def is_ci(ci) -> bool:
    """A recorded 95% CI: [lo, hi], both known."""
    return isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci


def with_ci(value: float | None, ci, fmt: str = ".4g") -> str:
    """'7.91 [7.2, 8.6]' where a 95% CI is recorded, else the bare value."""
    if value is None:
        return "-"
    return f"{value:{fmt}} [{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if is_ci(ci) else format(value, fmt)


IDENTITY = SERIES_FIELDS  # the job key without the batch size (bench.records.jobkey), a fleet target included


def identity_columns(records: list[dict]) -> list[str]:
    """variant and backend always; model, target, device, profile, scenario only where they vary."""
    vary = varying(records, IDENTITY)
    return [f for f in IDENTITY if f in ("variant", "backend") or f in vary]


def jobs_table(records: list[dict], title: str = "", detailed: bool = False, reasons: bool = True) -> Table:
    """One row per job: latency percentiles (with CIs when detailed), throughput, memory, quality, status (with
    the reason a job did not run unless `reasons` is False: a narrow terminal prints reasons below the table)."""
    ident = identity_columns(records)
    cols = [*ident, "batch", "p50 ms", "p99 ms", *(
        ["p99.9 ms", "samples/s", "peak RSS MiB", "model MiB", "AUC", "ΔAUC", "fidelity rank corr", "CV"] if detailed
        else ["samples/s", "RSS MiB", "AUC", "ΔAUC"]), "status"]
    table = Table(title, cols, numeric=set(range(len(ident), len(cols) - 1)), keys=len(ident) + 1)
    for r in records:
        if detailed:
            cells = [with_ci(value_at(r, "latency_ms.p50"), value_at(r, "latency_ci_ms.p50")),
                     with_ci(value_at(r, "latency_ms.p99"), value_at(r, "latency_ci_ms.p99")),
                     num(value_at(r, "latency_ms.p999")),
                     with_ci(r.get("throughput_sps"), r.get("throughput_ci_sps"), ",.0f"),
                     mib(r.get("peak_rss_bytes")), mib(r.get("model_bytes")), num(value_at(r, "quality.auc"), ".4f"),
                     num(value_at(r, "quality.auc_delta"), "+.4f"), num(value_at(r, "quality.rank_corr"), ".4f"),
                     num(r.get("cv"), ".0%")]
        else:
            cells = [num(value_at(r, "latency_ms.p50"), ".3f"), num(value_at(r, "latency_ms.p99"), ".3f"),
                     num(r.get("throughput_sps"), ",.0f"), mib(r.get("peak_rss_bytes")),
                     num(value_at(r, "quality.auc"), ".4f"), num(value_at(r, "quality.auc_delta"), "+.4f")]
        status = _status(r) if reasons or r.get("status") == "ok" else (r.get("status", "?"), _status(r)[1])
        table.rows.append([str(r.get(f)) for f in ident] + [str(r.get("batch_size"))] + cells + [status])
    if detailed and any(r.get("latency_ci_ms") for r in records):
        table.note = "[lo, hi]: bootstrap 95% confidence interval"
    return table


def _status(r: dict, width: int | None = 80) -> Cell:
    """The status cell; a reason is cut to `width` characters on screen (None: the whole reason, for reports)."""
    status = r.get("status", "?")
    if status == "ok":
        return ("ok", "green") if r.get("stable", True) else ("unstable", "yellow")  # measured; warnings say why
    return (f"{status}: {(r.get('reason') or '')[:width]}", "red" if status == "failed" else "dim")


def load_table(records: list[dict]) -> Table | None:
    """Every point measured under load: target and achieved rate, latency percentiles."""
    ident = identity_columns(records)
    rows = [[str(r.get(f)) for f in ident] + [str(r.get("batch_size")), p["setting"], num(p["target_qps"], ",.1f"),
             num(p["achieved_qps"], ",.1f"), num(p["samples_per_s"], ",.0f"), with_ci(p["p50"], p["p50_ci"]),
             with_ci(p["p99"], p["p99_ci"])] for r in records for p in load_points(r)]
    if not rows:
        return None
    cols = [*ident, "batch", "load", "target QPS", "achieved QPS", "samples/s", "p50 ms", "p99 ms"]
    return Table("Latency under load", cols, rows, numeric=set(range(len(ident) + 2, len(cols))), keys=len(ident) + 2)


def problems_table(records: list[dict]) -> Table | None:
    """Jobs that did not produce a measurement, and why."""
    bad = [r for r in records if r.get("status") != "ok"]
    if not bad:
        return None
    ident = identity_columns(records)
    rows = [[str(r.get(f)) for f in ident] + [str(r.get("batch_size")), _status(r, None)] for r in bad]
    return Table("Jobs without a measurement", [*ident, "batch", "status"], rows, keys=len(ident) + 1)


def targets_table(records: list[dict]) -> Table | None:
    """A fleet run's per-target comparison: one row per (variant, backend, scenario, batch), a samples/s and a p99
    column per target; None off a fleet."""
    fleet = [r for r in records if r.get("target") and r.get("status") == "ok"]
    if not fleet:
        return None
    targets = sorted({r["target"] for r in fleet})
    row_key = ("variant", "backend", "scenario", "batch_size")
    cells = {(tuple(r.get(k) for k in row_key), r["target"]): r for r in fleet}
    rows = []
    for key in sorted({k for k, _ in cells}, key=lambda k: tuple(str(v) for v in k[:3]) + (k[3] or 0,)):
        row = [str(v) for v in key]
        for r in (cells.get((key, t), {}) for t in targets):  # '-' where the target does not run the job
            row += [num(r.get("throughput_sps"), ",.0f"), num(value_at(r, "latency_ms.p99"), ".4g")]
        rows.append(row)
    cols = ["variant", "backend", "scenario", "batch"] + [f"{t} {m}" for t in targets for m in ("samples/s", "p99 ms")]
    return Table("Per target: throughput and p99", cols, rows, numeric=set(range(3, len(cols))),
                 note="one column pair per fleet target; '-' where the target does not run that job")


def print_summary(console: Console, records: list[dict], title: str) -> None:
    """A run's jobs as a terminal table, then each job's reason (not ok) and warnings, one line each."""
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
