"""ONNX export with a dynamic batch axis, and the parity check run before any timing."""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

PARITY_TOL = 1e-5


def batch_axes(module: nn.Module, n: int) -> tuple:
    """torch.export's dynamic_shapes: axis 0 of every input is one shared batch size (forward(*xs): one tuple)."""
    batch = torch.export.Dim("batch")
    axes = tuple({0: batch} for _ in range(n))
    kinds = [p.kind for p in inspect.signature(module.forward).parameters.values()]
    return (axes,) if kinds == [inspect.Parameter.VAR_POSITIONAL] else axes


def export_onnx(module: nn.Module, example: dict[str, np.ndarray], input_names: tuple[str, ...],
                output_names: tuple[str, ...], path: Path, exporter: str = "torchscript",
                item_input: str | None = None) -> Path:
    """Export with a dynamic batch axis (and a dynamic axis 1 on `item_input` and the outputs: items per request).
    torchscript (default for built-in models: fast, one Gather per table) or dynamo (torch.export + onnxscript)."""
    args = tuple(torch.from_numpy(example[k]) for k in input_names)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.onnx")  # concurrent builders never share a scratch file
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(module.eval(), args, str(tmp), input_names=list(input_names),
                              output_names=list(output_names), dynamic_shapes=batch_axes(module, len(args)),
                              dynamo=True, external_data=False, verbose=False)
        else:
            axes = {name: {0: "batch"} for name in (*input_names, *output_names)}
            for name in (item_input, *output_names) if item_input else ():
                axes[name][1] = "items"
            torch.onnx.export(module.eval(), args, str(tmp), input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=axes, opset_version=17, dynamo=False)
    os.replace(tmp, path)
    return path


def onnx_scores(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: graph-optimizer notes about Loop subgraphs are not the user's
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in inputs.items() if k in names})[0].reshape(-1)


def parity_gap(reference: np.ndarray, path: Path, inputs: dict[str, np.ndarray]) -> float:
    """Max absolute difference between reference scores and ONNX Runtime's scores for the file."""
    return float(np.max(np.abs(onnx_scores(path, inputs).astype(np.float64) - reference)))


def export_checked(module: nn.Module, path: Path, check: dict[str, np.ndarray], input_names: tuple[str, ...],
                   output_names: tuple[str, ...], parity=None, item_input: str | None = None) -> Path:
    """Export, then refuse the file unless ONNX Runtime reproduces the module's scores on `check`
    (`parity(module, path, check)` replaces the default score comparison where a family needs its own)."""
    from models.train import predict

    export_onnx(module, check, input_names, output_names, path, item_input=item_input)
    if parity:
        gap = parity(module, path, check)
    else:
        gap = parity_gap(predict(module, check, input_names).astype(np.float64), path, check)
    if gap > PARITY_TOL:
        path.unlink()
        raise RuntimeError(f"ONNX Runtime's outputs differ from PyTorch by {gap:.2e} (> {PARITY_TOL})")
    return path
