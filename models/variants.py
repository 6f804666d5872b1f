"""Model variants: the fp32 baseline and compositions of compression steps (`distilled+int8-static`), by name."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.artifacts import save_atomic
from models.compress import STAGES, TECHNIQUES, Technique
from models.compress.base import size_breakdown
from models.errors import ModelError
from models.export import PARITY_TOL, export_onnx, parity_gap
from models.train import predict

BASE_FORMATS = ("torch", "onnx")  # what the plain export writes; an artifact step decides instead


class Variant:
    """The trained baseline changed by a sequence of steps; writes one artifact per format it supports."""

    unbuilt: dict[str, str] = {}  # format -> why this variant has no artifact in it (shown on skipped jobs)

    def __init__(self, steps: tuple[Technique, ...] = ()):
        self.steps = steps
        self.name = "+".join(s.name for s in steps) or "fp32"
        self.summary = " + ".join(s.summary for s in steps) if steps else "trained fp32 baseline"
        self.artifact_step = next((s for s in steps if s.stage == "artifact"), None)
        self.formats = self.artifact_step.formats if self.artifact_step else BASE_FORMATS

    def module(self, ws) -> nn.Module:
        """The variant as a torch module (also what its parameter count is taken from); cached once built."""
        changes = [s for s in self.steps if s.stage != "artifact"]
        if not changes:
            return ws.baseline()
        path = ws.variant_dir(self.name) / "module.pt"
        if path.exists():
            return torch.load(path, weights_only=False).eval()
        module = copy.deepcopy(ws.baseline())
        torch.manual_seed(0)
        for step in changes:
            module = step.transform(ws, module).eval()
        save_atomic(path, lambda t: torch.save(module, t))
        return module

    def write(self, ws, module: nn.Module, fmt: str, out_dir: Path) -> Path:
        onnx_path = out_dir / "model.onnx"

        def onnx() -> Path:
            return onnx_path if onnx_path.exists() else self.write_onnx(ws, module, onnx_path)

        own = self.artifact_step.write(ws, module, fmt, out_dir, onnx) if self.artifact_step else None
        if own is not None:
            return own
        if fmt == "torch":
            path = out_dir / "model.pt"
            torch.save(module, path)
            return path
        if fmt == "onnx":
            return onnx()
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
        out = {"steps": [s.name for s in self.steps], **size_breakdown(module)}
        for step in self.steps:
            out.update(step.notes(ws, module))
        return out

    def backend_options(self, backend: str) -> dict:
        """Runtime settings this variant needs on a backend (e.g. a precision hint); job options override."""
        out: dict = {}
        for step in self.steps:
            out.update(step.backend_options(backend))
        return out

    def missing(self, fmt: str) -> str | None:
        """What to pip install before this variant can build `fmt`, or None."""
        return next((m for m in (s.missing(fmt) for s in self.steps) if m), None)


def compose(names: list[str]) -> Variant:
    """Steps in stage order (the student first, export-time quantizers last), each at most once."""
    steps = tuple(TECHNIQUES[n] for n in names)
    stages = [STAGES.index(s.stage) for s in steps]
    if len(set(names)) != len(names) or sum(s.stage == "artifact" for s in steps) > 1 or stages != sorted(stages):
        order = ", ".join(f"{stage}: {'/'.join(t.name for t in TECHNIQUES.values() if t.stage == stage)}"
                          for stage in STAGES)
        raise ModelError(f"variant '{'+'.join(names)}' does not compose: each step once, in stage order ({order}), "
                        f"at most one of the last stage")
    return Variant(steps)


# `all`: every single step plus the compositions worth measuring by default.
DEFAULT_COMPOSITIONS = (("distilled", "int8-static"), ("emb-int8", "int8-static"))
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant(), *(compose([n]) for n in TECHNIQUES), *(compose(list(c)) for c in DEFAULT_COMPOSITIONS))}


def get_variant(name: str) -> Variant:
    if name in VARIANTS:
        return VARIANTS[name]
    parts = name.split("+")
    unknown = [p for p in parts if p not in TECHNIQUES]
    if unknown or not name:
        raise ModelError(f"unknown variant '{name}'; valid: {', '.join(VARIANTS)}, all "
                        f"(or steps joined by '+', e.g. distilled+int8-static)")
    return compose(parts)


def resolve_variants(names: list[str]) -> list[Variant]:
    """Variant names as given on the command line; `all` means every registered variant."""
    if "all" in names:
        return list(VARIANTS.values())
    return [get_variant(n) for n in names]
