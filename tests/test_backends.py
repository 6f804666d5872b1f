"""The exported artifacts (per-backend score parity lives in test_conformance.py)."""

import onnx
import pytest

from backends import registry
from models.variants import get_variant


@pytest.fixture(scope="module")
def fp32(tiny_ws):
    return tiny_ws.prepare(get_variant("fp32"), {"torch", "onnx"})


def test_export_uses_gather_and_dynamic_batch(fp32):
    graph = onnx.load(fp32.files["onnx"]).graph
    ops = {n.op_type for n in graph.node}
    assert "Gather" in ops and "Loop" not in ops
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_artifacts_are_cached(tiny_ws, fp32):
    from pathlib import Path

    before = Path(fp32.files["onnx"]).stat().st_mtime_ns
    again = tiny_ws.prepare(get_variant("fp32"), {"onnx"})
    assert Path(again.files["onnx"]).stat().st_mtime_ns == before


def test_unavailable_backends_say_why():
    ok, why = registry.get("tensorrt").available()
    if not ok:
        assert "pip install" in why or "GPU" in why
