"""Sweep progress: a bar with an ETA on a terminal, one line per finished job when piped (CI logs, `| tee`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.run.capture import detached


def job_line(record: dict) -> str:
    """One finished job: id, status, and p50 + throughput when it measured, else why not."""
    status = record.get("status", "?")
    if status != "ok":
        return f"{record['job_id']} {status}: {record.get('reason') or ''}"
    p50 = (record.get("latency_ms") or {}).get("p50")
    tput = record.get("throughput_sps")
    shown = [f"p50 {p50:.4g} ms" if p50 is not None else "p50 -", f"{tput:,.0f} samples/s" if tput else ""]
    return f"{record['job_id']} ok {' '.join(s for s in shown if s)}" + ("" if record.get("stable", True)
                                                                      else " (unstable)")


class SweepProgress:
    """Use as a context manager; `log` prints without tearing the bar."""

    def __init__(self, console: Console):
        self.console = console = detached(console)  # library output during a variant build goes to the job's log
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                            transient=False) if console.is_terminal else None
        self.total, self.done, self.task = 0, 0, None

    def __enter__(self) -> SweepProgress:
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def log(self, text: str) -> None:
        (self.bar.console if self.bar else self.console).print(text, highlight=False, soft_wrap=True)

    def start(self, total: int) -> None:
        self.total = total
        if self.bar:
            self.task = self.bar.add_task("sweep", total=total)

    def job_started(self, description: str) -> None:
        if self.bar:
            self.bar.update(self.task, description=description)

    def job_finished(self, record: dict) -> None:
        self.done += 1
        if self.bar:
            self.bar.advance(self.task)
        else:
            self.console.print(f"[{self.done}/{self.total}] {escape(job_line(record))}", highlight=False,
                               soft_wrap=True)
