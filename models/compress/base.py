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
    calibrated = False  # its artifacts depend on the calibration inputs
    graph_first = False  # a module step with a graph rewrite: use the rewrite on ONNX even when a module exists

    def applies(self, ws, fmt: str) -> str | None:
        """Why this step cannot act on the model `ws` for format `fmt`, or None when it can."""
        return None

    def transform(self, ws, module: nn.Module) -> nn.Module:
        """The changed torch module (identity for steps that only act on the exported file)."""
        return module

    def rewrite(self, ws, src: Path, dst: Path) -> Path:
        """Graph level (module steps that have one): the same change made on any ONNX file, written to `dst`."""
        raise NotImplementedError

    @property
    def graph_level(self) -> bool:
        return type(self).rewrite is not Technique.rewrite

    @property
    def levels(self) -> tuple[str, ...]:
        """Where it acts: model (replaces it), module (torch layers), graph (any ONNX), artifact (writes its own)."""
        if self.stage != "module":
            return (self.stage,)
        return ("module",) * (type(self).transform is not Technique.transform) + ("graph",) * self.graph_level

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
    """Briefly retrain the dense layers on the training distribution (embeddings frozen); without labelled CTR data
    (a bring-your-own model without `labelled:`, a family with its own objective) the module stays as it is."""
    data = ws.finetune_set()
    if data is None:
        return module
    x, y = data
    n = min(samples, len(y))
    frozen = [m.weight for m in module.modules() if isinstance(m, nn.Embedding) and m.weight.requires_grad]
    for w in frozen:
        w.requires_grad_(False)
    train.fit(module, {k: v[:n] for k, v in x.items()}, y[:n], ws.names, batch_size=ws.train_batch,
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
    """The model's calibration inputs (its data distribution, a seed of its own; or the user's file), in batches."""
    x = ws.calibration_inputs(batch * count)
    n = len(next(iter(x.values())))
    return [{k: v[s : s + batch] for k, v in x.items()} for s in range(0, n, batch)]


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
