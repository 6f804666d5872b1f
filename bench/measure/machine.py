"""`recbench machine`: this machine's measured peaks (GEMM, STREAM triad, Zipf gather), cached with the environment."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.measure.env import capture
from bench.records.rundir import now_iso, write_json_atomic
from models.artifacts import cache_root
from models.data import zipf_ids

GEMM_N = 1024  # square matmul size for both GEMM peaks
TRIAD_ELEMS = 1 << 25  # 3 arrays x 128 MiB: well past any last-level cache
GATHER_ROWS, GATHER_DIM, GATHER_BATCH, ZIPF_EXPONENT = 1 << 20, 64, 1 << 16, 1.1  # 256 MiB table, 256 B rows
WINDOWS, WINDOW_S = 8, 0.5  # best of 8 windows of 0.5 s each: the least disturbed one on a shared machine


def best_rate(work: Callable[[], None], units: float) -> float:
    """Best units/s over WINDOWS timed windows of back-to-back calls (after 3 warm-up calls)."""
    for _ in range(3):
        work()
    best = 0.0
    for _ in range(WINDOWS):
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < WINDOW_S:
            work()
            n += 1
        best = max(best, n * units / (time.perf_counter() - t0))
    return best


def fp32_gemm_gflops() -> float:
    """numpy (its BLAS, every core it uses) on a 1024x1024 fp32 matmul."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((GEMM_N, GEMM_N), dtype=np.float32) for _ in range(2))
    return best_rate(lambda: a @ b, 2 * GEMM_N**3) / 1e9


def int8_gemm_gops(threads: int) -> tuple[float | None, str]:
    """ONNX Runtime MatMulInteger (u8 x s8 -> s32; MLAS picks VNNI/AMX kernels where the CPU has them)."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError as e:
        return None, f"not measured: {e.name} not installed"
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (GEMM_N, GEMM_N), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "int8_gemm",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [GEMM_N, GEMM_N])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [GEMM_N, GEMM_N])],
        [helper.make_tensor("w", TensorProto.INT8, w.shape, w.tobytes(), raw=True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {"a": rng.integers(0, 256, (GEMM_N, GEMM_N), dtype=np.uint8)}
    return best_rate(lambda: session.run(None, feed), 2 * GEMM_N**3) / 1e9, \
        f"onnxruntime {ort.__version__} MatMulInteger u8s8 {GEMM_N}x{GEMM_N}"


def triad_gbps(threads: int) -> float:
    """STREAM triad a = b + s*c in one fused pass (torch.add with alpha); 3 arrays of traffic per element."""
    import torch

    torch.set_num_threads(threads)
    b, c = torch.rand(TRIAD_ELEMS), torch.rand(TRIAD_ELEMS)
    a = torch.empty(TRIAD_ELEMS)
    return best_rate(lambda: torch.add(b, c, alpha=3.0, out=a), 3 * 4 * TRIAD_ELEMS) / 1e9


def gather_gbps(threads: int) -> float:
    """Random-row reads of an embedding table at the benchmark's Zipf exponent (torch.index_select)."""
    import torch

    torch.set_num_threads(threads)
    table = torch.rand(GATHER_ROWS, GATHER_DIM)
    ids = torch.from_numpy(zipf_ids(np.random.default_rng(0), GATHER_BATCH, GATHER_ROWS, ZIPF_EXPONENT))
    return best_rate(lambda: torch.index_select(table, 0, ids), GATHER_BATCH * GATHER_DIM * 4) / 1e9


def machine_key(env: dict) -> str:
    """Peaks depend on the CPU, its features, the cores we may use and the runtime versions."""
    facts = {k: env.get(k) for k in ("cpu", "cpu_flags", "usable_cores", "logical_cores", "ram_bytes")}
    facts["versions"] = {k: (env.get("versions") or {}).get(k) for k in ("numpy", "torch", "onnxruntime")}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]


def cache_path(env: dict) -> Path:
    return cache_root() / "machine" / f"{machine_key(env)}.json"


def measure(env: dict | None = None, log: Callable[[str], None] = lambda s: None) -> dict:
    """Measure every peak on all usable cores and cache the result under the machine's key."""
    env = env or capture()
    threads = len(os.sched_getaffinity(0))
    peaks: dict = {"measured_at": now_iso(), "key": machine_key(env), "cpu": env.get("cpu"),
                   "cpu_flags": env.get("cpu_flags"), "threads": threads}
    log("measuring int8 GEMM")
    peaks["int8_gemm_gops"], peaks["int8_gemm_how"] = int8_gemm_gops(threads)
    log("measuring STREAM triad")
    peaks["triad_gbps"] = triad_gbps(threads)
    log("measuring Zipf gather")
    peaks["gather_gbps"] = gather_gbps(threads)
    log("measuring fp32 GEMM")  # last: closest in time to a side-by-side numpy loop run right after
    peaks["fp32_gemm_gflops"] = fp32_gemm_gflops()
    path = cache_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, peaks)
    return peaks


def cached(env: dict) -> dict | None:
    """The peaks `recbench machine` measured on this machine, or None when it has not been run here."""
    try:
        return json.loads(cache_path(env).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def describe(peaks: dict) -> list[str]:
    """One line per peak (the fp32 GEMM line first)."""
    int8 = peaks.get("int8_gemm_gops")
    return [f"fp32 GEMM (numpy {GEMM_N}x{GEMM_N} matmul, {peaks['threads']} threads): "
            f"{peaks['fp32_gemm_gflops']:.1f} GFLOP/s",
            f"int8 GEMM ({peaks.get('int8_gemm_how')}): " + (f"{int8:.1f} GOP/s" if int8 else "-"),
            f"memory bandwidth (STREAM triad, torch, {TRIAD_ELEMS * 4 >> 20} MiB arrays): "
            f"{peaks['triad_gbps']:.1f} GB/s",
            f"gather bandwidth (Zipf {ZIPF_EXPONENT} rows of {GATHER_DIM * 4} B from a "
            f"{GATHER_ROWS * GATHER_DIM * 4 >> 20} MiB table): {peaks['gather_gbps']:.1f} GB/s",
            f"CPU features: {' '.join(peaks.get('cpu_flags') or []) or '-'}"]
