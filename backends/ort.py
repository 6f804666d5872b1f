"""ONNX Runtime with the CPU execution provider; inputs bound with IOBinding before timing."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from typing import Any

import numpy as np
from pydantic import Field

from backends.base import Backend, BackendOptions, Options


class OrtOptions(Options):
    """ONNX Runtime (CPU EP) options."""

    streams: int | None = Field(None, ge=1)  # offline: requests in flight (default: threads, 1 intra-op thread each)
    allow_spinning: bool | None = None  # session.intra_op.allow_spinning; None: ONNX Runtime's default


class OnnxRuntime(Backend):
    name = "onnxruntime"
    formats = ("onnx",)
    requires = ("onnxruntime",)
    install_hint = "pip install onnxruntime"
    option_model = OrtOptions

    @classmethod
    def versions(cls) -> dict[str, str]:
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}

    def load(self, artifact: str, options: BackendOptions) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # throughput mode (offline): several requests in flight on one session, each on its own calling thread
        opts = self.parse_options(options.extra)
        self.n_streams = (opts.streams or options.threads) if options.mode == "throughput" else 1
        spin = opts.allow_spinning
        threads = max(1, options.threads // self.n_streams)
        self.shared_pool = options.paired and spin is None and self.n_streams == 1 and shared_pool(threads)
        if self.shared_pool:  # the paired worker's two sessions on one pool: the idle one's pool would spin
            so.use_per_session_threads = False
        else:
            so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if spin is not None:
            so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.session = ort.InferenceSession(artifact, so, providers=self.providers(artifact, options))
        self.artifact, self.load_options = artifact, options
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name
        self.options, self.threads = so, threads
        self.spinning = spin

    def providers(self, artifact: str, options: BackendOptions) -> list:
        """Execution providers in priority order (GPU subclasses put theirs first)."""
        return ["CPUExecutionProvider"]

    def prepare(self, batch: dict[str, np.ndarray]) -> Any:
        return self.bind(self.session, batch)

    def bind(self, session: Any, batch: dict[str, np.ndarray]) -> Any:
        binding = session.io_binding()
        for name in self.input_names:
            binding.bind_cpu_input(name, np.ascontiguousarray(batch[name]))
        binding.bind_output(self.output_name, "cpu")
        return binding

    def infer(self, handle: Any) -> None:
        self.session.run_with_iobinding(handle)

    def outputs(self, handle: Any) -> np.ndarray:
        return handle.copy_outputs_to_cpu()[0].astype(np.float32).reshape(-1)

    def streams(self) -> int:
        """The harness's `streams` threads share the session (Run is thread-safe and releases the GIL)."""
        return self.n_streams

    def op_profile(self, batches: list[dict[str, np.ndarray]], iterations: int) -> dict | None:
        """A second session with the same options and enable_profiling; node kernel times of the last
        `iterations` runs (the warm-up runs are dropped)."""
        import onnxruntime as ort

        warmup = 5
        with tempfile.TemporaryDirectory() as tmp:
            so = self.options
            so.enable_profiling, so.profile_file_prefix = True, os.path.join(tmp, "ort")
            try:
                session = ort.InferenceSession(self.artifact, so, providers=self.providers(self.artifact,
                                                                                          self.load_options))
            finally:
                so.enable_profiling = False
            bindings = [self.bind(session, b) for b in batches]
            for i in range(warmup + iterations):
                session.run_with_iobinding(bindings[i % len(bindings)])
            with open(session.end_profiling()) as f:
                events = json.load(f)
        return parse_ort_profile(events, iterations)

    def describe(self) -> dict[str, Any]:
        return {"providers": self.session.get_providers(), "intra_op_threads": self.threads, "inter_op_threads": 1,
                "thread_pool": "process (paired worker)" if self.shared_pool else "session", "streams": self.n_streams,
                "allow_spinning": self.spinning, "initializer_dtypes": initializer_dtypes(self.artifact)}


_POOL: dict[str, int] = {}  # the size of this process's global intra-op pool, once made
_POOL_LOCK = threading.Lock()


def shared_pool(threads: int) -> bool:
    """Make this process's global intra-op pool of `threads` threads (once, before its first session: a paired
    worker's two sides load at the same time); True when the pool has that size."""
    import onnxruntime.capi._pybind_state as C

    with _POOL_LOCK:
        if not _POOL:
            C.set_global_thread_pool_sizes(threads, 1)
            _POOL["intra"] = threads
        return _POOL["intra"] == threads


def initializer_dtypes(path: str) -> dict[str, int]:
    """Elements of the model's weights per stored dtype: what the file the session ran really holds."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    counts: dict[str, int] = {}
    for init in model.graph.initializer:
        name = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).name
        counts[name] = counts.get(name, 0) + int(np.prod(init.dims, dtype=np.int64))
    return counts


def parse_ort_profile(events: list[dict], iterations: int) -> dict:
    """Rows per node from ONNX Runtime's profile JSON: `<node>_kernel_time` events (cat Node, dur in us) inside
    the last `iterations` `model_run` events."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])[-iterations:]
    if not runs:
        raise RuntimeError("onnxruntime wrote no model_run events to its profile")
    start = runs[0]["ts"]
    rows: dict[str, dict] = {}
    for e in events:
        name = e.get("name", "")
        if e.get("cat") != "Node" or not name.endswith("_kernel_time") or e["ts"] < start:
            continue
        node = name[: -len("_kernel_time")]
        row = rows.setdefault(node, {"op_type": e.get("args", {}).get("op_name", "?"), "node": node, "calls": 0,
                                     "total_ms": 0.0})
        row["calls"] += 1
        row["total_ms"] += e["dur"] / 1e3
    return {"profiler": "onnxruntime enable_profiling", "iterations": len(runs), "rows": list(rows.values()),
            "runtime_ms_per_iter": sum(r["dur"] for r in runs) / len(runs) / 1e3}
