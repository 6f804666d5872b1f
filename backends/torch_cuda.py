"""PyTorch eager on an NVIDIA GPU via CUDA."""

from __future__ import annotations

from typing import Any

import numpy as np

from backends.base import BackendOptions, missing_modules
from backends.torch_cpu import TorchCPU


class TorchCUDA(TorchCPU):
    name = "torch-cuda"
    devices = ("cuda",)
    install_hint = "pip install torch (a CUDA build) on a machine with an NVIDIA GPU"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if missing_modules("torch"):
            return False, f"torch not installed: {cls.install_hint}"
        import torch

        if torch.version.cuda is None:
            return False, f"torch {torch.__version__} is a CPU-only build: install a CUDA build of torch"
        if not torch.cuda.is_available():
            return False, f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU"
        return True, f"available: {torch.cuda.get_device_name(0)}"

    def load(self, artifact: str, options: BackendOptions) -> None:
        super().load(artifact, options)
        self.device = self.torch.device(options.device if ":" in options.device else "cuda:0")
        self.module = self.module.to(self.device)

    def prepare(self, batch: dict[str, np.ndarray]) -> Any:
        handle = super().prepare(batch)
        handle["args"] = [a.to(self.device) for a in handle["args"]]
        return handle

    def synchronize(self) -> None:
        self.torch.cuda.synchronize(self.device)

    def memory(self) -> dict[str, int | None]:
        return {"gpu_mem_bytes": int(self.torch.cuda.max_memory_allocated(self.device))}
