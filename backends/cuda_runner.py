"""The run loop every CUDA backend shares: one stream, inputs on the device or copied from pinned host memory
each iteration, optional CUDA graph replay, and CUDA events around each phase so device time is real."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from backends.base import Backend, BackendOptions, Options
from backends.gpu import device_index, torch_cuda_status


class CudaOptions(Options):
    """Options every CUDA backend takes (backend_options in a sweep config)."""

    inputs: Literal["device", "host"] = "device"  # device: compute only; host: H2D + compute + D2H each iteration
    cuda_graphs: bool = False  # capture each prepared batch once, replay it in infer()
    device_timing: bool = True  # CUDA events around each phase of every infer()
    tf32: bool = False  # let fp32 matmuls/convolutions use TF32 tensor cores


def phase_names(inputs: str) -> tuple[str, ...]:
    """The timed phases of one infer() in this input mode, in order."""
    return ("h2d", "compute", "d2h") if inputs == "host" else ("compute",)


def phase_times(marks_ms: list[float], phases: tuple[str, ...]) -> dict[str, float]:
    """Per-phase durations from event times relative to the first mark (len(phases) + 1 marks)."""
    times = {p: marks_ms[i + 1] - marks_ms[i] for i, p in enumerate(phases)}
    if len(phases) > 1:
        times["total"] = marks_ms[-1] - marks_ms[0]
    return times


@dataclass
class GpuBatch:
    """One prepared batch: device inputs (and their pinned host copies in host mode), its outputs, its graph."""

    inputs: list[Any]
    host_inputs: list[Any] | None = None
    output: Any = None
    host_output: Any = None
    graph: Any = None
    state: Any = None  # backend-specific (a TensorRT execution context)


class CudaBackend(Backend):
    """Shared prepare/infer/synchronize/outputs for backends whose model call runs on a CUDA stream."""

    devices = ("cuda",)
    option_model = CudaOptions

    @classmethod
    def available_on(cls, device: str) -> tuple[bool, str]:
        ok, why = cls.available()
        if not ok:
            return ok, why
        return torch_cuda_status(device)

    def setup_cuda(self, options: BackendOptions) -> None:
        """Parse options, pick the device, make a dedicated stream current and reset the allocator peak."""
        import torch

        self.torch = torch
        self.opts = self.parse_options(options.extra)
        ok, why = torch_cuda_status(options.device)
        if not ok:
            raise RuntimeError(why)
        self.device = torch.device("cuda", device_index(options.device))
        torch.cuda.set_device(self.device)
        set_tf32(torch, self.opts.tf32)
        self.stream = torch.cuda.Stream(self.device)
        torch.cuda.set_stream(self.stream)
        self.phases = phase_names(self.opts.inputs)
        self.events = [torch.cuda.Event(enable_timing=True) for _ in range(len(self.phases) + 1)]
        self.timed = False
        torch.cuda.reset_peak_memory_stats(self.device)

    @abstractmethod
    def host_tensor(self, name: str, array: np.ndarray) -> Any:
        """The CPU tensor for input `name`, in the dtype the model takes."""

    @abstractmethod
    def bind(self, batch: GpuBatch) -> None:
        """Make the model ready to run on batch.inputs (allocate outputs, bind addresses); not timed."""

    @abstractmethod
    def compute(self, batch: GpuBatch) -> None:
        """Enqueue the model on the current stream, reading batch.inputs and leaving batch.output."""

    def prepare(self, batch: dict[str, np.ndarray]) -> GpuBatch:
        host = [self.host_tensor(n, np.ascontiguousarray(batch[n])) for n in self.input_names]
        prepared = GpuBatch([h.to(self.device) for h in host])
        if self.opts.inputs == "host":
            prepared.host_inputs = [h.pin_memory() for h in host]
        self.bind(prepared)
        self.compute(prepared)  # one untimed run sizes the outputs and warms the kernels up
        self.stream.synchronize()
        if self.opts.inputs == "host":
            prepared.host_output = self.torch.empty(prepared.output.shape, dtype=prepared.output.dtype,
                                                    pin_memory=True)
        if self.opts.cuda_graphs:
            prepared.graph = self.capture(prepared)
        return prepared

    def capture(self, batch: GpuBatch) -> Any:
        """Record the model call on this batch into a CUDA graph (after a warm-up on a side stream)."""
        torch = self.torch
        side = torch.cuda.Stream(self.device)
        side.wait_stream(self.stream)
        with torch.cuda.stream(side):
            for _ in range(3):
                self.compute(batch)
        self.stream.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self.compute(batch)
        torch.cuda.set_stream(self.stream)
        graph.replay()
        self.stream.synchronize()
        return graph

    def infer(self, handle: GpuBatch) -> None:
        timing, ev = self.opts.device_timing, self.events
        host = handle.host_inputs is not None
        if timing:
            ev[0].record(self.stream)
        if host:
            for dst, src in zip(handle.inputs, handle.host_inputs, strict=True):
                dst.copy_(src, non_blocking=True)
            if timing:
                ev[1].record(self.stream)
        if handle.graph is not None:
            handle.graph.replay()
        else:
            self.compute(handle)
        if timing:
            ev[2 if host else 1].record(self.stream)
        if host:
            handle.host_output.copy_(handle.output, non_blocking=True)
            if timing:
                ev[3].record(self.stream)
        self.timed = timing

    def synchronize(self) -> None:
        self.stream.synchronize()

    def device_times_ms(self) -> dict[str, float] | None:
        """GPU time of each phase of the last infer() from its CUDA events; call after synchronize()."""
        if not self.timed:
            return None
        marks = [0.0] + [self.events[0].elapsed_time(e) for e in self.events[1:]]
        return phase_times(marks, self.phases)

    def outputs(self, handle: GpuBatch) -> np.ndarray:
        out = handle.host_output if handle.host_output is not None else handle.output.cpu()
        return out.float().numpy().reshape(-1)

    def memory(self) -> dict[str, int | None]:
        torch = self.torch
        return {
            "gpu_mem_bytes": int(torch.cuda.max_memory_allocated(self.device)),
            "gpu_mem_reserved_bytes": int(torch.cuda.max_memory_reserved(self.device)),
        }

    def describe(self) -> dict[str, Any]:
        props = self.torch.cuda.get_device_properties(self.device)
        return {**self.opts.model_dump(), "gpu": props.name, "compute_capability": f"{props.major}.{props.minor}",
                "device": str(self.device), "torch_cuda": self.torch.version.cuda}


def set_tf32(torch, enabled: bool) -> None:
    """TF32 for fp32 matmuls and convolutions, through whichever API this torch has."""
    mode = "tf32" if enabled else "ieee"
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
