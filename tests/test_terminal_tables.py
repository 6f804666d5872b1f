"""Every table the CLI prints keeps each number and column whole in an 80-column terminal (wrapped or stacked,
never cut): a wide synthetic run (a scenario and profile column, long variant names, CIs) through the real
printing code with an 80-column console."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from rich.console import Console

import bench.cli.main as cli
from bench.records.rundir import RunDir
from bench.report.tables import jobs_table, print_summary
from bench.stats.latency import summarize
from tests.runs import latencies

WIDTH = 80
VARIANTS = ("fp32", "int8-dynamic", "emb-int8+int8-static")


def wide_run(parent: Path, run_id: str, slower: float = 1.0) -> Path:
    """2 backends x 3 variants x 2 scenarios on the edge profile, batch 256, every column filled; one failed job."""
    run = RunDir.create(parent, run_id)
    i = 0
    for backend in ("onnxruntime", "openvino"):
        for v, variant in enumerate(VARIANTS):
            for scenario in ("single-stream", "server"):
                ns = (latencies(12.3 * slower / (1 + v), n=700, seed=i) * 1e6).astype(np.int64)
                job_id = f"{i:03d}-dlrm-{variant}-{backend}-{scenario}-b256"
                run.save_raw(job_id, ns)
                run.append({"schema_version": 1, "run_id": run_id, "job_id": job_id, "status": "ok", "reason": None,
                            "model": "dlrm", "preset": "edge", "variant": variant, "backend": backend,
                            "device": "cpu", "profile": "edge", "scenario": scenario, "batch_size": 256,
                            "threads": 2, "started_at": "2026-01-01T00:00:00+00:00",
                            "peak_rss_bytes": 334_567_890, "model_bytes": 48_123_456, "gpu_mem_bytes": None,
                            "quality": {"auc": 0.71234, "auc_delta": -0.0012 * v, "rank_corr": 0.99912},
                            **summarize(ns, 256, float(ns.sum()) / 1e9)})
                i += 1
    run.append({"schema_version": 1, "run_id": run_id, "job_id": f"{i:03d}-dlrm-fp32-torch-cpu-server-b256",
                "status": "failed", "reason": "worker exited with code 1 before sending a record " * 3,
                "model": "dlrm", "preset": "edge", "variant": "fp32", "backend": "torch-cpu", "device": "cpu",
                "profile": "edge", "scenario": "server", "batch_size": 256, "threads": 2,
                "started_at": "2026-01-01T00:00:00+00:00"})
    run.mark("complete", jobs=i + 1, done=i + 1)
    return run.path


@pytest.fixture
def narrow(monkeypatch) -> Console:
    """The CLI's console, 80 columns wide, recording what it prints."""
    console = Console(width=WIDTH, record=True, emoji=False, file=io.StringIO())
    monkeypatch.setattr(cli, "console", console)
    return console


def printed(console: Console) -> list[str]:
    return console.export_text().splitlines()


def assert_whole(lines: list[str], strings) -> None:
    """Each string (a number, a column header) is on one line, uncut."""
    missing = [s for s in dict.fromkeys(strings) if not any(s in line for line in lines)]
    assert not missing, f"cut or dropped: {missing}\n" + "\n".join(lines)


def numbers(table) -> list[str]:
    """The headers and the numeric cells of a bench.report.tables.Table."""
    return [*table.columns, *(row[i] for row in table.rows for i in table.numeric)]


@pytest.mark.parametrize("width", [WIDTH, 101, 140])
def test_run_summary(tmp_path, width):
    records = RunDir(wide_run(tmp_path, "run")).records()
    console = Console(width=width, record=True, emoji=False, file=io.StringIO())
    print_summary(console, records, "dlrm run run")
    lines = printed(console)
    assert_whole(lines, [*numbers(jobs_table(records, reasons=False)), "-0.0012", "-0.0024", "failed", "ok"])
    assert max(len(line.rstrip()) for line in lines[:5]) <= width


def test_compare(tmp_path, narrow):
    from bench.compare import compare_runs, ratios_table

    # one replica a side: twice as slow, but recorded runs that cannot show their noise never call it slower
    a, b = wide_run(tmp_path, "a"), wide_run(tmp_path, "b", slower=2.0)
    cli.compare(a, b, markdown=None, html=None, out=None, as_json=False, allow_interrupted=False, across_targets=False,
                threshold="5%")
    table = ratios_table(compare_runs(a, b))
    assert_whole(printed(narrow), [*numbers(table), "inconclusive"])


def test_gate(tmp_path, narrow):
    a, b = wide_run(tmp_path, "a"), wide_run(tmp_path, "b", slower=1.3)
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(yaml.safe_dump({"rules": [{"name": "dlrm-edge-latency-and-quality",
                                                  "select": {"model": "dlrm", "status": "ok"},
                                                  "limits": {"latency_ms.p50": "<= 8 ms",
                                                             "quality.auc_delta": ">= -0.001"}}]}))
    with pytest.raises(typer.Exit):
        cli.gate(b, budgets=budgets, baseline=str(a), max_regression="5%", metrics=None, strict=False, junit=None,
                 markdown=None, db=tmp_path / "h.sqlite", record=False, allow_interrupted=False, rerun=False, repeat=5,
                 history=False, window=20, model="t-test", fail_on_change=False)
    from bench.gate.output import COLUMNS

    assert_whole(printed(narrow), [*COLUMNS, "<= 8 ms", ">= -0.001", "-0.0024", "pass", "fail"])


def test_recommend(narrow):
    from bench.cli.recommend import _print
    from bench.recommend import output
    from bench.run.search import Candidate, Trial

    trials = [Trial(Candidate(v, b, 256, 2), "final", {"status": "ok", "variant": v, "backend": b, "batch_size": 256,
                                                         "latency_ms": {"p50": 12.3456, "p99": 123.456},
                                                         "throughput_sps": 1234567.0, "model_bytes": 48_123_456,
                                                         "quality": {"auc_delta": -0.0012}})
              for v in VARIANTS for b in ("onnxruntime", "openvino")]
    outcome = output.Outcome(trials[0], trials, trials[:2], "quality.auc_delta")
    _print(narrow, outcome, 12.0)
    assert_whole(printed(narrow), [*(h for h in output.HEADER if h), "1,234,567", "12.35", "123.5", "48.12",
                                   "-0.0012", "chosen", "front"])


def test_history(tmp_path, narrow):
    from bench.records.history import History, default_db

    with History(default_db(tmp_path)) as h:
        h.record_run(RunDir(wide_run(tmp_path, "20261205-141516-abcdef")))
    cli.history(tmp_path, rebuild=False, metric="latency_ms.p50", model=None, preset=None, variant=None, backend=None,
                scenario=None, batch_size=None, last=20, chart=tmp_path / "c.png", db=None, change_points=False,
                machine=None)
    assert_whole(printed(narrow), ["run_id", "started_at", "batch_size", "latency_ms.p50", "gate", "256",
                                   "2026-01-01T00:00:00+00:00", "20261205-141516-abcdef"])


def test_backends_and_variants(narrow):
    from backends import registry

    cli.list_backends()
    cli.list_variants(model=None, preset=None, input_spec=None, student=None)
    names = [n for n in registry.BACKENDS if n not in registry.PRESET_OPTIONS]
    assert_whole(printed(narrow), ["backend", "devices", "loads", "status", "variant", "what it is", *names])
