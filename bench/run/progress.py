"""Run progress, counted in replicas: a bar with an ETA on a terminal, one line per replica as it ends when piped
(CI logs, `| tee`); everything else written to this process's stdout/stderr during a run goes to a job's log."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.run.interleave import Planned


@contextmanager
def output_to(log_path: Path) -> Iterator[None]:
    """File descriptors 1 and 2 (Python, C++ libraries, warnings) point at `log_path` (appended) inside the block;
    restored after, whatever happens."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (*saved, fd):
            os.close(f)


def detached(console: Console) -> Console:
    """A console writing to its own copy of the terminal's descriptor, so `output_to` never swallows it."""
    try:
        fileno = console.file.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (pytest's capture, a StringIO)
        return console
    return Console(file=os.fdopen(os.dup(fileno), "w", buffering=1), width=console.width,
                   force_terminal=console.is_terminal, stderr=False, emoji=False)


def result_line(record: dict) -> str:
    """One replica's line (or a job's): id, replica, status, and p50 + throughput when it measured, else why not."""
    name = record["job_id"] + (f" r{record['replica']}" if (record.get("repeat") or 1) > 1 else "")
    status = record.get("status", "?")
    if status != "ok":
        return f"{name} {status}: {record.get('reason') or ''}"
    p50 = (record.get("latency_ms") or {}).get("p50")
    tput = record.get("throughput_sps")
    shown = [f"p50 {p50:.4g} ms" if p50 is not None else "p50 -", f"{tput:,.0f} samples/s" if tput else ""]
    return f"{name} ok {' '.join(s for s in shown if s)}" + ("" if record.get("stable", True) else " (unstable)")


def look_line(label: str, ratio: tuple[float, float, float], verdict: str, threshold: float, left_s: float) -> str:
    """One metric at one look of a sequential comparison: 'p50 b64: x1.08 [1.03, 1.14] — deciding vs 10%, <= 2 min
    left', or its verdict once decided."""
    state = f"deciding vs {threshold:.0%}, <= {math.ceil(max(left_s, 0) / 60)} min left" \
        if verdict == "inconclusive" and left_s > 0 else verdict
    return f"{label}: x{ratio[0]:.3f} [{ratio[1]:.3f}, {ratio[2]:.3f}] — {state}"


class SweepProgress:
    """Use as a context manager; `log` prints without tearing the bar. Counts replicas: jobs x repeat in all."""

    def __init__(self, console: Console):
        self.console = console = detached(console)  # library output during a variant build goes to the job's log
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                            transient=False) if console.is_terminal else None
        self.total, self.done, self.repeat, self.task = 0, 0, 1, None

    def __enter__(self) -> SweepProgress:
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def log(self, text: str) -> None:
        (self.bar.console if self.bar else self.console).print(text, highlight=False, soft_wrap=True)

    def start(self, jobs: int, repeat: int) -> None:
        self.total, self.repeat = jobs * repeat, repeat
        if self.bar:
            self.task = self.bar.add_task("sweep", total=self.total)

    def launched(self, plan: Planned, k: int) -> None:
        """Replica k of a job started: the bar names it."""
        if self.bar:
            j = plan.job
            self.bar.update(self.task, description=f"{j.variant} {j.backend} {j.scenario} b{j.batch_size}"
                                                   + (f" r{k}" if self.repeat > 1 else ""))

    def finished(self, line: dict) -> None:
        """A replica ended; a job that will not run its other replicas (skipped, or its first replica failed)
        settles them all at once."""
        settled = self.repeat if line["status"] != "ok" and not line.get("replica") else 1
        self.done += settled
        if self.bar:
            self.bar.advance(self.task, settled)
        else:
            self.console.print(f"[{self.done}/{self.total}] {escape(result_line(line))}", highlight=False,
                               soft_wrap=True)
