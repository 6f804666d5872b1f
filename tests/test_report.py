"""`recbench report`: charts with the right series, self-contained HTML, Markdown, bad input, partial runs."""

import copy
import json
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from PIL import Image

from bench.recommend.judge import pareto_front
from bench.report.build import build_report
from bench.report.document import Bullets, Document, Facts, Figure
from tests.conftest import ROOT, recbench
from tests.recorded_runs import copy_run, external_references, read_records, recorded_run, write_records

BACKENDS, BATCHES = ("onnxruntime", "torch-cpu"), (1, 8)


@pytest.fixture(scope="module")
def run():
    return recorded_run(BACKENDS, BATCHES)


@pytest.fixture(scope="module")
def report(run, tmp_path_factory):
    return build_report(run, tmp_path_factory.mktemp("report"))


def _chart(report, name):
    return next(c for c in report.charts if c.name == name)


def _series(ax) -> set[str]:
    return {ln.get_label() for ln in ax.lines if not ln.get_label().startswith("_")}


def test_every_chart_with_data_is_written_as_png_and_svg(report):
    drawn = {c.name for c in report.charts if c.figure}
    assert drawn == {"latency-cdf", "latency-vs-batch", "throughput-vs-batch", "memory", "speedup"}
    for c in report.charts:
        if c.figure:
            png, svg = report.out_dir / "charts" / f"{c.name}.png", report.out_dir / "charts" / f"{c.name}.svg"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
            text = svg.read_text()
            assert text.lstrip().startswith("<?xml") and "<svg" in text
            assert c.figure.get_suptitle()
            for ax in c.figure.axes:
                if ax.get_visible() and ax.get_label() != "<colorbar>":
                    assert ax.get_xlabel() and ax.get_ylabel(), (c.name, ax.get_title())
    skipped = {c.name: c.skipped for c in report.charts if not c.figure}
    assert "server" in skipped["latency-vs-load"] and "2 variants" in skipped["quality-vs-latency"]


def test_cdf_has_one_panel_per_batch_and_one_line_per_backend(report, run):
    fig = _chart(report, "latency-cdf").figure
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == [f"batch {b}" for b in BATCHES]
    for ax in axes:
        assert _series(ax) == set(BACKENDS) and ax.get_xscale() == "log"
        assert "ms" in ax.get_xlabel()
    # each CDF ends at 1 and its x values are the job's raw latencies in ms
    recs = {(r["backend"], r["batch_size"]): r for r in read_records(run)}
    for ax, b in zip(axes, BATCHES, strict=True):
        for line in ax.lines:
            if line.get_label() in BACKENDS:
                raw = np.load(run / "raw" / f"{recs[(line.get_label(), b)]['job_id']}.npy") / 1e6
                assert line.get_ydata()[-1] == pytest.approx(1.0)
                assert line.get_xdata().max() == pytest.approx(raw.max())
    svg = (report.out_dir / "charts" / "latency-cdf.svg").read_text()
    assert all(b in svg for b in BACKENDS)  # matplotlib keeps every text as a comment beside its glyphs


def test_batch_charts_plot_the_recorded_numbers(report, run):
    recs = {(r["backend"], r["batch_size"]): r for r in read_records(run)}
    p50_ax, p99_ax = _chart(report, "latency-vs-batch").figure.axes[:2]
    (tp_ax,) = [ax for ax in _chart(report, "throughput-vs-batch").figure.axes if ax.get_visible()]
    for ax, field in ((p50_ax, lambda r: r["latency_ms"]["p50"]), (p99_ax, lambda r: r["latency_ms"]["p99"]),
                      (tp_ax, lambda r: r["throughput_sps"])):
        assert _series(ax) == set(BACKENDS)
        for line in ax.lines:
            if line.get_label() in BACKENDS:
                assert list(line.get_xdata()) == list(BATCHES)
                assert list(line.get_ydata()) == [field(recs[(line.get_label(), b)]) for b in BATCHES]
    assert "samples/s" in tp_ax.get_ylabel() and "ms" in p99_ax.get_ylabel()


def test_html_is_self_contained_and_states_the_environment(report, run):
    page = report.html.read_text()
    assert external_references(page) == []
    assert page.count('src="data:image/png;base64,') == sum(1 for c in report.charts if c.figure)
    env = json.loads((run / "env.json").read_text())
    top = page[: page.index("<figure")]
    for value in (env["cpu"], "onnxruntime " + env["versions"]["onnxruntime"], "torch " + env["versions"]["torch"]):
        assert value in top
    assert "Charts not drawn" in page and "Every measured job" in page


def test_markdown_links_the_chart_files(report):
    md = report.markdown.read_text()
    for c in report.charts:
        if c.figure:
            assert f"](charts/{c.name}.png)" in md
    assert "| backend |" in md.replace("| variant ", "")


def test_extended_run_draws_pareto_load_and_speedup(run, tmp_path):
    """Records shaped like the variants and scenarios issues' (int8 variant, max-qps, concurrency curves)."""
    ext = copy_run(run, tmp_path / "ext")
    records = read_records(ext)
    extra = []
    for r in records:
        q = copy.deepcopy(r)
        q.update(variant="int8", job_id=r["job_id"] + "-int8", model_bytes=r["model_bytes"] // 4)
        q["latency_ms"] = {k: None if v is None else v / 2 for k, v in r["latency_ms"].items()}
        q["quality"]["auc_delta"] = -0.003
        np.save(ext / "raw" / f"{q['job_id']}.npy", np.load(ext / "raw" / f"{r['job_id']}.npy") // 2)
        extra.append(q)
    load = copy.deepcopy(records[0])
    load.update(scenario="max-qps", job_id="load-maxqps", achieved_qps=190.0, target_qps=200.0, curve=[
        {"target_qps": 100.0, "achieved_qps": 99.0, "latency_ms": {"p50": 1.0, "p99": 2.0}, "passed": True},
        {"target_qps": 400.0, "achieved_qps": 300.0, "latency_ms": {"p50": 10.0, "p99": 50.0}, "passed": False},
        {"target_qps": 200.0, "achieved_qps": 190.0, "latency_ms": {"p50": 2.0, "p99": 5.0}, "passed": True}])
    # the serving issue's breakdown and batcher fields
    load.update(queue_ms={"mean": 1.0, "p99": 3.0}, service_ms={"mean": 0.5, "p99": 1.0},
                batching={"max_batch": 64, "max_delay_ms": 2})
    conc = copy.deepcopy(records[2])
    conc.update(scenario="concurrency", job_id="load-conc", curve=[
        {"concurrency": k, "throughput_sps": 1000.0 * k, "latency_ms": {"p50": k, "p99": 3.0 * k}} for k in (1, 2)])
    write_records(ext, records + extra + [load, conc])
    rep = build_report(ext)
    # every chart but the two that need --op-profile and `recbench machine` (tests/test_explain.py draws those)
    assert {c.name for c in rep.charts if not c.figure} == {"op-breakdown", "roofline"}

    (ax,) = [a for a in _chart(rep, "latency-vs-load").figure.axes if a.get_visible()]
    lines = {ln.get_label(): ln for ln in ax.lines}
    maxqps = next(ln for label, ln in lines.items() if "max-qps" in label)
    b = records[0]["batch_size"]
    assert list(maxqps.get_xdata()) == [99.0 * b, 190.0 * b, 300.0 * b] and list(maxqps.get_ydata()) == [2, 5, 50]
    assert any("concurrency" in label for label in lines)

    (ax,) = [a for a in _chart(rep, "quality-vs-latency").figure.axes if a.get_visible()]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]  # the rest: p99 CI error bars
    assert len(points) == 4  # 2 variants x 2 backends at batch 1
    front = next(ln for ln in ax.lines if ln.get_label() == "Pareto front")
    assert front.get_ydata()[0] == -0.003 and front.get_ydata()[-1] == 0.0

    heat = _chart(rep, "speedup").figure
    texts = [t.get_text() for t in heat.axes[0].texts]
    # fp32 torch-cpu is the reference; int8 there is exactly 2x, shown with the CI from its replicas
    assert "1 (ref.)" in texts and any(t.startswith("2.00×\n[") for t in texts)
    assert "torch-cpu" in heat.get_suptitle()

    mem = _chart(rep, "memory").figure.axes[1]
    heights = {round(p.get_height(), 6) for p in mem.patches}
    assert round(records[0]["model_bytes"] // 4 / 2**20, 6) in heights
    page = rep.html.read_text()
    assert "Latency under load" in page and external_references(page) == []


VARIANTS_ALL = ("fp32", "fp16", "bf16", "int8-dynamic", "int8-static", "emb-int8", "emb-int4", "prune-50", "prune-90",
                "prune-struct", "distilled", "lowrank", "distilled+int8-static", "emb-int8+int8-static")


def _overlaps(fig, texts) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty text artists whose drawn boxes intersect."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts if t.get_visible() and t.get_text()]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if ba.overlaps(bb)]


def test_a_variants_all_report_renders_legibly(run, tmp_path):
    """14 variants x 2 backends x 2 batches: CDF lines stay distinguishable, labels and tick names never collide."""
    ext = copy_run(run, tmp_path / "all")
    records, extra = read_records(ext), []
    for i, v in enumerate(VARIANTS_ALL[1:], start=1):
        for r in records:
            q = copy.deepcopy(r)
            q.update(variant=v, job_id=f"{r['job_id']}-{i}", model_bytes=r["model_bytes"] // (1 + i % 4))
            q["latency_ms"] = {k: None if x is None else x * (1 + i / 20) for k, x in r["latency_ms"].items()}
            q["quality"]["auc_delta"] = -0.001 * i
            np.save(ext / "raw" / f"{q['job_id']}.npy", (np.load(ext / "raw" / f"{r['job_id']}.npy") * (1 + i / 20))
                    .astype(np.int64))
            extra.append(q)
    write_records(ext, records + extra)
    rep = build_report(ext)
    cdf = _chart(rep, "latency-cdf").figure
    for ax in (a for a in cdf.axes if a.get_visible()):
        lines = [ln for ln in ax.lines if not ln.get_label().startswith("_") and ln.get_drawstyle() == "steps-post"]
        styles = [(str(ln.get_color()), ln.get_linestyle()) for ln in lines]
        assert len(lines) == len(VARIANTS_ALL) and len(set(styles)) == len(styles), ax.get_title()  # one per variant
        assert ax.get_title().endswith(BACKENDS)  # faceted: one panel per backend
    (ax,) = [a for a in _chart(rep, "quality-vs-latency").figure.axes if a.get_visible()]
    assert not _overlaps(ax.figure, ax.texts)
    for name in ("speedup", "memory"):
        fig = _chart(rep, name).figure
        for ax in (a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"):
            assert not _overlaps(fig, ax.get_xticklabels()), (name, ax.get_title())
            assert not _overlaps(fig, ax.get_yticklabels()), (name, ax.get_title())
    for c in rep.charts:
        assert c.figure is None or Image.open(rep.out_dir / "charts" / f"{c.name}.png").size[0] <= 1300


def test_the_chart_draws_the_pareto_front_recommend_picks_from():
    pts = [(1.0, -0.01), (2.0, 0.0), (3.0, -0.02), (1.5, -0.01), (0.5, -0.05)]
    recs = [{"latency_ms": {"p99": x}, "quality": {"auc_delta": y}} for x, y in pts]
    front = pareto_front(recs, (("latency_ms.p99", False), ("quality.auc_delta", True)))
    assert [recs.index(r) for r in front] == [0, 1, 4]


def test_partial_run_reports_what_it_has(run, tmp_path):
    part = copy_run(run, tmp_path / "part")
    lines = (part / "records.jsonl").read_text().splitlines()
    failed = {**json.loads(lines[2]), "status": "failed", "reason": "worker killed by SIGKILL"}
    (part / "records.jsonl").write_text("\n".join([lines[0], lines[1], json.dumps(failed), lines[3][:40]]))  # torn
    (part / "raw" / f"{json.loads(lines[1])['job_id']}.npy").unlink()
    rep = build_report(part)
    cdf = _chart(rep, "latency-cdf").figure
    assert sum(len(_series(ax)) for ax in cdf.axes) == 1
    page = rep.html.read_text()
    assert "Jobs without a measurement" in page and "worker killed by SIGKILL" in page


def _bad_run(tmp_path, records: list[dict]):
    run = tmp_path / "run"
    run.mkdir()
    write_records(run, records)
    return run


@pytest.mark.parametrize("case, expect", [
    ("not-a-run", "not a recbench run folder"),
    ("parent", "run folders inside it"),
    ("no-ok", "no ok records"),
    ("newer-schema", "newer than this recbench"),
    ("reference", "valid: onnxruntime, torch-cpu"),
])
def test_bad_input_is_one_line_exit_2(case, expect, run, tmp_path):
    if case == "not-a-run":
        target = tmp_path
    elif case == "parent":
        target = copy_run(run, tmp_path / "parent" / "r1").parent
    elif case == "no-ok":
        target = _bad_run(tmp_path, [{"status": "skipped", "reason": "openvino is not installed", "schema_version": 1}])
    elif case == "newer-schema":
        target = _bad_run(tmp_path, [{**read_records(run)[0], "schema_version": 99}])
    else:
        target = copy_run(run, tmp_path / "r")
    res = recbench("report", str(target), *(["--reference-backend", "tensorrt"] if case == "reference" else []))
    assert res.returncode == 2, res.stderr
    assert expect in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr + res.stdout


def test_report_json(run, tmp_path):
    res = recbench("report", str(copy_run(run, tmp_path / "r")), "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert {c["name"] for c in out["charts"]} >= {"latency-cdf", "latency-vs-batch", "memory"}
    assert out["jobs"]["ok"] == len(BACKENDS) * len(BATCHES)


def test_run_writes_the_report_unless_told_not_to(tmp_path):
    args = ["run", "--quick", "--preset", "tiny", "--backends", "onnxruntime", "--batch-sizes", "4"]
    res = recbench(*args, "--out", str(tmp_path / "with"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(list((tmp_path / "with").glob("*/report/report.html"))) == 1 and "report:" in res.stdout
    res = recbench(*args, "--out", str(tmp_path / "without"), "--no-report")
    assert res.returncode == 0, res.stderr[-2000:]
    assert list((tmp_path / "without").glob("*/report")) == []


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_headless_chromium_renders_the_report(report, tmp_path):
    shot = tmp_path / "shot.png"
    res = subprocess.run([str(ROOT / "scripts" / "report-screenshot"), str(report.html), str(shot), "1400,1600"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert pixels.shape == (1600, 1400, 3)
    # the charts' backend colours are on screen: a rendered page, not a blank or an error page
    saturated = (pixels.max(axis=2) - pixels.min(axis=2)) > 100
    assert saturated.mean() > 0.002


def test_one_document_renders_to_html_and_markdown(tmp_path):
    png = tmp_path / "charts" / "c.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG")
    doc = Document("T", "sub")
    doc.add(Facts("A", [("cpu", "x")]), Facts("B", [("cpu", "y")]), Bullets("empty", []), None,
            Figure("chart", png, png.with_suffix(".svg"), "cap"), Bullets("notes", ["a|b"]))
    md, page = doc.write(tmp_path / "md" / "r.md", tmp_path / "html" / "r.html")
    assert page.read_text().count('<div class="facts">') == 1 and "empty" not in page.read_text()  # facts side by side
    text = md.read_text()
    assert "](../charts/c.png)" in text and "- a|b" in text and "empty" not in text
