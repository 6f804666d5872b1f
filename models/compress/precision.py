"""fp16 and bf16: half-precision weights (and compute where the runtime and CPU have it)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from models.compress.base import Technique
from models.compress.openvino_ir import save_ir
from models.errors import NotApplicable
from models.fileio import save_atomic


def to_own_dtype(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: float inputs to the dtype of the layer's own weights (a model that calls `.float()` on its
    inputs, as library models do, would otherwise feed fp32 into fp16 layers)."""
    dtype = next(p.dtype for p in module.parameters(recurse=False) if p.is_floating_point())
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


class CastIO(nn.Module):
    """Runs `inner` in `dtype`, as a deployment would: float inputs are cast on the way in, but for those at the
    positions `keep` (IDs stored as floats: bf16 rounds 999 to 1000), `per_layer` also at every layer with float
    weights (for models that re-cast their inputs); scores back to fp32 on the way out."""

    keep: tuple[int, ...] = ()  # a class default: CastIO pickles from before the field load and run

    def __init__(self, inner: nn.Module, dtype: torch.dtype, per_layer: bool = False, keep: tuple[int, ...] = ()):
        super().__init__()
        self.inner, self.dtype = copy.deepcopy(inner).to(dtype), dtype  # .to() converts in place: keep the original
        self.keep = keep
        for m in self.inner.modules() if per_layer else ():
            if any(p.is_floating_point() for p in m.parameters(recurse=False)):
                m.register_forward_pre_hook(to_own_dtype)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.inner(*(a.to(self.dtype) if a.is_floating_point() and i not in self.keep else a
                            for i, a in enumerate(args))).float()


def fp16_weights(src: Path, dst: Path, min_elements: int = 16) -> Path:
    """Store every float initializer as fp16 with a Cast back to fp32 in front of its users."""
    model = onnx.load(str(src))
    graph = model.graph
    casts, kept = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
        else:
            kept.append(init)
    graph.ClearField("initializer")
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    graph.ClearField("node")
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return dst


def half_module(ws, module: nn.Module, dtype: torch.dtype) -> CastIO:
    """The module in `dtype` with its inputs cast; cast at every layer only where the model needs it (a `.float()` in
    its forward, as library models have, fails the plain cast), since the per-layer hooks cost time on every call."""
    args = [torch.from_numpy(v[:4]) for v in (ws.calibration_inputs(4)[n] for n in ws.names)]
    ids = {i.name for i in getattr(ws, "inputs", ()) if i.id_slots()}  # a bring-your-own spec's ID inputs
    keep = tuple(k for k, n in enumerate(ws.names) if n in ids)
    plain, hooked = CastIO(module, dtype, keep=keep), CastIO(module, dtype, per_layer=True, keep=keep)
    for half in (plain, hooked):
        try:
            with torch.inference_mode():
                half(*args)
            return half
        except Exception as e:  # noqa: BLE001 - whatever the model raises in this dtype, said in the skip reason
            error = e
    raise NotApplicable(f"{str(dtype).removeprefix('torch.')} [torch]: the model does not run with its weights and "
                        f"float inputs in that dtype: {type(error).__name__}: {error}")


class HalfPrecision(Technique):
    """The torch artifact runs in `dtype`; subclasses write the other formats."""

    stage = "artifact"
    dtype: torch.dtype

    def write(self, ws, module, fmt, out_dir, onnx):
        if fmt != "torch":
            return self.write_other(fmt, out_dir, onnx)
        path = out_dir / "model.pt"
        torch.save(half_module(ws, module, self.dtype), path)
        return path

    def write_other(self, fmt: str, out_dir: Path, onnx) -> Path:
        raise NotImplementedError


class FP16(HalfPrecision):
    name = "fp16"
    summary = "fp16 weights (PyTorch computes in fp16; ONNX stores fp16 and computes fp32 on CPUs without fp16 math)"
    formats = ("torch", "onnx")
    dtype = torch.float16

    def write_other(self, fmt, out_dir, onnx):
        return save_atomic(out_dir / "model.fp16.onnx", lambda t: fp16_weights(onnx(), t))

    def notes(self, ws, module):
        return {"weights_dtype": "float16"}


class BF16(HalfPrecision):
    name = "bf16"
    summary = "bf16 compute (PyTorch weights in bf16; OpenVINO inference precision bf16); ONNX Runtime CPU has none"
    formats = ("torch", "openvino")
    dtype = torch.bfloat16

    def write_other(self, fmt, out_dir, onnx):
        return save_ir(onnx(), out_dir / "model.xml")

    def backend_options(self, backend):
        return {"precision": "bf16"} if backend == "openvino" else {}

    def notes(self, ws, module):
        return {"compute_dtype": "bfloat16"}
