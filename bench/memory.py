"""Memory of the job's process: kernel-tracked RSS high-water mark and GPU memory through NVML."""

from __future__ import annotations

import os
import resource


def peak_rss_bytes() -> int:
    """High-water mark of this process's resident set (kernel-tracked, not sampled)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def nvml_process_bytes() -> int | None:
    """GPU memory NVML says this process holds, summed over GPUs; None without nvidia-ml-py or a GPU."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        total, seen = 0, False
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if p.pid == os.getpid() and p.usedGpuMemory is not None:
                    total, seen = total + int(p.usedGpuMemory), True
        return total if seen else None
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()
