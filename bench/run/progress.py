"""Run progress, counted in replicas: a bar with an ETA on a terminal, one line per replica as it ends when piped
(CI logs, `| tee`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.run.capture import detached
from bench.run.interleave import Planned


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
