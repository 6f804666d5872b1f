"""PyTorch eager on the CPU."""

from __future__ import annotations

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

        torch.set_num_threads(options.threads)
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

    def describe(self) -> dict[str, Any]:
        """Threads, and the dtypes the module's weights really hold (read back, not assumed from the variant)."""
        dtypes: dict[str, int] = {}
        for t in (*self.module.parameters(), *self.module.buffers()):
            dtypes[str(t.dtype).removeprefix("torch.")] = dtypes.get(str(t.dtype).removeprefix("torch."), 0) + t.numel()
        return {"intra_op_threads": self.torch.get_num_threads(), "weight_dtypes": dtypes}
