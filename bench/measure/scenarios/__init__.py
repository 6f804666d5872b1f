"""Load scenarios: how requests are driven into a backend while measuring, and what each needs from the worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backends.base import Backend, missing_modules
from bench.config.scenario_options import ScenarioOptions
from bench.config.validation import lookup
from bench.errors import UserError
from bench.measure.scenarios import closed_loop, max_qps, server, server_loadgen
from bench.measure.timing import Measurement, ScenarioContext


@dataclass(frozen=True)
class Scenario:
    """One load scenario and what it needs from the worker."""

    name: str
    run: Callable[[ScenarioContext], tuple[dict[str, Any], Measurement]]
    mode: str = "latency"  # BackendOptions.mode at load: "throughput" asks for the runtime's own parallelism
    handles: Callable[[ScenarioOptions, Backend], int] = lambda o, b: 1  # prepared handles: one per request in flight
    requires: tuple[str, str] | None = None  # (import name, install hint) of an optional package
    varied_rows: bool = False  # candidates / batching options make its calls vary in rows

    def batch_varies(self, opts: ScenarioOptions) -> bool:
        """Whether its calls' batch varies (dynamic batching, variable candidates): deployed with dynamic shapes."""
        return self.varied_rows and opts.varies()


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("single-stream", closed_loop.single_stream),
    Scenario("offline", closed_loop.offline, mode="throughput", handles=lambda o, b: b.streams()),
    Scenario("server", server.run, handles=lambda o, b: o.workers, varied_rows=True),
    Scenario("concurrency", closed_loop.concurrency, handles=lambda o, b: max(o.concurrency)),
    Scenario("max-qps", max_qps.run, handles=lambda o, b: o.workers, varied_rows=True),
    Scenario("server-loadgen", server_loadgen.run, handles=lambda o, b: o.workers,
             requires=("mlperf_loadgen", "pip install mlcommons-loadgen (or recbench[loadgen])")),
)}


def scenario(name: str) -> Scenario:
    """The scenario by name; an unknown one or a missing optional package is bad input."""
    found = lookup("scenario", name, SCENARIOS)
    if found.requires and missing_modules(found.requires[0]):
        raise UserError(f"scenario {name} needs {found.requires[0]}: {found.requires[1]}")
    return found
