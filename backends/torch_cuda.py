"""PyTorch on an NVIDIA GPU: eager, torch.compile or CUDA graphs; fp32/TF32/fp16/bf16; device or host inputs."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import model_validator

from backends.base import BackendOptions
from backends.cuda_runner import CudaBackend, CudaOptions, GpuBatch
from backends.gpu import TORCH_CUDA_HINT, torch_cuda_status

PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class TorchCudaOptions(CudaOptions):
    compile: bool | str = False  # True or a torch.compile mode ("default", "max-autotune-no-cudagraphs", ...)
    precision: Literal["fp32", "fp16", "bf16"] | None = None  # cast the module's floating weights; None: as saved

    @model_validator(mode="after")
    def _one_graph_owner(self) -> TorchCudaOptions:
        if self.cuda_graphs and self.compile == "reduce-overhead":
            raise ValueError("compile mode reduce-overhead captures its own CUDA graphs: drop cuda_graphs or pick "
                             "another mode (e.g. max-autotune-no-cudagraphs)")
        return self


class TorchCUDA(CudaBackend):
    name = "torch-cuda"
    formats = ("torch",)
    requires = ("torch",)
    install_hint = TORCH_CUDA_HINT
    option_model = TorchCudaOptions

    @classmethod
    def versions(cls) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__, "torch_cuda": str(torch.version.cuda)}

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return torch_cuda_status()

    def load(self, artifact: str, options: BackendOptions) -> None:
        self.setup_cuda(options)
        torch = self.torch
        module = torch.load(artifact, weights_only=False, map_location="cpu").eval()
        if self.opts.precision:
            module = module.to(getattr(torch, PRECISIONS[self.opts.precision]))
        self.module = module.to(self.device)
        self.float_dtype = next((p.dtype for p in self.module.parameters() if p.is_floating_point()), torch.float32)
        self.call = self.module
        if self.opts.compile:
            mode = None if self.opts.compile is True else self.opts.compile
            self.call = torch.compile(self.module, mode=mode)
        self.input_names = options.inputs

    def host_tensor(self, name: str, array: np.ndarray) -> Any:
        t = self.torch.from_numpy(array)
        return t.to(self.float_dtype) if t.is_floating_point() else t

    def bind(self, batch: GpuBatch) -> None:
        pass  # the module allocates its output on each call (a graph keeps the captured one)

    def compute(self, batch: GpuBatch) -> None:
        with self.torch.inference_mode():
            batch.output = self.call(*batch.inputs)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dtype": str(self.float_dtype).replace("torch.", "")}
