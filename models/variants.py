"""Model variants: the fp32 baseline and the compressed versions of it, by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.export import PARITY_TOL, export_onnx, parity_gap
from models.train import predict


class Variant:
    """A named transformation of the trained baseline; writes one artifact per format it supports."""

    name = "fp32"
    summary = "trained fp32 baseline"
    formats: tuple[str, ...] = ("torch", "onnx")
    unbuilt: dict[str, str] = {}  # format -> why this variant has no artifact in it (shown on skipped jobs)

    def module(self, ws) -> nn.Module:
        """The variant as a torch module (also what its parameter count is taken from)."""
        return ws.baseline()

    def write(self, ws, module: nn.Module, fmt: str, out_dir: Path) -> Path:
        if fmt == "torch":
            path = out_dir / "model.pt"
            torch.save(module, path)
            return path
        if fmt == "onnx":
            return self.write_onnx(ws, module, out_dir / "model.onnx")
        raise ValueError(f"{self.name} has no {fmt} artifact")

    def write_onnx(self, ws, module: nn.Module, path: Path) -> Path:
        """Export and refuse the file unless ONNX Runtime reproduces the module's scores."""
        check = ws.data.features(256, 99)
        export_onnx(module, check, ws.names, ws.family.output_names, path)
        if ws.family.parity:
            gap = ws.family.parity(module, path, check)
        else:
            gap = parity_gap(predict(module, check, ws.names).astype(np.float64), path, check)
        if gap > PARITY_TOL:
            path.unlink()
            raise RuntimeError(f"ONNX export of {self.name} differs from PyTorch by {gap:.2e} (> {PARITY_TOL})")
        return path

    def notes(self, ws, module: nn.Module) -> dict:
        return {}

    def backend_options(self, backend: str) -> dict:
        """Runtime settings this variant needs on a backend (e.g. a precision hint); job options override."""
        return {}


VARIANTS: dict[str, Variant] = {v.name: v for v in (Variant(),)}


def get_variant(name: str) -> Variant:
    from bench.errors import UserError

    if name not in VARIANTS:
        raise UserError(f"unknown variant '{name}'; valid: {', '.join(VARIANTS)}, all")
    return VARIANTS[name]


def resolve_variants(names: list[str]) -> list[Variant]:
    """Variant names as given on the command line; `all` means every registered variant."""
    if "all" in names:
        return list(VARIANTS.values())
    return [get_variant(n) for n in names]
