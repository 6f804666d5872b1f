"""`recbench doctor`: is this machine quiet enough to benchmark now, and what to change (like `pyperf system show`)."""

from __future__ import annotations

import os
import time
from contextlib import suppress
from typing import NamedTuple

import psutil

from bench.config.profiles import usable_cores
from bench.measure import noise

OK, WARN = "ok", "warn"


class Finding(NamedTuple):
    check: str
    value: str
    verdict: str
    advice: str = ""


def examine(seconds: float = 2.0) -> list[Finding]:
    """Every check: the CPU other processes take, steal, load, cores, frequency scaling, memory."""
    cores = usable_cores()
    before = noise.Snapshot.take(cores)
    procs = [p for p in psutil.process_iter(["name"]) if p.pid != os.getpid()]
    for p in procs:  # each process's CPU use over `seconds`: the first call starts its count
        with suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(seconds)
    top = []  # (name (pid), % of one core)
    for p in procs:
        with suppress(psutil.Error):
            top.append((f"{p.info['name']} ({p.pid})", p.cpu_percent(None)))
    top.sort(key=lambda u: -u[1])
    host = noise.between(before, noise.Snapshot.take(cores), cores, threads=len(cores))
    others, steal, gov, boost = host["others_cpu_share"], host["steal_share"], host["governor"], host["boost"]
    busiest = ", ".join(f"{name} {pct:.0f}%" for name, pct in top[:3] if pct >= 5) or "none over 5%"
    load1, mem = os.getloadavg()[0], psutil.virtual_memory()
    checks = [  # (check, value (None: not exposed here), warn, what to change)
        ("CPU taken by other processes",
         "unknown" if others is None else f"{others:.0%} of {len(cores)} cores (busiest: {busiest})",
         (others or 0) > noise.OTHERS_BUSY,
         "stop or move the busy processes, or pin recbench to idle cores (--profile with affinity); "
         "compare with `recbench gate --rerun` / `recbench ab`, which interleave A and B"),
        ("CPU steal (hypervisor)", "unknown" if steal is None else f"{steal:.1%}", (steal or 0) > noise.STEAL_BUSY,
         "a noisy neighbour on the physical host: use a dedicated or bare-metal runner"),
        ("load average (1 min)", f"{load1:.2f} for {len(cores)} usable cores", load1 > len(cores),
         "more runnable tasks than cores: wait for a quieter moment"),
        ("usable cores", f"{len(cores)} of {psutil.cpu_count()}", len(cores) < 2,
         "one core leaves no room for the runtime's own threads and the OS"),
        ("CPU frequency governor", gov or "not exposed (VM or container)", gov not in (None, "performance"),
         "`cpupower frequency-set -g performance` for stable clocks"),
        ("turbo boost", None if boost is None else "on" if boost == "1" else "off", boost == "1",
         "boost clocks vary with temperature and load: disable it for A/B comparisons"),
        ("available memory", f"{mem.available / 2**30:.1f} GiB of {mem.total / 2**30:.1f} GiB",
         mem.available < 0.1 * mem.total, "free memory: swapping ruins latencies"),
    ]
    return [Finding(check, value, WARN if warn else OK, advice) for check, value, warn, advice in checks
            if value is not None]


def quiet(findings: list[Finding]) -> bool:
    return all(f.verdict == OK for f in findings)
