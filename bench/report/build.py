"""`recbench report RUN_DIR`: charts, tables, HTML and Markdown into RUN_DIR/report/ from the records alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.report import explain
from bench.report.charts import CHARTS, Chart, Palette, closed_loop, draw_all, groups, pick_reference
from bench.report.data import Run, env_summary, read_run, run_summary
from bench.report.document import Bullets, Document, Facts, Figure, Section
from bench.report.serving_charts import SERVING_CHARTS
from bench.report.tables import jobs_table, load_table, problems_table, targets_table


@dataclass
class Report:
    run: Run
    out_dir: Path
    charts: list[Chart]
    figures: list[Figure]
    html: Path
    markdown: Path

    def as_dict(self) -> dict:
        """What --json prints: where everything went, what was drawn, what was not and why."""
        return {"run": str(self.run.path), "run_id": self.run.run_id, "report_dir": str(self.out_dir),
                "html": str(self.html), "markdown": str(self.markdown),
                "charts": [{"name": c.name, "title": c.title, "png": str(f.png), "svg": str(f.svg)}
                           for c, f in zip([c for c in self.charts if c.figure], self.figures, strict=True)],
                "skipped_charts": [{"name": c.name, "reason": c.skipped} for c in self.charts if not c.figure],
                "jobs": {s: sum(r.get("status") == s for r in self.run.records) for s in ("ok", "failed", "skipped")},
                "incomplete": self.run.interruption or None}


def build_report(run_path: Path, out_dir: Path | None = None, reference_backend: str | None = None,
                 require_ok: bool = True) -> Report:
    """Read a run folder and write report.html, report.md and charts/*.png|svg into out_dir (RUN/report).

    require_ok=False (the end of `recbench run`): a run whose every job failed still gets a report saying why."""
    run = read_run(run_path, require_ok)
    pick_reference(run, reference_backend)  # a backend asked for by name must be in the run
    out_dir = Path(out_dir) if out_dir else run.path / "report"
    charts = draw_all(run, reference_backend, CHARTS + explain.CHARTS + SERVING_CHARTS)
    figures = [chart.save(out_dir / "charts") for chart in charts if chart.figure is not None]
    first = (run.ok or run.records or [{}])[0]
    doc = Document(f"recbench report: {run.run_id}" + (" (INCOMPLETE)" if run.interruption else ""),
                   f"{first.get('model')} / {first.get('preset')} — {len(run.ok)} measured jobs. "
                   + (f"{run.interruption[0].upper()}{run.interruption[1:]}. " if run.interruption else "")
                   + "Every number below is read from the run's records; nothing was re-run.")
    skipped = [f"{c.title}: {c.skipped}" for c in charts if not c.figure]
    warnings = [f"{r['job_id']}: {w}" for r in run.ok for w in r.get("warnings") or []]
    pal, glance = Palette(run.ok), []  # per batch size: who is fastest at p50, who moves the most samples per second
    for (scenario, batch), recs in sorted(groups(closed_loop(run), lambda r: (r.get("scenario"), r.get("batch_size"))
                                                  ).items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0)):
        fastest = ", ".join(f"{pal.label(r)} {r['latency_ms']['p50']:.4g} ms"
                            for r in sorted(recs, key=lambda r: r["latency_ms"]["p50"]))
        top = max(recs, key=lambda r: r.get("throughput_sps") or 0)
        glance.append(f"{scenario}, batch {batch}: p50 from fastest: {fastest}; highest throughput: {pal.label(top)} "
                      f"{top.get('throughput_sps') or 0:,.0f} samples/s")
    doc.add(Facts("Run", run_summary(run)), Facts("Environment", env_summary(run.env)), Bullets("At a glance", glance),
            targets_table(run.ok), Section("Charts"), *figures,
            Bullets("Charts not drawn (the run lacks their data)", skipped), Section("Results"),
            jobs_table(run.ok, "Every measured job", detailed=True), load_table(run.ok),
            explain.explain_table(run), explain.top_nodes_table(run), explain.variant_op_changes(run),
            problems_table(run.records), Bullets("Warnings recorded by the jobs", warnings))
    md_path, html_path = doc.write(out_dir / "report.md", out_dir / "report.html")
    return Report(run, out_dir, charts, figures, html_path, md_path)
