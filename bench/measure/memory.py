"""Memory of the job's process: kernel-tracked RSS high-water mark and GPU memory through NVML."""

from __future__ import annotations

import os
import resource

from backends.gpu import nvml


def peak_rss_bytes() -> int:
    """High-water mark of this process's resident set: VmHWM of /proc/self/status (kernel-tracked, not sampled).
    Not ru_maxrss: a forked process (spawn, forkserver) starts at the parent's RSS at fork time, carried over the
    exec (measured 280 MiB for a 14 MiB fresh child)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def nvml_process_bytes() -> int | None:
    """GPU memory NVML says this process holds, summed over GPUs; None without nvidia-ml-py or a GPU."""
    try:
        nv = nvml()
    except RuntimeError:
        return None
    try:
        mine = [int(p.usedGpuMemory) for i in range(nv.nvmlDeviceGetCount())
                for p in nv.nvmlDeviceGetComputeRunningProcesses(nv.nvmlDeviceGetHandleByIndex(i))
                if p.pid == os.getpid() and p.usedGpuMemory is not None]
        return sum(mine) if mine else None
    except nv.NVMLError:
        return None
    finally:
        nv.nvmlShutdown()
