"""Intel OpenVINO on the CPU: reads ONNX (or IR), one infer request per pooled batch, inputs set up front."""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np

from backends.base import Backend, BackendOptions, Clock, NotInEffect, Options


class OpenVINOOptions(Options):
    """OpenVINO options."""

    hint: Literal["LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"] | None = None  # None: from the scenario
    precision: Literal["f32", "bf16", "f16"] = "f32"  # INFERENCE_PRECISION_HINT (a bf16 variant sets bf16)


def port_name(port: Any, wanted: tuple[str, ...]) -> str:
    """The name among the port's names that the job feeds (the ONNX input name), else the port's own."""
    return next((n for n in wanted if n in port.get_names()), port.get_any_name())


class OpenVINO(Backend):
    name = "openvino"
    formats = ("openvino", "onnx")
    requires = ("openvino",)
    install_hint = "pip install recbench[openvino]"
    option_model = OpenVINOOptions
    static_shapes = True
    # under a CPU hog, of two models timed in turns in one process, the first to run met ~5x the other's 4-9 ms pauses
    # (p99 8.6 vs 1.5 ms, b64, threads 2); in two processes, alike (p99 1.6 and 1.6 ms): DESIGN.md, paired worker
    pairs_in_one_process = False

    @classmethod
    def versions(cls) -> dict[str, str]:
        import openvino

        return {"openvino": openvino.get_version()}

    def load(self, artifact: str, options: BackendOptions) -> None:
        import openvino as ov

        self.ov = ov
        opts = self.parse_options(options.extra)
        core = ov.Core()
        model = core.read_model(artifact)
        self.static_batch = options.batch_size if options.shapes == "static" else None
        shapes = self.static_batch and batch_fixed(model, self.static_batch)
        if shapes:
            model.reshape(shapes)
        config = {
            "PERFORMANCE_HINT": opts.hint or ("THROUGHPUT" if options.mode == "throughput" else "LATENCY"),
            "INFERENCE_NUM_THREADS": options.threads,
            # OpenVINO silently runs fp32 models in bf16 on CPUs with AVX512-BF16/AMX: keep fp32 unless asked.
            "INFERENCE_PRECISION_HINT": opts.precision,
        }
        self.device = options.device.upper().replace("CPU:", "CPU")
        self.compiled = core.compile_model(model, self.device, config)
        self.core, self.model, self.config, self.artifact, self.twin = core, model, config, artifact, None
        self.precisions = runtime_precisions(self.compiled)
        why = precision_not_in_effect(config["INFERENCE_PRECISION_HINT"], self.precisions)
        if why:
            caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            raise NotInEffect(f"{why}; CPU capabilities: {', '.join(caps)}")
        # a port carries every name of its tensor; get_any_name() may pick an internal one (a folded Cast's output)
        self.ports = {port_name(p, options.inputs): p for p in self.compiled.inputs}
        self.n_streams = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    def prepare(self, batch: dict[str, np.ndarray]) -> Any:
        rows = len(next(iter(batch.values())))
        if self.static_batch not in (None, rows):
            return self.request(self.dynamic(), batch)
        if self.static_batch and self.model.is_dynamic():  # axes beyond the batch are dynamic: fixed by this batch
            self.model.reshape({self.model.input(p.get_any_name()): list(batch[n].shape)
                                for n, p in self.ports.items()})
            self.compiled = self.core.compile_model(self.model, self.device, self.config)
            self.ports = {n: self.compiled.input(p.get_any_name()) for n, p in self.ports.items()}
        return self.request(self.compiled, batch)

    def dynamic(self) -> Any:
        """The model compiled with its dynamic shapes, for batches other than a static model's (quality evaluation)."""
        if self.twin is None:
            self.twin = self.core.compile_model(self.core.read_model(self.artifact), self.device, self.config)
        return self.twin

    def request(self, compiled: Any, batch: dict[str, np.ndarray]) -> Any:
        """An infer request of `compiled` (the timed model, or its profiling twin) with this batch on its inputs."""
        request = compiled.create_infer_request()
        for name, port in self.ports.items():
            target = port if compiled is self.compiled else compiled.input(port.get_any_name())
            request.set_tensor(target, self.ov.Tensor(np.ascontiguousarray(batch[name]), shared_memory=True))
        return request

    def infer(self, handle: Any) -> None:
        handle.infer()

    def outputs(self, handle: Any) -> np.ndarray:
        return np.array(handle.get_output_tensor(0).data, dtype=np.float32).reshape(-1)

    def streams(self) -> int:
        return self.n_streams

    def infer_parallel(self, handles: list[Any], count: int, clock: Clock) -> tuple[np.ndarray, np.ndarray]:
        """An AsyncInferQueue of OPTIMAL_NUMBER_OF_INFER_REQUESTS requests, refilled as each one completes."""
        inputs = [{port: h.get_tensor(port) for port in self.ports.values()} for h in handles]
        starts = np.zeros(count, dtype=np.int64)
        ends = np.zeros(count, dtype=np.int64)
        queue = self.ov.AsyncInferQueue(self.compiled, self.n_streams)

        def done(request, i: int) -> None:
            ends[i] = clock()

        queue.set_callback(done)
        for i in range(count):
            queue.get_idle_request_id()  # blocks until a request is free, so the start stamp is the real start
            starts[i] = clock()
            queue.start_async(inputs[i % len(inputs)], i)
        queue.wait_all()
        return starts, ends

    def op_profile(self, batches: list[dict[str, np.ndarray]], iterations: int) -> dict | None:
        """The same model compiled again with PERF_COUNT; each request's get_profiling_info() after every infer."""
        compiled = self.core.compile_model(self.model, self.device, {**self.config, "PERF_COUNT": True})
        requests = [self.request(compiled, b) for b in batches]
        for i in range(5):
            requests[i % len(requests)].infer()
        infos, wall_ns = [], 0
        for i in range(iterations):
            request = requests[i % len(requests)]
            t0 = time.perf_counter_ns()
            request.infer()
            wall_ns += time.perf_counter_ns() - t0
            infos.extend(request.get_profiling_info())
        return {"profiler": "openvino PERF_COUNT", "iterations": iterations, "rows": ov_rows(infos),
                "runtime_ms_per_iter": wall_ns / iterations / 1e6}

    def describe(self) -> dict[str, Any]:
        props = ("PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS", "INFERENCE_PRECISION_HINT",
                 "OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        return {**{p.lower(): str(self.compiled.get_property(p)) for p in props}, "runtime_precisions": self.precisions,
                "input_shapes": {n: str(p.get_partial_shape()) for n, p in self.ports.items()}}


def batch_fixed(model: Any, batch: int) -> dict[Any, list[int]] | None:
    """Every input port's shape with its batch axis (the first, where dynamic) at `batch`; None when other axes are
    dynamic too (prepare fixes them from the first batch)."""
    out = {}
    for port in model.inputs:
        shape = port.get_partial_shape()
        dims = [] if shape.rank.is_dynamic else list(shape)
        if not dims or any(d.is_dynamic for d in dims[1:]):
            return None
        out[port] = [batch if dims[0].is_dynamic else dims[0].get_length(), *(d.get_length() for d in dims[1:])]
    return out


COMPUTE_LAYERS = ("FullyConnected", "MatMul", "Convolution", "GroupConvolution", "Deconvolution")


def runtime_precisions(compiled) -> dict[str, int]:
    """How many compute layers of the compiled (execution) graph run in each precision: what the CPU really does."""
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) in COMPUTE_LAYERS:
            precision = info["runtimePrecision"].astype(str)
            counts[precision] = counts.get(precision, 0) + 1
    return counts


def precision_not_in_effect(requested: str, precisions: dict[str, int]) -> str | None:
    """Why a requested inference precision is not what runs (None when some compute layer runs in it, or f32)."""
    if requested in ("f32", "") or requested in precisions or not precisions:
        return None
    return (f"openvino ignored INFERENCE_PRECISION_HINT={requested}: its compute layers run in "
            f"{', '.join(f'{k} ({n})' for k, n in sorted(precisions.items()))}, so this would measure fp32 under "
            f"the {requested} variant's name")


def ov_rows(infos: list) -> list[dict]:
    """Rows per node from OpenVINO ProfilingInfo entries (real_time per executed node; skipped ones dropped)."""
    rows: dict[str, dict] = {}
    for info in infos:
        if info.real_time.total_seconds() <= 0 and str(info.status).endswith("NOT_RUN"):
            continue
        row = rows.setdefault(info.node_name, {"op_type": info.node_type, "node": info.node_name, "calls": 0,
                                               "total_ms": 0.0, "exec_type": info.exec_type})
        row["calls"] += 1
        row["total_ms"] += info.real_time.total_seconds() * 1e3
    return list(rows.values())
