"""ONNX export with a dynamic batch axis, and the parity check run before any timing."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

PARITY_TOL = 1e-5


def export_onnx(module: nn.Module, example: dict[str, np.ndarray], input_names: tuple[str, ...],
                output_names: tuple[str, ...], path: Path) -> Path:
    """Export with the TorchScript-based exporter (fast, yields one Gather per embedding table)."""
    axes = {name: {0: "batch"} for name in (*input_names, *output_names)}
    args = tuple(torch.from_numpy(example[k]) for k in input_names)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.onnx")  # concurrent builders never share a scratch file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(tmp), input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=axes, opset_version=17, dynamo=False)
    os.replace(tmp, path)
    return path


def onnx_scores(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in inputs.items() if k in names})[0].reshape(-1)


def parity_gap(reference: np.ndarray, path: Path, inputs: dict[str, np.ndarray]) -> float:
    """Max absolute difference between reference scores and ONNX Runtime's scores for the file."""
    return float(np.max(np.abs(onnx_scores(path, inputs).astype(np.float64) - reference)))


def export_checked(module: nn.Module, path: Path, check: dict[str, np.ndarray], input_names: tuple[str, ...],
                   output_names: tuple[str, ...], parity=None) -> Path:
    """Export, then refuse the file unless ONNX Runtime reproduces the module's scores on `check`
    (`parity(module, path, check)` replaces the default score comparison where a family needs its own)."""
    from models.train import predict

    export_onnx(module, check, input_names, output_names, path)
    if parity:
        gap = parity(module, path, check)
    else:
        gap = parity_gap(predict(module, check, input_names).astype(np.float64), path, check)
    if gap > PARITY_TOL:
        path.unlink()
        raise RuntimeError(f"ONNX Runtime's outputs differ from PyTorch by {gap:.2e} (> {PARITY_TOL})")
    return path
