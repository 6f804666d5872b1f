"""Small real runs recorded once per test session (tiny DLRM, quick timing), shared by the report/compare tests."""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

from bench.config.sweep import SweepConfig, TimingConfig
from bench.records.rundir import RunDir
from bench.run.sweep import Sweep

# 700 iterations: enough for a p99 (662)
QUICK = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=700, min_duration_s=0.05, quality_samples=4096)
_ROOT = Path(tempfile.mkdtemp(prefix="recbench-report-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


@cache
def recorded_run(backends: tuple[str, ...], batches: tuple[int, ...]) -> Path:
    """A real sweep on the installed runtimes; later calls with the same grid reuse it."""
    cfg = SweepConfig(preset="tiny", backends=list(backends), batch_sizes=list(batches), timing=QUICK,
                      out=_ROOT / f"{'-'.join(backends)}-{'-'.join(map(str, batches))}")
    return Sweep(cfg, log=lambda s: None).run().path


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("report", "inputs"))
    return dst


def read_records(run: Path) -> list[dict]:
    """The run's records as readers see them (one per job)."""
    return RunDir(run).records()


def write_records(run: Path, records: list[dict]) -> None:
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [(tag, k, v or "") for k, v in attrs if k in ("src", "href", "srcset", "data", "poster")]


def external_references(page: str) -> list[str]:
    """Everything in an HTML page that a browser would fetch from somewhere other than the page itself."""
    parser = _Refs()
    parser.feed(page)
    out = [f"<{t} {k}={v[:60]}>" for t, k, v in parser.refs if not (v.startswith("data:") or v.startswith("#"))]
    out += [f"<{t}>" for t in parser.tags if t in ("script", "link", "iframe", "object", "embed")]
    out += re.findall(r"url\(\s*['\"]?(?!data:)[^)]*\)", page)
    out += re.findall(r"@import[^;]*;", page)
    return out
