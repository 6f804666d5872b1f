"""Helpers of scripts/gpu-check: the torch.profiler cross-check of CUDA-event times, and the reference report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from backends.base import BackendOptions
from backends.torch_cuda import TorchCUDA
from bench.records.rundir import RunDir, replica_raws
from bench.stats import hboot
from models.artifacts import Workspace
from models.registry import get_family
from models.variants import get_variant


def profiler_check(preset: str, batch: int, cuda_graphs: bool, iters: int = 200) -> dict:
    """Mean CUDA-event compute time per iteration vs the sum of the kernels torch.profiler saw, per iteration."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    ws = Workspace(get_family("dlrm"), preset)
    artifact = ws.prepare(get_variant("fp32"), {"torch"}).files["torch"]
    backend = TorchCUDA()
    backend.load(artifact, BackendOptions(device="cuda:0", inputs=ws.names, extra={"cuda_graphs": cuda_graphs}))
    handle = backend.prepare(ws.bench_inputs(batch, 1)[0])

    def loop() -> list[float]:
        times = []
        for _ in range(iters):
            backend.infer(handle)
            backend.synchronize()
            times.append(backend.device_times_ms()["compute"])
        return times

    loop()  # warm-up
    events = loop()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        loop()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    kernel_ms = sum(e.time_range.elapsed_us() for e in kernels) / 1e3 / iters
    event_ms = float(np.mean(events))
    return {"preset": preset, "batch": batch, "cuda_graphs": cuda_graphs, "iterations": iters,
            "event_compute_ms": event_ms, "profiler_kernel_ms": kernel_ms, "kernels_per_iter": len(kernels) / iters,
            "relative_gap": event_ms / kernel_ms - 1 if kernel_ms else None}


def _records(ref: Path) -> list[tuple[RunDir, dict]]:
    return [(RunDir(p.parent), r) for p in sorted(ref.glob("*/records.jsonl")) for r in RunDir(p.parent).records()]


def _find(recs, **want) -> tuple[RunDir, dict] | None:
    return next(((run, r) for run, r in recs if r["status"] == "ok" and all(
        r.get(k) == v or r.get("backend_settings", {}).get(k) == v for k, v in want.items())), None)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _row(run: RunDir, r: dict) -> str:
    head = f"| {run.run_id} | {r['backend']} | {r['variant']} {r.get('backend_settings', {}).get('dtype', '')} " \
           f"| {r['batch_size']} |"
    if r["status"] != "ok":
        return f"{head} | | | | | | {r['status']}: {r['reason']} |"
    dev = (r.get("device_ms") or {}).get("compute", {}).get("mean")
    share = r.get("device_share") or {}
    lat = r["latency_ms"]
    return (f"{head} {lat['p50']:.4f} | {lat['p99']:.4f} | {r['throughput_sps']:,.0f} | "
            f"{'' if dev is None else f'{dev:.4f}'} | {share.get('h2d', 0) + share.get('d2h', 0):.0%} | "
            f"{(r.get('gpu_mem_bytes') or 0) / 2**20:.1f} | ok |")


def report(ref: Path) -> str:
    """Markdown: the three targets of the GPU issue, quoted with their measurement, then every record."""
    recs = _records(ref)
    lines = [f"# GPU reference run {ref.name}", ""]
    env = next((run.env() for run, _ in recs), {})
    gpus = env.get("gpus") or [{}]
    lines += [f"GPU: {gpus[0].get('name')} (driver {gpus[0].get('driver')}, CUDA {gpus[0].get('driver_cuda_version')}, "
              f"SM clock at start {gpus[0].get('sm_clock_mhz')} MHz); torch {env.get('versions', {}).get('torch')}", "",
              "## Targets (measured, not asserted)", ""]
    eager, graphs = _find(recs, backend="torch-cuda", batch_size=1), _find(recs, backend="torch-cuda-graphs",
                                                                          batch_size=1)
    if eager and graphs:
        c = hboot.ratio(replica_raws(*graphs), replica_raws(*eager), "p50")  # eager over graphs: the speedup
        lines.append(f"- CUDA graphs vs eager, batch 1, p50 latency: {eager[1]['latency_ms']['p50']:.4f} -> "
                     f"{graphs[1]['latency_ms']['p50']:.4f} ms = {c.value:.2f}x faster (95% CI {c.ci[0]:.2f}-"
                     f"{c.ci[1]:.2f}); target >= 2x: {_verdict(c.value >= 2)}")
    fp32 = _find(recs, backend="torch-cuda", batch_size=4096, dtype="float32")
    fp16 = _find(recs, batch_size=4096, dtype="float16")
    if fp32 and fp16:
        ratio = fp16[1]["throughput_sps"] / fp32[1]["throughput_sps"]
        lines.append(f"- fp16 vs fp32, batch 4096, throughput: {fp32[1]['throughput_sps']:,.0f} -> "
                     f"{fp16[1]['throughput_sps']:,.0f} samples/s = {ratio:.2f}x; target >= 1.5x: "
                     f"{_verdict(ratio >= 1.5)}; AUC delta of fp16 {fp16[1]['quality']['auc_delta']:+.5f}")
    prof_path = ref / "profiler.json"
    for p in json.loads(prof_path.read_text()) if prof_path.exists() else []:
        gap = p["relative_gap"]
        lines.append(f"- CUDA-event compute time vs torch.profiler kernel time (batch {p['batch']}, "
                     f"{'graphs' if p['cuda_graphs'] else 'eager'}): {p['event_compute_ms']:.4f} vs "
                     f"{p['profiler_kernel_ms']:.4f} ms ({gap:+.1%}); target within 10%: {_verdict(abs(gap) <= 0.10)}")
    lines += ["", "## Every job", "", "| run | backend | variant | batch | p50 ms | p99 ms | samples/s "
              "| GPU compute ms | H2D+D2H share | GPU mem MiB | status |", "|" + "---|" * 11]
    lines += [_row(run, r) for run, r in recs]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("profile", help="cross-check event times against torch.profiler")
    p.add_argument("--preset", default="edge")
    p.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("report", help="write report.md for a reference folder")
    r.add_argument("ref", type=Path)
    args = ap.parse_args()
    if args.cmd == "profile":
        checks = [profiler_check(args.preset, 4096, False), profiler_check(args.preset, 1, True)]
        args.out.write_text(json.dumps(checks, indent=1))
    else:
        (args.ref / "report.md").write_text(report(args.ref))
        print((args.ref / "report.md").read_text())


if __name__ == "__main__":
    main()
