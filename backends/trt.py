"""NVIDIA TensorRT (native API): engine built from the variant's ONNX and cached, run with execute_async_v3
on a CUDA stream with tensor addresses bound once per prepared batch, timed with CUDA events."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from backends.base import BackendOptions, file_sha256, missing_modules
from backends.cuda_runner import CudaBackend, CudaOptions, GpuBatch
from backends.gpu import torch_cuda_status
from backends.trt_cache import EngineCache, read_meta
from backends.trt_plan import (
    TENSORRT_HINT,
    GpuId,
    engine_key,
    engine_mismatch,
    listed,
    onnx_traits,
    profile_set,
    select_plan,
    tensorrt_reason,
    torch_dtype_name,
    version_reason,
)


class TensorRTOptions(CudaOptions):
    precision: Literal["fp32", "fp16", "bf16", "int8"] | None = None  # None: what the ONNX's types say
    max_batch: int = Field(1024, ge=1)  # top of the profile; the quality evaluator feeds chunks of 1024
    workspace_mb: int | None = Field(None, ge=1)
    optimization_level: int | None = Field(None, ge=0, le=5)
    engine: str | None = None  # run this prebuilt engine file instead of building one
    cache_dir: str | None = None  # default: <recbench cache>/tensorrt


def installed_version() -> str | None:
    """TensorRT's version from package metadata, without importing (and initialising) it."""
    if missing_modules("tensorrt"):
        return None
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt_cu12_bindings", "tensorrt_cu13_bindings"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    import tensorrt

    return tensorrt.__version__


class TensorRT(CudaBackend):
    name = "tensorrt"
    formats = ("engine", "onnx")  # a serialized engine (bring your own) runs as is; ONNX is built
    requires = ("tensorrt",)
    install_hint = TENSORRT_HINT
    option_model = TensorRTOptions
    static_shapes = True

    @classmethod
    def available(cls) -> tuple[bool, str]:
        version = installed_version()
        has_builder = False
        if version is not None and version_reason(version) is None:
            import tensorrt

            has_builder = hasattr(tensorrt, "Builder")
        cuda_ok, cuda_why = torch_cuda_status()
        why = tensorrt_reason(version, has_builder, None if cuda_ok else cuda_why)
        return (False, why) if why else (True, f"available: TensorRT {version}; {cuda_why}")

    @classmethod
    def versions(cls) -> dict[str, str]:
        return {"tensorrt": installed_version() or "not installed"}

    def load(self, artifact: str, options: BackendOptions) -> None:
        import tensorrt as trt

        self.setup_cuda(options)
        self.trt = trt
        self.engine_dir = options.cache_path("tensorrt")
        self.logger = trt.Logger(trt.Logger.WARNING)
        props = self.torch.cuda.get_device_properties(self.device)
        self.gpu = GpuId(props.name, f"{props.major}.{props.minor}")
        blob = self.engine_bytes(Path(artifact), options.batch_size, options.shapes == "static")
        self.runtime = trt.Runtime(self.logger)  # must outlive the engine
        self.engine = self.runtime.deserialize_cuda_engine(blob)
        if self.engine is None:
            raise RuntimeError(f"TensorRT {trt.__version__} could not deserialize the engine for {artifact}: built "
                               f"by another TensorRT version or for another GPU?")
        self.engine_size = len(blob)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in self.input_names]
        self.scratch_bytes = int(self.engine.device_memory_size_v2 if hasattr(self.engine, "device_memory_size_v2")
                                 else self.engine.device_memory_size)  # 11.x has only the _v2 name
        self.scratch = self.torch.empty(max(self.scratch_bytes, 1), dtype=self.torch.uint8, device=self.device)

    def engine_bytes(self, onnx_path: Path, batch: int | None, static: bool) -> bytes:
        """The serialized engine: a given file (checked against this TensorRT and GPU), the cache, or a build;
        `static`: with a profile pinned to `batch` first (a given engine runs with the profiles it was built with)."""
        from backends.trt_build import build_engine

        trt, version = self.trt, self.trt.__version__
        self.static_batch = batch if static and batch else None
        given = self.opts.engine or (str(onnx_path) if onnx_path.suffix != ".onnx" else None)
        if given:
            path = Path(given)
            meta = read_meta(path)
            why = engine_mismatch(meta, path, version, self.gpu) if meta else None
            if why:
                raise RuntimeError(why)
            self.build, self.static_batch = {"engine": str(path), "cached": True}, None
            return path.read_bytes()
        traits = onnx_traits(onnx_path)
        plan = select_plan(version, self.opts.precision, traits, self.opts.tf32)
        profiles = profile_set(traits.inputs, batch or self.opts.max_batch, self.opts.max_batch,
                               self.static_batch is not None)
        settings = {"workspace_mb": self.opts.workspace_mb, "optimization_level": self.opts.optimization_level}
        sha = file_sha256(str(onnx_path))
        key = engine_key(sha, version, self.gpu, plan, profiles, settings)
        cache = EngineCache(Path(self.opts.cache_dir) if self.opts.cache_dir else self.engine_dir)
        self.build = {"precision": plan.precision, "strongly_typed": plan.strongly_typed, "flags": list(plan.flags),
                      "plan_note": plan.note, "profile": listed(profiles),
                      "engine": str(cache.engine_path(key))}
        blob, why = cache.lookup(key, version, self.gpu)
        if blob is not None:
            self.build.update(cached=True, build_s=(read_meta(cache.engine_path(key)) or {}).get("build_s"))
            return blob
        blob, timing, build_s = build_engine(trt, self.logger, onnx_path, plan, profiles, settings,
                                             cache.timing_cache(version, self.gpu))
        cache.save_timing_cache(version, self.gpu, timing)
        cache.store(key, blob, {"tensorrt": version, "gpu": self.gpu.name, "compute_capability":
                                self.gpu.compute_capability, "artifact_sha256": sha, "build_s": build_s,
                                **self.build})
        self.build.update(cached=False, build_s=build_s, cache_miss=why)
        return blob

    def dtype(self, name: str):
        return getattr(self.torch, torch_dtype_name(self.engine.get_tensor_dtype(name)))

    def host_tensor(self, name: str, array: np.ndarray) -> Any:
        return self.torch.from_numpy(array).to(self.dtype(name))

    def bind(self, batch: GpuBatch) -> None:
        """One execution context per batch, sharing one scratch block, with every tensor address set once."""
        trt = self.trt
        context = self.engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
        if hasattr(context, "set_device_memory"):
            context.set_device_memory(self.scratch.data_ptr(), self.scratch_bytes)
        else:
            context.device_memory = self.scratch.data_ptr()
        rows = batch.inputs[0].shape[0]
        index = 1 if self.static_batch not in (None, rows) else 0  # a static engine's other batches: the dynamic one
        if index and not context.set_optimization_profile_async(index, self.stream.cuda_stream):
            raise RuntimeError(f"TensorRT could not select optimization profile {index} for batch {rows}")
        for name, tensor in zip(self.input_names, batch.inputs, strict=True):
            if not context.set_input_shape(name, tuple(tensor.shape)):
                lo, _, hi = self.engine.get_tensor_profile_shape(name, index)
                raise ValueError(f"input '{name}' of shape {tuple(tensor.shape)} is outside the engine's profile "
                                 f"{tuple(lo)}..{tuple(hi)}: raise the tensorrt option max_batch")
            context.set_tensor_address(name, tensor.data_ptr())
        outputs = []
        for name in self.output_names:
            out = self.torch.empty(tuple(context.get_tensor_shape(name)), dtype=self.dtype(name), device=self.device)
            context.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        batch.state, batch.output = (context, outputs), outputs[0]

    def compute(self, batch: GpuBatch) -> None:
        context = batch.state[0]
        if not context.execute_async_v3(self.torch.cuda.current_stream(self.device).cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the job log)")

    def op_profile(self, batches: list[dict[str, np.ndarray]], iterations: int) -> dict | None:
        """An IProfiler on fresh execution contexts, run without CUDA graphs (TensorRT reports each layer's time
        once the enqueued work has finished)."""
        graphs, self.opts.cuda_graphs = self.opts.cuda_graphs, False
        try:
            handles = [self.prepare(b) for b in batches]
        finally:
            self.opts.cuda_graphs = graphs
        for i in range(5):
            self.compute(handles[i % len(handles)])
        self.stream.synchronize()
        profiler = layer_profiler(self.trt)
        for h in handles:
            h.state[0].profiler = profiler
        for i in range(iterations):
            self.compute(handles[i % len(handles)])
            self.stream.synchronize()
        return {"profiler": "tensorrt IProfiler", "iterations": iterations, "rows": trt_rows(profiler.times),
                "runtime_ms_per_iter": None}

    def memory(self) -> dict[str, int | None]:
        return {**super().memory(), "engine_device_memory_bytes": self.scratch_bytes,
                "engine_bytes": self.engine_size}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "tensorrt": self.trt.__version__, **self.build}


def layer_profiler(trt) -> Any:
    """A trt.IProfiler that sums report_layer_time(layer_name, ms) per layer: {name: [calls, ms]}."""

    class LayerTimes(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.times: dict[str, list] = {}

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            entry = self.times.setdefault(layer_name, [0, 0.0])
            entry[0] += 1
            entry[1] += ms

    return LayerTimes()


def trt_layer_type(layer: str) -> str:
    """An op type for a TensorRT layer name: reformatters, fused pointwise, else the first fused ONNX node's op
    ("/top/top.0/Gemm + /top/Relu" -> Gemm, "node_MatMul_12" -> MatMul)."""
    if layer.startswith("Reformatting"):
        return "Reformat"
    if layer.startswith(("PWN(", "PointWise")):
        return "PointWise"
    first = layer.split(" + ")[0].rsplit("/", 1)[-1]
    first = re.sub(r"^(node_|onnx::)", "", first)
    return re.sub(r"[_.:]\d+$", "", first) or layer


def trt_rows(times: dict[str, list]) -> list[dict]:
    return [{"op_type": trt_layer_type(name), "node": name, "calls": calls, "total_ms": ms}
            for name, (calls, ms) in times.items()]
