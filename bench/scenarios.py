"""Load scenarios: how requests are driven into a backend during the measured phase."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backends.base import Backend
from bench import stats, timing
from bench.errors import UserError


def single_stream(backend: Backend, handles: list[Any], job) -> tuple[dict, timing.Measurement]:
    """One request at a time, closed loop."""
    m = timing.measure(backend, handles, job.timing, job.batch_size)
    return {**stats.summarize(m.latencies_ns, m.samples_per_iter, m.wall_s), **stats.device_summary(m.device_ms)}, m


SCENARIOS: dict[str, Callable] = {"single-stream": single_stream}


def get(name: str) -> Callable:
    if name not in SCENARIOS:
        raise UserError(f"unknown scenario '{name}'; valid: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]
