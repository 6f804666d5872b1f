"""Every registered backend that this machine can run honours the contract (DESIGN.md "The backend contract"):
load, prepare, infer, outputs equal to the fp32 PyTorch reference, harness options accepted, describe() and
memory() filled. A new registry entry is tested here by itself; an unavailable one skips with its reason."""

import json

import numpy as np
import pytest

from backends import registry
from backends.base import BackendOptions
from bench.config.harness_options import check_options, split_options
from models.train import predict
from models.variants import get_variant


@pytest.fixture(scope="module")
def fp32(tiny_ws):
    return tiny_ws.prepare(get_variant("fp32"), {"torch", "onnx"})


@pytest.mark.parametrize("name", sorted(registry.BACKENDS))
def test_backend_conforms(name, tiny_ws, fp32):
    cls = registry.get(name)
    device = cls.devices[0]
    ok, why = cls.available_on(device)
    assert ok or name not in registry.CPU_BACKENDS, why  # the test extra installs the three CPU runtimes
    if not ok:
        pytest.skip(f"{name}: {why}")
    options = {**registry.PRESET_OPTIONS.get(name, {}), "inject_delay_ms": 1, "timeout_s": 30}
    assert check_options(name, cls, options).inject_delay_ms == 1  # harness options pass every backend
    backend = cls()
    fmt = cls.pick_format(tuple(fp32.files))
    backend.load(fp32.files[fmt], BackendOptions(device=device, threads=1, inputs=tiny_ws.names, batch_size=64,
                                                 extra=split_options(options)[1]))
    batch = tiny_ws.data.features(64, 123)
    handle = backend.prepare(batch)
    backend.infer(handle)
    backend.synchronize()
    got = backend.outputs(handle)
    expected = predict(tiny_ws.baseline(), batch, tiny_ws.names)
    assert got.shape == (64,) and np.std(got) > 0  # the model really ranks: scores differ across samples
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(backend.run(batch), expected, atol=1e-5)  # the quality path gives the same
    described, memory = backend.describe(), backend.memory()
    assert described and json.dumps(described, default=str)  # settings in effect, stored in every record
    assert "gpu_mem_bytes" in memory
