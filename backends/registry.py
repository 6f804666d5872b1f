"""Every known backend by name, imported lazily so listing them never loads a runtime."""

from __future__ import annotations

import importlib

from backends.base import Backend

BACKENDS: dict[str, str] = {
    "torch-cpu": "backends.torch_cpu:TorchCPU",
    "onnxruntime": "backends.ort:OnnxRuntime",
    "openvino": "backends.ov:OpenVINO",
    "torch-cuda": "backends.torch_cuda:TorchCUDA",
    "tensorrt": "backends.trt:TensorRT",
    "torch-cuda-graphs": "backends.torch_cuda:TorchCUDA",
    "torch-cuda-host": "backends.torch_cuda:TorchCUDA",
    "tensorrt-host": "backends.trt:TensorRT",
    "onnxruntime-cuda": "backends.ort_gpu:OnnxRuntimeCUDA",
    "onnxruntime-trt": "backends.ort_gpu:OnnxRuntimeTensorRT",
}
# Names that are a backend with preset options, so one sweep can compare them side by side
# (job and config options override these).
PRESET_OPTIONS: dict[str, dict] = {
    "torch-cuda-graphs": {"cuda_graphs": True},
    "torch-cuda-host": {"inputs": "host"},
    "tensorrt-host": {"inputs": "host"},
}
CPU_BACKENDS = ("torch-cpu", "onnxruntime", "openvino")


def load_entry(entry: str):
    """Import the object named by 'module:attribute'."""
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_class(entry: str) -> type[Backend]:
    return load_entry(entry)


def register(name: str, entry: str) -> None:
    """Add a backend (a plugin or a test double) under `name`."""
    BACKENDS[name] = entry


def get(name: str) -> type[Backend]:
    from backends.errors import BackendError

    if name not in BACKENDS:
        raise BackendError(f"unknown backend '{name}'; valid: {', '.join(BACKENDS)}")
    return load_class(BACKENDS[name])
