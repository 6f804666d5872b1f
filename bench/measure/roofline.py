"""Where a job sits against this machine's measured peaks: FLOPs and bytes per sample, achieved rates, the bound."""

from __future__ import annotations

OVERHEAD_BELOW = 0.10  # a job under 10% of every peak is bound by per-call overhead, not by the machine


def fields(flops_per_sample: float | None, notes: dict, batch: int, throughput_sps: float, variant: str,
           threads: int, peaks: dict | None) -> dict:
    """Record fields: bytes per sample (gathered embedding rows + dense weights read once per batch), achieved
    GB/s, and with the machine's peaks the fraction of each peak and the bound the job is closest to."""
    gather = notes.get("gather_bytes_per_sample")
    dense = notes.get("dense_bytes")
    if gather is None or dense is None:
        return {"bytes_per_sample": None, "achieved_gbps": None, "bound": None}
    per_sample = gather + dense / batch
    out: dict = {"bytes_per_sample": per_sample, "gather_bytes_per_sample": gather,
                 "achieved_gbps": per_sample * throughput_sps / 1e9, "bound": None}
    if not peaks:
        out["roofline_note"] = "no machine peaks cached: run `recbench machine`"
        return out
    # the GEMM peak that applies (int8 for int8-quantized layers, else fp32), scaled to the job's thread count
    # (GEMM scales with cores; peaks are measured on every usable core)
    int8 = any(step in variant.split("+") for step in ("int8-dynamic", "int8-static"))
    key = "int8_gemm_gops" if int8 and peaks.get("int8_gemm_gops") else "fp32_gemm_gflops"
    scale = min(1.0, threads / peaks["threads"]) if peaks.get("threads") else 1.0
    peak = peaks[key] * scale if peaks.get(key) else None
    fractions = {
        "compute": flops_per_sample * throughput_sps / 1e9 / peak if flops_per_sample and peak else None,
        "memory": dense / batch * throughput_sps / 1e9 / peaks["triad_gbps"],
        "gather": gather * throughput_sps / 1e9 / peaks["gather_gbps"],
    }
    known = {k: v for k, v in fractions.items() if v is not None}
    bound = max(known, key=known.get)
    out.update(peak_used=key, peak_gflops=peak, roofline=fractions, fraction_of_peak=known[bound],
               bound=bound if known[bound] >= OVERHEAD_BELOW else "overhead")
    return out
