"""Starts each job in a fresh process with a timeout; crashes and hangs fail that job only.

Processes fork from a forkserver that has imported the worker (numpy, scipy, the harness) once: a job still gets
its own process and imports its runtime itself, but no longer pays seconds of harness imports on a busy machine.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from pathlib import Path

from bench.jobs import Job
from bench.worker import child_main


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with code {code} before sending a record"


def _log_tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return f" (log: {lines[-1]})" if lines else ""


_CTX = mp.get_context("forkserver")
_CTX.set_forkserver_preload(["bench.worker"])


def launch(job: Job) -> dict:
    """Run `job` in its own process and return its record, whatever happens to the process."""
    ctx = _CTX
    log_path = Path(job.run_dir) / "logs" / f"{job.job_id}.log"
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child_main, args=(job, send, str(log_path)), daemon=True)
    proc.start()
    send.close()
    record = None
    try:
        if recv.poll(job.timeout_s):
            try:
                record = recv.recv()
            except EOFError:
                record = None
        else:
            proc.kill()
            proc.join(5)
            return job.outcome("failed", f"timed out after {job.timeout_s:g}s" + _log_tail(log_path))
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    finally:
        recv.close()
    if record is None:
        return job.outcome("failed", _exit_reason(proc.exitcode) + _log_tail(log_path))
    return record
