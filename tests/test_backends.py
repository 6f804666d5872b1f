"""The three CPU runtimes give the same scores as PyTorch on the same inputs."""

import numpy as np
import onnx
import pytest

from backends import registry
from backends.base import BackendOptions
from models.train import predict
from models.variants import get_variant


@pytest.fixture(scope="module")
def fp32(tiny_ws):
    return tiny_ws.prepare(get_variant("fp32"), {"torch", "onnx"})


@pytest.mark.parametrize("name", ["torch-cpu", "onnxruntime", "openvino"])
def test_backend_matches_pytorch(name, tiny_ws, fp32):
    cls = registry.get(name)
    ok, why = cls.available()
    assert ok, why  # the test extra installs all three CPU runtimes
    backend = cls()
    backend.load(fp32.files[cls.pick_format(("torch", "onnx"))], BackendOptions(threads=1, inputs=tiny_ws.names))
    batch = tiny_ws.data.features(64, 123)
    expected = predict(tiny_ws.baseline(), batch, tiny_ws.names)
    handles = [backend.prepare(batch)]
    backend.infer(handles[0])
    backend.synchronize()
    got = backend.outputs(handles[0])
    assert got.shape == (64,)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.std(got) > 0  # the model really ranks: scores differ across samples


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
