"""A factory's model to ONNX: the chosen exporter(s), parity with PyTorch at three batch sizes, Loop/Scan count."""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from models.export import PARITY_TOL, export_onnx, onnx_scores

# auto: TorchScript first (10-20x faster to export; exported every test model the dynamo exporter did), dynamo
# (torch.export + onnxscript) when TorchScript fails or its graph misses parity; see DESIGN.md.
EXPORTERS = {"auto": ("torchscript", "dynamo"), "torchscript": ("torchscript",), "dynamo": ("dynamo",)}
SLOW_OPS = ("Loop", "Scan")
EXPORT_BATCH = 64
ODD_BATCH = 7
CACHE_VERSION = 1  # bump when a change to export or parity invalidates cached bring-your-own artifacts


@dataclass
class Exported:
    """The checked ONNX file (None when no exporter managed) and what every record says about it."""

    path: Path | None
    notes: dict = field(default_factory=dict)
    reason: str = ""


def parity_batches(batch_sizes: list[int]) -> list[int]:
    """1, an odd size and the largest benchmark batch: a batch size baked into the graph fails one of them."""
    return sorted({1, ODD_BATCH, max(batch_sizes)})


def slow_ops(path: Path) -> int:
    """Loop / Scan nodes in the graph and its functions (usually a per-row embedding path)."""
    model = onnx.load(str(path), load_external_data=False)
    nodes = [*model.graph.node, *(n for f in model.functions for n in f.node)]
    return sum(n.op_type in SLOW_OPS for n in nodes)


def scores(module: nn.Module, x: dict[str, np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        return module(*(torch.from_numpy(v) for v in x.values())).float().numpy().reshape(-1).astype(np.float64)


def parity(module: nn.Module, path: Path, draw: Callable[[int, int], dict], batches: list[int]) -> float:
    """Max |ONNX Runtime - PyTorch| over the batches; raises when a batch fails or the gap is over tolerance."""
    worst = 0.0
    for b in batches:
        x = draw(b, 99 + b)
        ref = scores(module, x)
        try:
            got = onnx_scores(path, x).astype(np.float64)
        except Exception as e:  # noqa: BLE001 - ONNX Runtime refusing the graph or a batch is a parity failure
            raise RuntimeError(f"ONNX Runtime failed at batch {b}: {e}") from None
        gap = float(np.max(np.abs(got - ref))) if got.shape == ref.shape else float("inf")
        if not gap <= PARITY_TOL * max(1.0, float(np.max(np.abs(ref)))):
            raise RuntimeError(f"ONNX Runtime's outputs differ from PyTorch by {gap:.2e} at batch {b} "
                               f"(shapes {list(got.shape)} vs {list(ref.shape)}; tolerance {PARITY_TOL})")
        worst = max(worst, gap)
    return worst


def export_checked(module: nn.Module, draw: Callable[[int, int], dict], names: tuple[str, ...], out: Path,
                   exporter: str, batch_sizes: list[int]) -> Exported:
    """Try each exporter of `exporter` in order; the first whose graph passes parity at every batch is kept."""
    batches = parity_batches(batch_sizes)
    failures: dict[str, str] = {}
    path = out / "model.onnx"
    for name in EXPORTERS[exporter]:
        tmp = out / f"model.{name}.onnx"
        try:
            export_onnx(module, draw(EXPORT_BATCH, 98), names, ("output",), tmp, name)
            gap = parity(module, tmp, draw, batches)
        except Exception as e:  # noqa: BLE001 - the next exporter may manage; every reason is kept
            failures[name] = f"{type(e).__name__}: {str(e).strip()}"
            continue
        os.replace(tmp, path)
        notes = {"exporter": name, "parity_max_abs_gap": gap, "parity_batches": batches,
                 "onnx_loop_ops": slow_ops(path)}
        return Exported(path, {**notes, **({"export_failures": failures} if failures else {})})
    reason = "; ".join(f"{k}: {v}" for k, v in failures.items())
    return Exported(None, {"exporter": None, "export_failures": failures}, f"ONNX export failed ({reason})")


def recheck(module: nn.Module, path: Path, draw: Callable[[int, int], dict], notes: dict, batch_sizes: list[int]
            ) -> dict | None:
    """A cached export's notes, with parity checked at the batches of `batch_sizes` it was not checked at yet
    (None when one fails: export again)."""
    checked = notes.get("parity_batches", [])
    todo = [b for b in parity_batches(batch_sizes) if b not in checked]
    if not todo:
        return notes
    try:
        gap = parity(module, path, draw, todo)
    except Exception:  # noqa: BLE001 - any failure at a new batch means the graph must be exported again
        return None
    return {**notes, "parity_batches": sorted({*checked, *todo}), "parity_max_abs_gap":
            max(gap, notes.get("parity_max_abs_gap", 0.0))}


def cache_key(module: nn.Module, *parts: str) -> str:
    """Hash of the weights, the code of every module class in it, and `parts` (spec, exporter), with the versions of
    torch and onnx: what changes the exported artifact (never the batch sizes, which parity alone depends on)."""
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(f"{k}{v.dtype}{list(v.shape)}".encode())
        h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    for cls in sorted({type(m) for m in module.modules()}, key=lambda c: c.__qualname__):
        try:
            h.update(inspect.getsource(cls).encode())
        except (OSError, TypeError):
            h.update(cls.__qualname__.encode())
    for p in (*parts, torch.__version__, onnx.__version__, str(CACHE_VERSION)):
        h.update(p.encode())
    return h.hexdigest()[:16]
