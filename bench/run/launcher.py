"""Starts each job in a fresh process with a timeout; crashes and hangs fail that job only.

Processes fork from a forkserver that has imported the worker (numpy, scipy, the harness, no runtime) once: a job
imports only its own runtime, not seconds of harness imports on a busy machine (tests/test_job_process.py)."""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection, wait
from pathlib import Path

from backends.registry import load_class
from bench.measure.jobspec import Job
from bench.measure.timing import ProcessBaton
from bench.measure.worker import child_main

TRACEBACK_STARTS = ("Traceback (most recent call last):", "Fatal Python error:")
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
MAX_TRACEBACK_LINES = 60


def _log_tail(path: Path, name: str) -> str:
    """What the job's process logged last: its last traceback (Python's, or faulthandler's on a fatal signal), else
    its last line. Output logged before the process started (a variant's build) is not the job's."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith("Extension modules:")]  # faulthandler's list of every module
    except OSError:
        return ""
    header = [i for i, ln in enumerate(lines) if ln.startswith(f"job {name}:")]
    lines = lines[header[-1]:] if header else lines
    starts = [i for i, ln in enumerate(lines) if ln.startswith(TRACEBACK_STARTS)]
    while len(starts) > 1 and lines[starts[-1] - 1].startswith(CHAINED):  # keep a chain of exceptions whole
        starts.pop()
    if starts:
        return "\n" + "\n".join(lines[starts[-1]:][-MAX_TRACEBACK_LINES:])
    return f" (log: {lines[-1]})" if lines else ""


_CTX = mp.get_context("forkserver")
_CTX.set_forkserver_preload(["bench.measure.worker"])


def launch(*jobs: Job) -> list[dict]:
    """Run one job (one replica), or a pair timed in turns (bench.measure.worker.run_jobs), in its own process and
    return their lines, whatever happens to the process (its failure is every job's). A pair runs in one process,
    or in two timed in turns through a ProcessBaton where a side's backend says its models are not timed alike in one
    process (`Backend.pairs_in_one_process`)."""
    deadline = time.monotonic() + sum(job.timeout_s for job in jobs)
    if len(jobs) == 2 and not all(load_class(job.backend_entry).pairs_in_one_process for job in jobs):
        baton = ProcessBaton(_CTX)
        started = [_start((job,), baton, side) for side, job in enumerate(jobs)]
        for side, (_, proc, _, _) in enumerate(started):  # one that dies (a crash) leaves the other to go on alone
            threading.Thread(target=_on_exit, args=(proc, partial(baton.ended, side)), daemon=True).start()
        return [line for one in started for line in _collect(*one, deadline)]
    return _collect(*_start(jobs), deadline)


def _on_exit(proc: mp.Process, then: Callable[[], None]) -> None:
    wait([proc.sentinel])  # waits only: the exit code stays for _collect to read
    then()


def _start(jobs: tuple[Job, ...], baton: ProcessBaton | None = None, side: int = 0
           ) -> tuple[tuple[Job, ...], mp.Process, Connection, Path]:
    log_path = Path(jobs[0].run_dir) / "logs" / f"{jobs[0].replica_id}.log"
    recv, send = _CTX.Pipe(duplex=False)
    proc = _CTX.Process(target=child_main, args=(jobs, send, str(log_path), baton, side), daemon=True)
    proc.start()
    send.close()
    return jobs, proc, recv, log_path


def _collect(jobs: tuple[Job, ...], proc: mp.Process, recv: Connection, log_path: Path, deadline: float
             ) -> list[dict]:
    """The process's lines: its records, or its failure as each job's."""
    try:
        if not recv.poll(max(deadline - time.monotonic(), 0)):
            proc.kill()
            proc.join(5)
            timeout = sum(job.timeout_s for job in jobs)
            return [job.outcome("failed", f"timed out after {timeout:g}s" + _log_tail(log_path, job.replica_id))
                    for job in jobs]
        try:
            records = recv.recv()
        except EOFError:  # the process died before sending its records
            records = None
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    finally:
        recv.close()
    if records is not None:
        return records
    code = proc.exitcode
    why = f"worker exited with code {code} before sending a record"
    if code is not None and code < 0:
        try:
            why = f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            why = f"worker killed by signal {-code}"
    return [job.outcome("failed", why + _log_tail(log_path, job.replica_id)) for job in jobs]
