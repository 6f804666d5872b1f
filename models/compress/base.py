"""What one compression technique is: a change to the torch module and/or to the exported artifact."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models import train

FINETUNE_SAMPLES = 100_000  # brief recovery training after pruning / factorising (first rows of the train set)
FINETUNE_LR = 1e-3


class Technique:
    """One compression step. `stage` orders composition: model (replaces it) < module < artifact (last)."""

    name: str = ""
    summary: str = ""
    stage: str = "module"
    formats: tuple[str, ...] = ()  # artifact formats an artifact step writes (module steps feed every format)
    requires: dict[str, tuple[str, str]] = {}  # format -> (import name, pip install hint)

    def transform(self, ws, module: nn.Module) -> nn.Module:
        """The changed torch module (identity for steps that only act on the exported file)."""
        return module

    def write(self, ws, module: nn.Module, fmt: str, out_dir: Path, onnx: Callable[[], Path]) -> Path | None:
        """This step's own artifact for `fmt`, or None for the plain export; `onnx()` gives the module's ONNX."""
        return None

    def notes(self, ws, module: nn.Module) -> dict:
        return {}

    def backend_options(self, backend: str) -> dict:
        return {}

    def missing(self, fmt: str) -> str | None:
        """The pip install hint when the package this step needs for `fmt` is absent."""
        need = self.requires.get(fmt)
        if need and importlib.util.find_spec(need[0]) is None:
            return f"variant step {self.name} needs {need[0]} for {fmt} artifacts: {need[1]}"
        return None


def linear_layers(module: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Linear)]


def finetune(ws, module: nn.Module, after_step: Callable[[nn.Module], None] | None = None,
             samples: int = FINETUNE_SAMPLES) -> nn.Module:
    """Briefly retrain the dense layers on the training distribution (embeddings frozen)."""
    x, y = ws.train_set()
    n = min(samples, len(y))
    frozen = [m.weight for m in module.modules() if isinstance(m, nn.Embedding) and m.weight.requires_grad]
    for w in frozen:
        w.requires_grad_(False)
    train.fit(module, {k: v[:n] for k, v in x.items()}, y[:n], ws.names, batch_size=ws.preset.train_batch,
              lr=FINETUNE_LR, after_step=after_step)
    for w in frozen:
        w.requires_grad_(True)
    return module


def tensor_bytes(tensors) -> int:
    return int(sum(t.numel() * t.element_size() for t in tensors))


def is_embedding(m: nn.Module) -> bool:
    return isinstance(m, nn.Embedding) or hasattr(m, "quantized_weights")


def size_breakdown(module: nn.Module) -> dict:
    """Bytes of the embedding tables and of everything else (dense layers), as held by the torch module."""
    emb_ids, emb_bytes = set(), 0
    for m in module.modules():
        if is_embedding(m):
            ts = [*m.parameters(), *m.buffers()]
            emb_ids |= {id(t) for t in ts}
            emb_bytes += tensor_bytes(ts)
    rest = [t for t in (*module.parameters(), *module.buffers()) if id(t) not in emb_ids]
    return {"embedding_bytes": emb_bytes, "dense_bytes": tensor_bytes(rest)}


def sparsity(module: nn.Module) -> float:
    """Fraction of zero weights over the Linear layers."""
    ws = [m.weight for _, m in linear_layers(module)]
    total = sum(w.numel() for w in ws)
    return float(sum(int((w == 0).sum()) for w in ws) / total) if total else 0.0


def calibration_batches(ws, batch: int = 256, count: int = 8) -> list[dict[str, np.ndarray]]:
    """Batches from the training distribution (a seed of its own, not the eval set)."""
    x = ws.calibration_inputs(batch * count)
    return [{k: v[i * batch : (i + 1) * batch] for k, v in x.items()} for i in range(count)]


@torch.no_grad()
def copy_linear(src: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    """A new Linear holding the chosen output rows / input columns of `src`."""
    w = src.weight if rows is None else src.weight[rows]
    w = w if cols is None else w[:, cols]
    out = nn.Linear(w.shape[1], w.shape[0], bias=src.bias is not None)
    out.weight.copy_(w)
    if src.bias is not None:
        out.bias.copy_(src.bias if rows is None else src.bias[rows])
    return out
