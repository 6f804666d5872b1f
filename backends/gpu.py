"""GPU facts shared by the CUDA backends and env.json: why CUDA is unusable, device indices, NVML readings."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from backends.base import missing_modules

TORCH_CUDA_HINT = "pip install torch --index-url https://download.pytorch.org/whl/cu126 (or another CUDA build)"


@dataclass
class CudaFacts:
    """What this machine says about CUDA; gathered by cuda_facts(), judged by torch_cuda_reason()."""

    torch_version: str | None  # None: torch is not installed
    torch_cuda: str | None  # torch.version.cuda; None for a CPU-only build
    torch_gpus: list[str] = field(default_factory=list)  # devices torch can use, in CUDA index order
    nvml_gpus: list[str] | None = None  # devices the driver reports; None when NVML could not be asked
    nvml_error: str | None = None
    driver: str | None = None
    visible_devices: str | None = None  # CUDA_VISIBLE_DEVICES as set, None when unset


def torch_cuda_reason(f: CudaFacts) -> str | None:
    """Why PyTorch cannot run on a GPU here, in one line; None when it can."""
    if f.torch_version is None:
        return f"torch not installed: {TORCH_CUDA_HINT}"
    if f.torch_cuda is None:
        return f"torch {f.torch_version} is a CPU-only build (torch.version.cuda is None): {TORCH_CUDA_HINT}"
    if f.torch_gpus:
        return None
    where = f"torch {f.torch_version} (CUDA {f.torch_cuda}) finds no GPU"
    if f.nvml_gpus is None:
        return f"{where}: no NVIDIA driver answers (NVML: {f.nvml_error or 'nvidia-ml-py not installed'})"
    if not f.nvml_gpus:
        return f"{where}: NVIDIA driver {f.driver} reports no GPU"
    if f.visible_devices is not None:
        return f"{where}: CUDA_VISIBLE_DEVICES={f.visible_devices!r} hides the {len(f.nvml_gpus)} GPU(s) " \
               f"the driver reports ({', '.join(f.nvml_gpus)})"
    return f"{where} although driver {f.driver} reports {', '.join(f.nvml_gpus)}: is the driver too old for " \
           f"CUDA {f.torch_cuda}?"


def device_index(device: str) -> int:
    """'cuda' -> 0, 'cuda:N' -> N; anything else is a bad device string."""
    m = re.fullmatch(r"cuda(?::(\d+))?", device.strip())
    if not m:
        raise ValueError(f"bad CUDA device '{device}': use cuda or cuda:N")
    return int(m.group(1) or 0)


def device_reason(device: str, gpus: list[str]) -> str | None:
    """Why `device` cannot be used given the GPUs torch sees (in index order); None when it can."""
    try:
        index = device_index(device)
    except ValueError as e:
        return str(e)
    if index < len(gpus):
        return None
    have = ", ".join(f"cuda:{i} = {name}" for i, name in enumerate(gpus)) or "none"
    return f"{device} does not exist: this machine has {len(gpus)} usable GPU(s) ({have})"


def nvml():
    """The pynvml module, initialised; raises RuntimeError with the reason when NVML is unusable."""
    if missing_modules("pynvml"):
        raise RuntimeError("nvidia-ml-py not installed: pip install recbench[cuda]")
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        raise RuntimeError(f"{type(e).__name__}: {e}") from None
    return pynvml


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read(fn, *args):
    """One NVML reading, or None where the device or driver does not support it."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends: the field is just unknown
        return None


def nvml_gpus() -> tuple[list[dict], str | None]:
    """Every GPU the driver reports, with the clocks it runs at right now; or ([], why NVML can't tell)."""
    try:
        nv = nvml()
    except RuntimeError as e:
        return [], str(e)
    driver_cuda = _read(nv.nvmlSystemGetCudaDriverVersion_v2)
    gpus = []
    for i in range(nv.nvmlDeviceGetCount()):
        h = nv.nvmlDeviceGetHandleByIndex(i)
        cc = _read(nv.nvmlDeviceGetCudaComputeCapability, h)
        gpus.append({
            "index": i,
            "name": _text(nv.nvmlDeviceGetName(h)),
            "uuid": _text(_read(nv.nvmlDeviceGetUUID, h)),
            "memory_bytes": int(nv.nvmlDeviceGetMemoryInfo(h).total),
            "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None,
            "driver": _text(nv.nvmlSystemGetDriverVersion()),
            "driver_cuda_version": f"{driver_cuda // 1000}.{driver_cuda % 1000 // 10}" if driver_cuda else None,
            "sm_clock_mhz": _read(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
            "mem_clock_mhz": _read(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
            "max_sm_clock_mhz": _read(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_SM),
            "power_limit_w": (lambda mw: mw / 1000 if mw else None)(_read(nv.nvmlDeviceGetPowerManagementLimit, h)),
            "temperature_c": _read(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
            "persistence_mode": _read(nv.nvmlDeviceGetPersistenceMode, h),
        })
    return gpus, None


def cuda_facts() -> CudaFacts:
    """Ask torch and the driver; never raises."""
    if missing_modules("torch"):
        return CudaFacts(None, None)
    import torch

    facts = CudaFacts(torch.__version__, torch.version.cuda, visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    if facts.torch_cuda is None:
        return facts
    if torch.cuda.is_available():
        facts.torch_gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    gpus, facts.nvml_error = nvml_gpus()
    if facts.nvml_error is None:
        facts.nvml_gpus = [g["name"] for g in gpus]
        facts.driver = gpus[0]["driver"] if gpus else None
    return facts


def torch_cuda_status(device: str | None = None) -> tuple[bool, str]:
    """(usable, reason) for PyTorch on CUDA, and for one device when given."""
    facts = cuda_facts()
    why = torch_cuda_reason(facts)
    if why is None and device is not None:
        why = device_reason(device, facts.torch_gpus)
    if why:
        return False, why
    return True, f"available: {', '.join(facts.torch_gpus)} (torch {facts.torch_version}, CUDA {facts.torch_cuda})"
