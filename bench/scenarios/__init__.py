"""Load scenarios: how requests are driven into a backend during the measured phase.

A scenario is run(backend, handles, job) -> (record fields, Measurement); each lives in its own module.
"""

from __future__ import annotations

from collections.abc import Callable

from backends.base import Backend, missing_modules
from bench.errors import UserError
from bench.scenario_options import ScenarioOptions
from bench.scenarios import concurrency, max_qps, offline, server, server_loadgen, single_stream
from bench.validation import lookup

SCENARIOS: dict[str, Callable] = {
    "single-stream": single_stream.run,
    "offline": offline.run,
    "server": server.run,
    "concurrency": concurrency.run,
    "max-qps": max_qps.run,
    "server-loadgen": server_loadgen.run,
}
REQUIRES = {"server-loadgen": ("mlperf_loadgen", "pip install mlcommons-loadgen (or recbench[loadgen])")}


def get(name: str) -> Callable:
    run = lookup("scenario", name, SCENARIOS)
    if name in REQUIRES and missing_modules(REQUIRES[name][0]):
        raise UserError(f"scenario {name} needs {REQUIRES[name][0]}: {REQUIRES[name][1]}")
    return run


def backend_mode(name: str) -> str:
    """How the backend is configured at load: offline asks for throughput (its own parallelism)."""
    return "throughput" if name == "offline" else "latency"


def handles_needed(name: str, options: dict, backend: Backend) -> int:
    """Prepared handles the scenario needs: one per request that may be in flight at once."""
    opts = ScenarioOptions(**options)
    return {"offline": backend.streams(), "concurrency": max(opts.concurrency), "server": opts.workers,
            "max-qps": opts.workers, "server-loadgen": opts.workers}.get(name, 1)
