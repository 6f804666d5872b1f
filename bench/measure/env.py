"""The environment a run was measured in: hardware, OS, runtime versions, git revision."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata

import psutil

PACKAGES = ("recbench", "torch", "onnxruntime", "onnxruntime-gpu", "openvino", "tensorrt", "nvidia-ml-py", "numpy",
            "nncf", "onnx")


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    wanted = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni"}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return sorted(wanted & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return []


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _git_revision() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        return rev.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cuda() -> dict:
    """GPUs as the driver reports them (name, driver, CUDA version, clocks at the start of the run) and the CUDA
    build of torch; `gpu_error` says why there are none where NVML cannot be asked."""
    from backends.gpu import cuda_facts, nvml_gpus

    gpus, error = nvml_gpus()
    facts = cuda_facts()
    return {"gpus": gpus, "gpu_error": error, "torch_cuda": facts.torch_cuda, "torch_gpus": facts.torch_gpus,
            "cuda_visible_devices": facts.visible_devices}


def capture() -> dict:
    env = {
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": _versions(),
        "git_revision": _git_revision(),
        **_cuda(),
    }
    env["env_id"] = hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()[:12]
    return env
