"""Memory of the job's process: kernel-tracked RSS high-water mark and GPU memory through NVML."""

from __future__ import annotations

import os
import resource


def peak_rss_bytes() -> int:
    """High-water mark of this process's resident set (kernel-tracked, not sampled).

    Linux: VmHWM of /proc/self/status. Not getrusage's ru_maxrss: in a process started by fork (+exec: the
    multiprocessing "spawn"; "forkserver", which the launcher uses, forks a small preloaded server) ru_maxrss
    starts at the parent's RSS at fork time, because the forked copy's high-water mark is carried over the exec;
    measured 280 MiB for a 14 MiB fresh child.
    """
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
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        mine = [int(p.usedGpuMemory) for i in range(pynvml.nvmlDeviceGetCount())
                for p in pynvml.nvmlDeviceGetComputeRunningProcesses(pynvml.nvmlDeviceGetHandleByIndex(i))
                if p.pid == os.getpid() and p.usedGpuMemory is not None]
        return sum(mine) if mine else None
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()
