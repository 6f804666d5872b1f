"""Model variants: the fp32 baseline and compositions of compression steps (`distilled+int8-static`), by name."""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path

import torch
from torch import nn

from models.compress import STAGES, TECHNIQUES, Technique
from models.compress.base import size_breakdown
from models.errors import ModelError
from models.fileio import save_atomic

BASE_FORMATS = ("torch", "onnx")  # what the plain export writes; an artifact step decides instead


class Variant:
    """The baseline changed by a sequence of steps; writes one artifact per format it supports.

    `ws` is the model the steps act on: a built-in Workspace or a bring-your-own model. Either gives names,
    skeleton() (its torch module's structure, or None), baseline(), base_onnx(), export(module, path),
    variant_dir(name), train_set() (None without labels), train_batch, calibration_inputs(n),
    calibration_source, student() / student_reason() / student_summary(), kind and onnx_unbuilt.
    """

    unbuilt: dict[str, str] = {}  # format -> why this variant has no artifact in it (shown on skipped jobs)

    def __init__(self, steps: tuple[Technique, ...] = ()):
        self.steps = steps
        self.name = "+".join(s.name for s in steps) or "fp32"
        self.summary = " + ".join(s.summary for s in steps) if steps else "trained fp32 baseline"
        self.artifact_step = next((s for s in steps if s.stage == "artifact"), None)
        self.formats = self.artifact_step.formats if self.artifact_step else BASE_FORMATS
        self.changes = tuple(s for s in steps if s.stage != "artifact")  # what the plain export carries
        self.calibrated = any(s.calibrated for s in steps)

    def skip_reason(self, ws, fmt: str) -> str | None:
        """Why this variant cannot be built in `fmt` for the model `ws` (a `skipped` record), or None."""
        if not self.steps:
            return None
        has_module = ws.skeleton() is not None
        if fmt == "torch" and not has_module:
            return f"{self.name} [torch]: {ws.kind} has no PyTorch module; graph-level steps write ONNX / IR"
        if fmt != "torch" and ws.onnx_unbuilt:
            return f"{self.name} [{fmt}]: graph-level steps need the model's ONNX ({ws.onnx_unbuilt})"
        for step in self.steps:
            why = step.applies(ws, fmt)
            if why:
                return why
            if step.stage != "artifact" and not step.graph_level and not has_module:
                return (f"{step.name} changes torch modules (layers, not a graph): {ws.kind} has none; its graph-level "
                        f"variants are {', '.join(graph_level_names())}")
        return None

    def module(self, ws) -> nn.Module | None:
        """The variant as a torch module (also what its parameter count is taken from); cached once built."""
        base = ws.baseline()
        if base is None or not self.changes:
            return base
        path = ws.variant_dir(Variant(self.changes).name) / "module.pt"
        if path.exists():
            return torch.load(path, weights_only=False).eval()
        module = copy.deepcopy(base)
        torch.manual_seed(0)
        for step in self.changes:
            module = step.transform(ws, module).eval()
        try:
            save_atomic(path, lambda t: torch.save(module, t))
        except (pickle.PicklingError, AttributeError, TypeError):  # a user's class pickle cannot find: not cached
            path.with_name(f"{path.name}.{os.getpid()}.tmp").unlink(missing_ok=True)
        return module

    def plain_onnx(self, ws) -> Path:
        """The ONNX of this variant's module and graph steps (no artifact step), shared by the variants that add one."""
        if not self.changes:
            return ws.base_onnx()
        has_module = ws.skeleton() is not None
        graph = [s for s in self.changes if s.graph_level and (s.graph_first or not has_module)]
        rest = Variant(tuple(s for s in self.changes if s not in graph))
        path = ws.variant_dir(Variant(self.changes).name) / "model.onnx"
        if path.exists():
            return path
        if not graph:
            return ws.export(rest.module(ws), path)
        src, written = rest.plain_onnx(ws), []
        for step in graph:
            src = step.rewrite(ws, src, path.with_name(f"model.{step.name}.{os.getpid()}.tmp.onnx"))
            written.append(src)
        os.replace(src, path)
        for f in written[:-1]:
            f.unlink()
        return path

    def write(self, ws, module: nn.Module | None, fmt: str, out_dir: Path) -> Path:
        own = self.artifact_step.write(ws, module, fmt, out_dir, lambda: self.plain_onnx(ws)) \
            if self.artifact_step else None
        if own is not None:
            return own
        if fmt == "torch":
            path = out_dir / "model.pt"
            torch.save(module, path)
            return path
        if fmt == "onnx":
            return self.plain_onnx(ws)
        raise ValueError(f"{self.name} has no {fmt} artifact")

    def notes(self, ws, module: nn.Module | None) -> dict:
        out = {"steps": [s.name for s in self.steps], **(size_breakdown(module) if module is not None else {})}
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


def graph_level_names() -> list[str]:
    """Techniques that act on any ONNX graph (so on every model given as a file)."""
    return [t.name for t in TECHNIQUES.values() if t.stage == "artifact" or t.graph_level]


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


def applicable(variant: Variant, ws) -> list[str]:
    """The variant's formats that can be built for the model `ws`."""
    return [f for f in variant.formats if variant.skip_reason(ws, f) is None]


def get_variant(name: str, ws=None) -> Variant:
    """A registered variant or a composition by name; the error lists the valid ones (for `ws`'s model if given)."""
    if name in VARIANTS:
        return VARIANTS[name]
    parts = name.split("+")
    unknown = [p for p in parts if p not in TECHNIQUES]
    if unknown or not name:
        valid = [v.name for v in VARIANTS.values() if ws is None or v.name == "fp32" or applicable(v, ws)]
        which = "" if ws is None else f" for {ws.kind}"
        raise ModelError(f"unknown variant '{name}'; valid{which}: {', '.join(valid)}, all "
                        f"(or steps joined by '+', e.g. distilled+int8-static)")
    return compose(parts)


def resolve_variants(names: list[str], ws=None, baseline: Variant | None = None) -> list[Variant]:
    """Variant names as given on the command line; `all` means every registered variant. `baseline` stands in for
    fp32 (a bring-your-own model's `as-given`: the model it was given as is what every variant is compared with)."""
    base = baseline or VARIANTS["fp32"]
    pool = [base, *(v for n, v in VARIANTS.items() if n != "fp32")]
    chosen = pool if "all" in names else [base if n in ("fp32", base.name) else get_variant(n, ws) for n in names]
    return list({v.name: v for v in chosen}.values())


def variant_matrix(ws, baseline: Variant | None = None) -> list[dict]:
    """Per variant of the model `ws`: the levels its steps act on, the formats it builds, and why not the others."""
    rows = []
    for v in resolve_variants(["all"], ws, baseline):
        levels = sorted({level for s in v.steps for level in s.levels}) or ["baseline"]
        why = {f: v.skip_reason(ws, f) for f in v.formats}
        rows.append({"variant": v.name, "level": "+".join(levels), "formats": [f for f, w in why.items() if not w],
                     "reasons": sorted({w for w in why.values() if w})})
    return rows
