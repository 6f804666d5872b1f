"""int8-dynamic: int8 MLP weights, activations quantized on the fly per batch."""

from __future__ import annotations

import os

import torch
from torch import nn

from models.compress.base import Technique
from models.compress.onnx_graph import gemm_to_matmul, weight_nodes
from models.compress.openvino_ir import save_ir
from models.fileio import save_atomic


class Int8Dynamic(Technique):
    name = "int8-dynamic"
    summary = "dynamic int8 MLP weights (PyTorch quantize_dynamic, ORT MatMulInteger, OpenVINO NNCF int8 weights)"
    stage = "artifact"
    formats = ("torch", "onnx", "openvino")
    requires = {"openvino": ("nncf", "pip install nncf (or recbench[openvino])")}

    def write(self, ws, module, fmt, out_dir, onnx):
        if fmt == "torch":
            from torch.ao.quantization import quantize_dynamic

            path = out_dir / "model.pt"
            torch.save(quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8), path)
            return path
        if fmt == "onnx":
            import onnx as onnx_lib
            from onnxruntime.quantization import QuantType, quantize_dynamic

            plain = gemm_to_matmul(onnx(), out_dir / f"model.matmul.{os.getpid()}.onnx")
            nodes = weight_nodes(onnx_lib.load(str(plain)), ("MatMul",))
            out = save_atomic(out_dir / "model.int8-dynamic.onnx", lambda t: quantize_dynamic(
                str(plain), str(t), weight_type=QuantType.QInt8, nodes_to_quantize=nodes, per_channel=True))
            plain.unlink()
            return out
        return save_ir(onnx(), out_dir / "model.xml", compress_int8_weights)


def compress_int8_weights(model):
    """NNCF int8 weight compression of the MatMuls (tables stay fp32); the CPU plugin quantizes activations."""
    import nncf

    return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM,
                                 ignored_scope=nncf.IgnoredScope(types=["Gather"], validate=False))
