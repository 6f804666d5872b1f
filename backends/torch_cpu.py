"""PyTorch eager on the CPU."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from backends.base import Backend, BackendOptions


class TorchCPU(Backend):
    name = "torch-cpu"
    formats = ("torch",)
    requires = ("torch",)
    install_hint = "pip install torch"

    @classmethod
    def versions(cls) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__}

    def load(self, artifact: str, options: BackendOptions) -> None:
        import torch

        torch.set_num_threads(options.threads)  # the job's (the profile's) count, never torch's all-cores default
        try:
            torch.set_num_interop_threads(1)  # eager inference runs no inter-op parallelism: no idle pool to spin
        except RuntimeError:  # already set in this process (a second load)
            pass
        self.torch = torch
        self.module = torch.load(artifact, weights_only=False, map_location="cpu").eval()
        self.input_names = options.inputs

    def prepare(self, batch: dict[str, np.ndarray]) -> Any:
        return {"args": [self.torch.from_numpy(np.ascontiguousarray(batch[k])) for k in self.input_names], "out": None}

    def infer(self, handle: Any) -> None:
        with self.torch.inference_mode():
            handle["out"] = self.module(*handle["args"])

    def outputs(self, handle: Any) -> np.ndarray:
        return handle["out"].float().numpy().reshape(-1)

    def op_profile(self, batches: list[dict[str, np.ndarray]], iterations: int) -> dict | None:
        """torch.profiler (CPU activity) around `iterations` calls; each aten op's self time (no double counting
        of ops called inside others). Eager PyTorch has no graph nodes: the node is the op."""
        from torch.profiler import ProfilerActivity, profile

        handles = [self.prepare(b) for b in batches]
        for i in range(5):
            self.infer(handles[i % len(handles)])
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter_ns()
            for i in range(iterations):
                self.infer(handles[i % len(handles)])
            wall_ns = time.perf_counter_ns() - t0
        rows = [{"op_type": e.key, "node": e.key, "calls": e.count, "total_ms": e.self_cpu_time_total / 1e3}
                for e in prof.key_averages() if e.self_cpu_time_total > 0]
        return {"profiler": "torch.profiler", "iterations": iterations, "rows": rows,
                "runtime_ms_per_iter": wall_ns / iterations / 1e6}

    def describe(self) -> dict[str, Any]:
        """Threads, and the dtypes the module's weights really hold (read back, not assumed from the variant)."""
        t = self.torch
        dtypes: dict[str, int] = {}
        for w in (*self.module.parameters(), *self.module.buffers()):
            dtypes[str(w.dtype).removeprefix("torch.")] = dtypes.get(str(w.dtype).removeprefix("torch."), 0) + w.numel()
        return {"intra_op_threads": t.get_num_threads(), "interop_threads": t.get_num_interop_threads(),
                "weight_dtypes": dtypes}
