"""Runs one job inside its own process: load, warm up, measure, check quality, build the record."""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import sys
import time
import traceback
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import psutil

from backends.base import BackendOptions, NotInEffect, artifact_files, artifact_sha256
from backends.registry import load_class, load_entry
from bench.config.harness_options import split_options
from bench.config.profiles import usable_cores
from bench.measure import noise, ops, roofline, scenarios
from bench.measure.energy import EnergyMeter, counters_for
from bench.measure.inputs import InputPool
from bench.measure.jobspec import Job
from bench.measure.memory import nvml_process_bytes, peak_rss_bytes
from bench.measure.timing import Baton, Measurement, ProcessBaton, ScenarioContext, run_threads
from bench.records.rundir import RunDir, now_iso
from models.fileio import cache_root


def artifact_bytes(path: str) -> int:
    """Size on disk, counting an OpenVINO IR's .bin beside the file."""
    return sum(f.stat().st_size for f in artifact_files(path))


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


def run_job(job: Job, baton: Baton | ProcessBaton | None = None, side: int = 0) -> dict:
    """Load, warm up, measure, score quality, build the record; with `baton`, as `side` of a pair (its single-stream
    timing in turns with the other side's, in this process or another; what follows waits until the other is done
    timing)."""
    started = now_iso()
    if job.affinity:
        os.sched_setaffinity(0, job.affinity)
    if job.memory_cap_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (job.memory_cap_bytes, job.memory_cap_bytes))
    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    backend = load_class(job.backend_entry)()
    load = scenarios.scenario(job.scenario)
    harness, own = split_options(job.backend_options)
    options = BackendOptions(device=job.device, threads=job.threads, inputs=job.inputs, extra=own,
                             batch_size=job.batch_size, shapes=job.shapes, mode=load.mode,
                             cache_dir=str(cache_root()), paired=bool(baton and baton.in_process))
    art = job.artifacts
    t0 = time.perf_counter()
    try:
        backend.load(art.path, options)
    except NotInEffect as e:  # the runtime would not run what the variant asks for: nothing honest to measure
        return job.outcome("skipped", str(e), started)
    load_s = time.perf_counter() - t0
    rss_loaded, peak_loaded = proc.memory_info().rss, peak_rss_bytes()
    batches = InputPool.load(art.input_pool).batches
    n_handles = max(len(batches), load.handles(job.scenario_options, backend))
    handles = [backend.prepare(batches[i % len(batches)]) for i in range(n_handles)]
    t0 = time.perf_counter()
    backend.infer(handles[0])
    backend.synchronize()
    first_infer_ms = (time.perf_counter() - t0) * 1e3
    ctx = ScenarioContext(backend, handles, job.scenario_options, job.timing, job.batch_size,
                          InputPool.load(art.row_pool).batches[0] if art.row_pool else None, art.item_input,
                          turn=baton and partial(baton.run, side))
    cores = job.affinity or usable_cores()
    before = noise.Snapshot.take(cores)
    with injected_delay(backend, harness.inject_delay_ms), EnergyMeter(*counters_for(job.device)) as meter:
        summary, measurement = load.run(ctx)
    host = noise.between(before, noise.Snapshot.take(cores), cores, job.threads)
    if baton:
        baton.leave(side, wait=True)
    peak_run, gpu_nvml = peak_rss_bytes(), nvml_process_bytes()
    run_dir = RunDir(Path(job.run_dir))
    run_dir.save_raw(job.replica_id, measurement.latencies_ns)
    if measurement.requests:
        run_dir.save_requests(job.replica_id, measurement.requests)
    for phase, values in (measurement.device_ms or {}).items():
        run_dir.save_raw(f"{job.replica_id}.device-{phase}-ms", values)
    # the held-out set scored through the backend itself (the model family's evaluator), or the score it shares
    owner, quality = job.shared_quality or (None, load_entry(job.quality_entry)(
        backend.run, art.reference, job.timing.quality_samples) if art.reference else None)
    peak = peak_rss_bytes()
    flops = art.flops_per_sample
    explained = {**meter.fields(summary["samples"], summary["duration_s"]),
                 **roofline.fields(flops, art.variant_notes, job.batch_size, summary["throughput_sps"], job.variant,
                                   job.threads, job.machine_peaks)}
    if job.op_profile:  # a pass of its own after the timed phase and the memory readings
        explained["op_profile"] = ops.profile_job(backend, batches, summary["latency_ms"]["mean"], run_dir.path,
                                                  job.replica_id)
    harness_fields = dict(
        load_s=load_s, first_infer_ms=first_infer_ms, peak_rss_bytes=peak,
        load_rss_bytes=rss_loaded - rss_start, rss_start_bytes=rss_start,
        # high-water mark growth while loading, while measuring, and while scoring quality (they sum to peak - start)
        peak_rss_load_bytes=peak_loaded - rss_start, peak_rss_run_bytes=peak_run - peak_loaded,
        peak_rss_quality_bytes=peak - peak_run, gpu_mem_nvml_bytes=gpu_nvml,
        # what a deployed process adds by serving this model: runtime, model, inputs, inference (footprint budgets)
        footprint_bytes=peak_run - rss_start,
        scenario_options=job.scenario_options.model_dump(mode="json"), noise=host, cpu_time=cpu_time(measurement),
        warnings=[*harness_warnings(job, host), *summary.get("warnings", [])],
        model_bytes=artifact_bytes(art.path), artifact_sha256=artifact_sha256(art.path),
        quality=quality, **({"quality_from": owner} if owner else {}),
        achieved_gflops=flops * summary["throughput_sps"] / 1e9 if flops else None,
        backend_settings=backend.describe(), **explained,
    )
    # one merge, later sources win: a field two of them name can never fail the job (as ** keywords would)
    return job.outcome("ok", None, started, **{**summary, **backend.memory(), **harness_fields})


def cpu_time(m: Measurement) -> dict | None:
    """CPU per inference (infer call) and core-seconds per million samples, where the scenario timed the CPU."""
    n = len(m.latencies_ns)
    return {"per_inference_ms": m.cpu_s * 1e3 / n, "core_s_per_million": m.cpu_s * 1e6 / (n * m.samples_per_iter)
            } if m.cpu_s is not None and n else None


def harness_warnings(job: Job, host: dict) -> list[str]:
    """What the harness warns of beside the scenario's own warnings: a busy host, a graph slow on ONNX runtimes."""
    out = [f"host busy while measuring: {'; '.join(host['busy_reasons'])}"] if host["busy"] else []
    loops = job.artifacts.variant_notes.get("onnx_loop_ops") if job.artifacts.format == "onnx" else None
    if loops:
        out.append(f"the ONNX graph has {loops} Loop/Scan ops: usually a per-row embedding path (e.g. EmbeddingBag), "
                   "slow on ONNX runtimes")
    return out


def run_jobs(jobs: tuple[Job, ...], across: ProcessBaton | None = None, side: int = 0) -> list[dict]:
    """One job (`side` of a pair timed in turns with another process through `across`), or two (A and B of an
    interleaved pair) loaded side by side in this process and timed in turns (Baton): their records; an exception in
    either is raised (child_main records it as the process's jobs' failure)."""
    baton = Baton() if len(jobs) == 2 else across
    records: list[dict] = [{} for _ in jobs]

    def run(i: int) -> None:
        try:
            records[i] = run_job(jobs[i], baton, side + i)
        finally:
            if baton:
                baton.leave(side + i)

    run_threads(run, len(jobs), baton.serve if len(jobs) == 2 else None)
    return records


def child_main(jobs: tuple[Job, ...], conn, log_path: str, across: ProcessBaton | None = None, side: int = 0
               ) -> None:
    """Entry point of the spawned process (`across`, `side`: run_jobs): stdout/stderr go to the (first) job's log,
    the records to the pipe.

    The output is redirected first, so whatever fails later (a Python error anywhere, a fatal signal through
    faulthandler) leaves its traceback in the log, where the launcher finds it when no record arrives.
    """
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    faulthandler.enable()
    for job in jobs:
        print(f"job {job.replica_id}: {job.backend} on {job.device}, {job.scenario}, batch {job.batch_size}, "
              f"artifact {job.artifacts.path}", flush=True)
        # the job spec beside its log: `python -m bench.measure.worker logs/<job>.job.json` re-runs it alone
        job.save(Path(job.run_dir) / "logs" / f"{job.replica_id}.job.json")
    try:
        records = run_jobs(jobs, across, side)
    except BaseException as e:  # noqa: BLE001 - any failure becomes the record of each of the process's jobs
        traceback.print_exc()  # whole: screens cut it, records don't
        records = [job.outcome("failed", f"{type(e).__name__}: {e}".strip()) for job in jobs]
    for record in records:
        print(f"{record['status']}{': ' + record['reason'] if record.get('reason') else ''}", flush=True)
    conn.send(records)
    conn.close()


def main(argv: list[str]) -> None:
    """`python -m bench.measure.worker JOB.json`: run one job in this very process and print its record.

    For checking the harness from outside, e.g. peak RSS against `/usr/bin/time -v` on the same job.
    """
    print(json.dumps(run_job(Job.load(argv[0])), default=float))


if __name__ == "__main__":
    main(sys.argv[1:])
