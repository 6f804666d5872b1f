"""Starts each job in a fresh process with a timeout; crashes and hangs fail that job only.

Processes fork from a forkserver that has imported the worker (numpy, scipy, the harness, no runtime) once: a job
imports only its own runtime, not seconds of harness imports on a busy machine (tests/test_job_process.py)."""

from __future__ import annotations

import multiprocessing as mp
import signal
from pathlib import Path

from bench.measure.jobspec import Job
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
    """Run one job (one replica), or a pair timed in turns in one process (bench.measure.worker.run_jobs), in its own
    process and return their lines, whatever happens to the process (its failure is every job's)."""
    log_path = Path(jobs[0].run_dir) / "logs" / f"{jobs[0].replica_id}.log"
    timeout = sum(job.timeout_s for job in jobs)
    recv, send = _CTX.Pipe(duplex=False)
    proc = _CTX.Process(target=child_main, args=(jobs, send, str(log_path)), daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout):
            proc.kill()
            proc.join(5)
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
