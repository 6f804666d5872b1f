"""OpenVINO IR files written from an ONNX export (optionally transformed by NNCF first)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def save_ir(onnx_path: Path, xml: Path, change: Callable | None = None) -> Path:
    """Convert ONNX to IR, apply `change(ov_model)` if given, and save weights uncompressed (fp32 stays fp32)."""
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    if change is not None:
        model = change(model)
    tmp = xml.with_name(f"{xml.stem}.{os.getpid()}.tmp.xml")  # concurrent builders never share a scratch file
    ov.save_model(model, str(tmp), compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
    os.replace(tmp, xml)
    return xml
