"""How quiet the host was while a job measured: load, CPU others took, steal, frequency, threads vs cores (/proc)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

import psutil

OTHERS_BUSY = 0.10  # other processes took more than this share of our cores' time: the host was busy
STEAL_BUSY = 0.05  # the hypervisor took more than this share: a noisy neighbour on the physical host


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


class Snapshot(NamedTuple):
    """Counters at one instant: wall clock, our process's CPU time, the cores' (busy, steal, total) CPU seconds, the
    load average."""

    wall: float
    own_cpu_s: float
    cores_s: tuple[float, float, float]
    loadavg: tuple[float, float, float]

    @classmethod
    def take(cls, cores: list[int]) -> Snapshot:
        own = psutil.Process().cpu_times()
        per_cpu = psutil.cpu_times(percpu=True)  # /proc/stat's per-CPU lines
        times = [per_cpu[c] for c in cores if c < len(per_cpu)]
        busy = sum(t.user + t.nice + t.system + t.irq + t.softirq for t in times)
        cores_s = busy, sum(t.steal for t in times), sum(sum(t[:8]) for t in times)  # the 8 fields that partition time
        return cls(time.monotonic(), own.user + own.system, cores_s, os.getloadavg())


def busy_reasons(noise: dict) -> list[str]:
    """Why the host counts as busy for this measurement (empty: quiet enough)."""
    out = []
    if (noise.get("others_cpu_share") or 0) > OTHERS_BUSY:
        out.append(f"other processes took {noise['others_cpu_share']:.0%} of the cores' time")
    if (noise.get("steal_share") or 0) > STEAL_BUSY:
        out.append(f"the hypervisor stole {noise['steal_share']:.0%} of the cores' time")
    if out and (noise.get("threads_configured") or 0) >= (noise.get("cores_available") or 1) > 1:
        out.append(f"{noise['threads_configured']} runtime threads on {noise['cores_available']} shared cores: a "
                   "parallel region waits for its descheduled threads (try --threads 1)")
    return out


def between(before: Snapshot, after: Snapshot, cores: list[int], threads: int) -> dict:
    """The record's `noise` fields for the interval between two snapshots."""
    wall = max(after.wall - before.wall, 1e-9)
    busy, steal, total = (a - b for a, b in zip(after.cores_s, before.cores_s, strict=True))
    own = after.own_cpu_s - before.own_cpu_s
    capacity = wall * len(cores)
    measured = total > 0
    freq = f"/sys/devices/system/cpu/cpu{cores[0] if cores else 0}/cpufreq"
    khz = _read(f"{freq}/scaling_cur_freq")
    noise = {
        "loadavg_before": list(before.loadavg), "loadavg_after": list(after.loadavg),
        "others_cpu_share": max(0.0, busy - own) / capacity if measured else None,
        "own_cpu_share": own / capacity,
        "steal_share": steal / capacity if measured else None,
        "cores_available": len(cores), "threads_configured": threads,
        "threads_running": psutil.Process().num_threads(), "seconds": wall,
        # governor and MHz of the first core, where the kernel exposes cpufreq (often not in VMs)
        "governor": _read(f"{freq}/scaling_governor"), "cpu_mhz": int(khz) / 1000 if khz else None,
        "boost": _read("/sys/devices/system/cpu/cpufreq/boost"),
    }
    reasons = busy_reasons(noise)
    return {**noise, "busy": bool(reasons), "busy_reasons": reasons}
