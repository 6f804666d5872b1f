"""`recbench doctor`: is this machine quiet enough to benchmark now, and what to change (like `pyperf system show`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

from bench.config.profiles import usable_cores
from bench.measure import noise

OK, WARN = "ok", "warn"


@dataclass(frozen=True)
class Finding:
    check: str
    value: str
    verdict: str
    advice: str = ""


def _top_processes(seconds: float) -> list[tuple[str, float]]:
    """Sample every process's CPU use over `seconds`: [(name (pid), % of one core)], busiest first."""
    procs = list(psutil.process_iter(["name"]))
    me = os.getpid()
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(seconds)
    usage = []
    for p in procs:
        try:
            if p.pid != me:
                usage.append((f"{p.info['name']} ({p.pid})", p.cpu_percent(None)))
        except psutil.Error:
            continue
    return sorted(usage, key=lambda u: -u[1])


def examine(seconds: float = 2.0) -> list[Finding]:
    """Every check: the CPU other processes take, steal, load, cores, frequency scaling, memory."""
    cores = usable_cores()
    before = noise.Snapshot.take(cores)
    top = _top_processes(seconds)
    host = noise.between(before, noise.Snapshot.take(cores), cores, threads=len(cores))
    out = []
    others = host["others_cpu_share"]
    busiest = ", ".join(f"{name} {pct:.0f}%" for name, pct in top[:3] if pct >= 5) or "none over 5%"
    out.append(Finding("CPU taken by other processes", "unknown" if others is None else
                       f"{others:.0%} of {len(cores)} cores (busiest: {busiest})",
                       WARN if (others or 0) > noise.OTHERS_BUSY else OK,
                       "stop or move the busy processes, or pin recbench to idle cores (--profile with affinity); "
                       "compare with `recbench gate --rerun` / `recbench ab`, which interleave A and B"))
    steal = host["steal_share"]
    out.append(Finding("CPU steal (hypervisor)", "unknown" if steal is None else f"{steal:.1%}",
                       WARN if (steal or 0) > noise.STEAL_BUSY else OK,
                       "a noisy neighbour on the physical host: use a dedicated or bare-metal runner"))
    load1 = os.getloadavg()[0]
    out.append(Finding("load average (1 min)", f"{load1:.2f} for {len(cores)} usable cores",
                       WARN if load1 > len(cores) else OK, "more runnable tasks than cores: wait for a quieter moment"))
    out.append(Finding("usable cores", f"{len(cores)} of {psutil.cpu_count()}", WARN if len(cores) < 2 else OK,
                       "one core leaves no room for the runtime's own threads and the OS"))
    gov = host["governor"]
    out.append(Finding("CPU frequency governor", gov or "not exposed (VM or container)",
                       WARN if gov not in (None, "performance") else OK,
                       "`cpupower frequency-set -g performance` for stable clocks"))
    if host["boost"] is not None:
        out.append(Finding("turbo boost", "on" if host["boost"] == "1" else "off", WARN if host["boost"] == "1" else OK,
                           "boost clocks vary with temperature and load: disable it for A/B comparisons"))
    mem = psutil.virtual_memory()
    out.append(Finding("available memory", f"{mem.available / 2**30:.1f} GiB of {mem.total / 2**30:.1f} GiB",
                       WARN if mem.available < 0.1 * mem.total else OK, "free memory: swapping ruins latencies"))
    return out


def quiet(findings: list[Finding]) -> bool:
    return all(f.verdict == OK for f in findings)
