"""Progress counts replicas: jobs x repeat in all, one piped line per replica as it ends."""

import io

from rich.console import Console

from bench.run.progress import SweepProgress


def test_piped_progress_prints_a_line_per_replica_and_ends_at_its_total():
    out = io.StringIO()
    lines = [{"job_id": "000-a", "replica": 0, "repeat": 3, "status": "skipped", "reason": "no runtime"},
             {"job_id": "001-b", "replica": 0, "repeat": 3, "status": "ok", "latency_ms": {"p50": 0.41},
              "throughput_sps": 2431.0},
             {"job_id": "002-c", "replica": 0, "repeat": 3, "status": "failed", "reason": "boom"},
             {"job_id": "001-b", "replica": 1, "repeat": 3, "status": "failed", "reason": "killed"},
             {"job_id": "001-b", "replica": 2, "repeat": 3, "status": "ok", "latency_ms": {"p50": 0.4},
              "throughput_sps": 2500.0, "stable": False}]
    with SweepProgress(Console(file=out, width=200)) as progress:
        progress.start(3, 3)
        for line in lines:
            progress.finished(line)
    assert out.getvalue().splitlines() == [
        "[3/9] 000-a r0 skipped: no runtime",  # a job that runs no replica settles all three
        "[4/9] 001-b r0 ok p50 0.41 ms 2,431 samples/s",
        "[7/9] 002-c r0 failed: boom",  # its first replica failed: not run again
        "[8/9] 001-b r1 failed: killed",
        "[9/9] 001-b r2 ok p50 0.4 ms 2,500 samples/s (unstable)"]
