"""Energy of the measured phase from a real meter: RAPL (/sys/class/powercap) on CPUs, NVML on GPUs; no TDP guess."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

POWERCAP = Path("/sys/class/powercap")
NO_SOURCE = "no power source"


class Counter(NamedTuple):
    """A cumulative energy counter in joules that wraps to 0 after `wrap_j` (None: never wraps)."""

    name: str
    read_j: Callable[[], float]
    wrap_j: float | None = None


def counters_for(device: str, powercap: Path = POWERCAP, nvml=None) -> tuple[list[Counter], str]:
    """The meter of the job's device, and why there is none where there is none: a cuda device's total-energy
    counter (NVML, millijoules since driver load; Volta and newer), else one counter per RAPL package zone of the
    CPU (`intel-rapl:N`; its subzones are inside it)."""
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        try:
            if nvml is None:
                import pynvml as nvml
            nvml.nvmlInit()
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception as e:  # noqa: BLE001 - no NVML, no GPU or no energy counter: all mean no source
            return [], f"NVML: {type(e).__name__}: {e}"
        return [Counter(f"nvml gpu {index}", lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3)], ""
    zones = sorted(p for p in powercap.glob("intel-rapl:*") if p.name.count(":") == 1) if powercap.is_dir() else []
    counters, problems = [], []
    for zone in zones:
        energy = zone / "energy_uj"
        try:
            energy.read_text()
            wrap = float((zone / "max_energy_range_uj").read_text()) / 1e6
            counters.append(Counter(f"rapl {(zone / 'name').read_text().strip()} ({zone.name})",
                                    lambda p=energy: float(p.read_text()) / 1e6, wrap))
        except OSError as e:
            problems.append(f"{energy}: {e.strerror}")
    return counters, "" if counters else "; ".join(problems) or f"no RAPL zones under {powercap}"


class EnergyMeter:
    """Samples the counters on a background thread (so a wrap between samples is counted) while measuring."""

    def __init__(self, counters: list[Counter], why: str = "", interval_s: float = 0.5,
                 clock: Callable[[], float] = time.perf_counter):
        self.counters, self.why, self.interval_s, self.clock = counters, why, interval_s, clock
        self.joules = [0.0] * len(counters)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        for i, c in enumerate(self.counters):
            now = c.read_j()
            delta = now - self._last[i]
            self.joules[i] += delta + (c.wrap_j or 0.0) if delta < 0 else delta
            self._last[i] = now

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> EnergyMeter:
        if self.counters:
            self._last = [c.read_j() for c in self.counters]
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        self._t0 = self.clock()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = self.clock() - self._t0
        if self._thread:
            self._stop.set()
            self._thread.join()
            self._sample()

    def fields(self, samples: int, measured_s: float) -> dict:
        """Record fields: source, average watts over the sampled window (warm-up + measurement, steady load), and
        the measured phase's share of it: joules and joules per 1,000 samples (or why there is no source)."""
        if not self.counters:
            return {"power_source": NO_SOURCE, "power_source_reason": self.why}
        watts = sum(self.joules) / self.seconds if self.seconds > 0 else None
        joules = watts * measured_s if watts is not None else None
        return {"power_source": ", ".join(c.name for c in self.counters), "avg_watts": watts, "energy_j": joules,
                "joules_per_1k_samples": joules / samples * 1e3 if joules is not None and samples else None}
