"""NVIDIA TensorRT (native API): availability only until the GPU issue lands the engine path."""

from __future__ import annotations

from backends.base import Backend


class TensorRT(Backend):
    name = "tensorrt"
    formats = ("onnx",)
    devices = ("cuda",)
    requires = ("tensorrt",)
    install_hint = "pip install recbench[tensorrt] on a machine with an NVIDIA GPU"
