"""OpenVINO IR files written from an ONNX export (optionally transformed by NNCF first)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def save_ir(onnx_path: Path, xml: Path, change: Callable | None = None) -> Path:
    """Convert ONNX to IR, apply `change(ov_model)` if given, and save weights uncompressed (fp32 stays fp32)."""
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    if change is not None:
        model = change(model)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml
