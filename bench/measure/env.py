"""The environment a run was measured in: hardware, OS, runtime versions, git revision."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

PACKAGES = ("recbench", "torch", "onnxruntime", "onnxruntime-gpu", "openvino", "tensorrt", "nvidia-ml-py", "numpy",
            "nncf", "onnx")
CPU_FLAGS = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni"}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def capture() -> dict:
    """This machine's facts (hardware, OS, versions, git revision) and their hash, `env_id`."""
    from backends.gpu import cuda_facts, nvml_gpus

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    try:
        rev = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    gpus, gpu_error = nvml_gpus()
    facts = cuda_facts()
    env = {
        # the CPU's model name and which of the vector/matrix features the runtimes use it has
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_flags": sorted(CPU_FLAGS & set(info.get("flags", "").split())),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {pkg: _version(pkg) for pkg in PACKAGES},
        "git_revision": rev,
        # GPUs as the driver reports them (clocks at the start of the run), and the CUDA build of torch
        "gpus": gpus, "gpu_error": gpu_error, "torch_cuda": facts.torch_cuda, "torch_gpus": facts.torch_gpus,
        "cuda_visible_devices": facts.visible_devices,
    }
    env["env_id"] = hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:12]
    return env
