"""Runs one job inside its own process: load, warm up, measure, check quality, build the record."""

from __future__ import annotations

import hashlib
import os
import resource
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil

from backends.base import BackendOptions
from backends.registry import load_class, load_entry
from bench import scenarios
from bench.jobs import Job
from bench.records import RunDir, now_iso


def peak_rss_bytes() -> int:
    """High-water mark of this process's resident set (kernel-tracked, not sampled)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def artifact_bytes(path: str) -> int:
    """Size on disk, counting an OpenVINO IR's .bin or ONNX external data beside the file."""
    p = Path(path)
    extra = p.with_suffix(".bin") if p.suffix == ".xml" else None
    return p.stat().st_size + (extra.stat().st_size if extra and extra.exists() else 0)


def measure_quality(backend, job: Job) -> dict | None:
    """Score the held-out set through the backend itself, with the model family's own evaluator."""
    if not job.reference:
        return None
    return load_entry(job.quality_entry)(backend.run, job.reference, job.timing.quality_samples)


@contextmanager
def injected_delay(backend, delay_ms: float):
    """Busy-wait `delay_ms` after every infer(): a known slowdown to prove a regression gate catches one."""
    if not delay_ms:
        yield
        return
    infer, delay_ns = backend.infer, int(delay_ms * 1e6)

    def slowed(handle):
        infer(handle)
        end = time.perf_counter_ns() + delay_ns
        while time.perf_counter_ns() < end:
            pass

    backend.infer = slowed
    try:
        yield
    finally:
        del backend.infer


def run_job(job: Job) -> dict:
    started = now_iso()
    if job.affinity:
        os.sched_setaffinity(0, job.affinity)
    if job.memory_cap_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (job.memory_cap_bytes, job.memory_cap_bytes))
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    backend = load_class(job.backend_entry)()
    options = BackendOptions(device=job.device, threads=job.threads, inputs=job.inputs, extra=job.backend_options,
                             batch_size=job.batch_size)
    t0 = time.perf_counter()
    backend.load(job.artifact, options)
    load_s = time.perf_counter() - t0
    rss_loaded = proc.memory_info().rss
    pool = np.load(job.inputs_path)
    batches = [{k.split("/", 1)[1]: pool[k] for k in pool.files if k.startswith(f"{i}/")} for i in
               range(job.timing.pool_size)]
    handles = [backend.prepare(b) for b in batches]
    t0 = time.perf_counter()
    backend.infer(handles[0])
    backend.synchronize()
    first_infer_ms = (time.perf_counter() - t0) * 1e3
    with injected_delay(backend, float(job.backend_options.get("inject_delay_ms", 0))):
        summary, measurement = scenarios.get(job.scenario)(backend, handles, job)
    run_dir = RunDir(Path(job.run_dir))
    run_dir.save_raw(job.job_id, measurement.latencies_ns)
    for phase, values in (measurement.device_ms or {}).items():
        run_dir.save_raw(f"{job.job_id}.device-{phase}-ms", values)
    quality = measure_quality(backend, job)
    peak = peak_rss_bytes()
    flops = job.flops_per_sample
    return job.outcome(
        "ok", None, started, **summary, load_s=load_s, first_infer_ms=first_infer_ms, peak_rss_bytes=peak,
        load_rss_bytes=rss_loaded - rss_start, rss_start_bytes=rss_start,
        model_bytes=artifact_bytes(job.artifact), artifact_sha256=file_sha256(job.artifact),
        quality=quality, achieved_gflops=flops * summary["throughput_sps"] / 1e9 if flops else None,
        backend_settings=backend.describe(), **backend.memory(),
    )


def child_main(job: Job, conn, log_path: str) -> None:
    """Entry point of the spawned process: stdout/stderr go to the job's log, the record to the pipe."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        record = run_job(job)
    except BaseException as e:  # noqa: BLE001 - any failure becomes this job's record
        traceback.print_exc()
        record = job.outcome("failed", f"{type(e).__name__}: {e}".splitlines()[0][:500])
    conn.send(record)
    conn.close()
