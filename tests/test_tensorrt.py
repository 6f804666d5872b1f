"""TensorRT: version checks, precision per version, profile shapes, engine cache keys and files, and the messages
a user sees, all tested on the CPU; engine building and execution are marked `tensorrt` and skip with the reason
TensorRT gives on this machine (its builder cannot be installed here, see DESIGN.md)."""

from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from backends import registry
from backends.base import BackendOptions
from backends.trt_cache import EngineCache
from backends.trt_plan import (
    GpuId,
    OnnxTraits,
    PlanError,
    engine_key,
    engine_mismatch,
    onnx_traits,
    parse_version,
    parser_error_text,
    profile_set,
    profile_shapes,
    select_plan,
    tensorrt_reason,
    torch_dtype_name,
    version_reason,
)

TRT_OK, TRT_WHY = registry.get("tensorrt").available()
needs_trt = pytest.mark.skipif(not TRT_OK, reason=f"TensorRT unusable here: {TRT_WHY}")
FP32 = OnnxTraits(False, ("float32",), {"dense": ("batch", 13), "sparse": ("batch", 26)})
FP16 = replace(FP32, float_types=("float16",))
QDQ = replace(FP32, qdq=True)
H100 = GpuId("NVIDIA H100 80GB HBM3", "9.0")


def test_versions():
    assert parse_version("10.8.0.43") == (10, 8, 0, 43)
    assert parse_version("11.0.0+cuda13") == (11, 0, 0)
    assert "too old" in version_reason("8.6.1") and "10.0 or newer" in version_reason("8.6.1")
    assert version_reason("10.0.1") is None and version_reason("11.2") is None


def test_availability_reasons():
    assert "tensorrt not installed" in tensorrt_reason(None, False, None)
    assert "too old" in tensorrt_reason("8.6.1", True, None)
    assert "without the builder" in tensorrt_reason("10.8.0", False, None)
    why = tensorrt_reason("10.8.0", True, "torch 2.13.0+cpu is a CPU-only build")
    assert why.startswith("TensorRT 10.8.0 found") and "CPU-only" in why
    assert tensorrt_reason("10.8.0", True, None) is None
    ok, why = registry.get("tensorrt").available()
    assert ok or ("tensorrt" in why.lower() and len(why.splitlines()) == 1)


@pytest.mark.parametrize("version, requested, traits, strongly, flags", [
    ("10.8.0", None, FP32, False, ()),
    ("10.8.0", "fp16", FP32, False, ("FP16",)),  # 10.x: weak typing through a builder flag
    ("10.8.0", "bf16", FP32, False, ("BF16",)),
    ("10.8.0", None, FP16, True, ()),  # an fp16 ONNX is already typed
    ("10.8.0", "int8", QDQ, True, ()),  # explicit quantization: Q/DQ nodes decide
    ("11.0.0", None, FP32, True, ()),  # 11.x: always strongly typed
    ("11.1.0", "fp16", FP16, True, ()),
    ("11.1.0", None, QDQ, True, ()),
])
def test_precision_mechanism_per_version(version, requested, traits, strongly, flags):
    plan = select_plan(version, requested, traits)
    assert (plan.strongly_typed, plan.flags) == (strongly, flags)
    assert plan.clear_flags == ("TF32",) and select_plan(version, requested, traits, tf32=True).clear_flags == ()


def test_impossible_precisions_say_what_to_do():
    with pytest.raises(PlanError, match="strongly typed networks only.*fp16 variant"):
        select_plan("11.0.0", "fp16", FP32)
    with pytest.raises(PlanError, match="int8-static variant"):
        select_plan("10.8.0", "int8", FP32)
    with pytest.raises(PlanError, match="valid: fp32, fp16, bf16, int8"):
        select_plan("10.8.0", "fp8", FP32)


def test_profile_covers_the_job_and_the_quality_chunks():
    p = profile_shapes(FP32.inputs, 64, 1024)
    assert p["dense"] == ((1, 13), (64, 13), (1024, 13)) and p["sparse"][1] == (64, 26)
    assert profile_shapes(FP32.inputs, 4096, 1024)["sparse"] == ((1, 26), (4096, 26), (4096, 26))
    assert profile_shapes({"x": (-1, 8)}, 2, 16)["x"] == ((1, 8), (2, 8), (16, 8))
    assert profile_shapes({"x": (8, 4)}, 8, 1024)["x"] == ((8, 4), (8, 4), (8, 4))
    with pytest.raises(PlanError, match="fixed batch of 8"):
        profile_shapes({"x": (8, 4)}, 16, 1024)
    with pytest.raises(PlanError, match="dynamic dimension other than the batch"):
        profile_shapes({"x": ("batch", "seq")}, 1, 1024)


def test_static_shapes_pin_a_profile_to_the_job_batch_before_the_dynamic_one():
    assert profile_set(FP32.inputs, 64, 1024, static=False) == [profile_shapes(FP32.inputs, 64, 1024)]
    pinned, dynamic = profile_set(FP32.inputs, 64, 1024, static=True)
    assert pinned["sparse"] == ((64, 26), (64, 26), (64, 26)) and dynamic == profile_shapes(FP32.inputs, 64, 1024)


def test_engine_key_changes_with_everything_that_changes_the_engine():
    plan = select_plan("10.8.0", None, FP32)
    prof = [profile_shapes(FP32.inputs, 64, 1024)]
    base = engine_key("abc", "10.8.0", H100, plan, prof, {})
    assert base == engine_key("abc", "10.8.0", H100, plan, prof, {})
    others = [engine_key("abd", "10.8.0", H100, plan, prof, {}),
              engine_key("abc", "10.9.0", H100, plan, prof, {}),
              engine_key("abc", "10.8.0", GpuId("NVIDIA A100-SXM4-80GB", "8.0"), plan, prof, {}),
              engine_key("abc", "10.8.0", H100, select_plan("10.8.0", "fp16", FP32), prof, {}),
              engine_key("abc", "10.8.0", H100, plan, [profile_shapes(FP32.inputs, 1, 1024)], {}),
              engine_key("abc", "10.8.0", H100, plan, profile_set(FP32.inputs, 64, 1024, static=True), {}),
              engine_key("abc", "10.8.0", H100, plan, prof, {"workspace_mb": 512})]
    assert len({base, *others}) == 8


def test_engine_cache_files(tmp_path):
    cache = EngineCache(tmp_path / "trt")
    assert cache.lookup("k1", "10.8.0", H100) == (None, "not cached")
    cache.store("k1", b"engine-bytes", {"tensorrt": "10.8.0", "gpu": H100.name, "compute_capability": "9.0"})
    assert cache.lookup("k1", "10.8.0", H100) == (b"engine-bytes", None)
    blob, why = cache.lookup("k1", "10.9.0", H100)  # an entry from another TensorRT version is never used
    assert blob is None and "built by TensorRT 10.8.0" in why and "this is TensorRT 10.9.0" in why
    assert not list(cache.root.glob("*.tmp"))
    cache.save_timing_cache("10.8.0", H100, b"tactics")
    assert cache.timing_cache("10.8.0", H100) == b"tactics"
    assert cache.timing_cache("10.8.0", GpuId("NVIDIA L4", "8.9")) == b""  # per GPU


def test_engine_from_another_gpu_is_refused_with_the_reason():
    meta = {"tensorrt": "10.8.0", "gpu": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}
    why = engine_mismatch(meta, "m.engine", "10.8.0", H100)
    assert "for NVIDIA A100-SXM4-80GB (sm 8.0)" in why and "on NVIDIA H100 80GB HBM3 (sm 9.0)" in why
    assert engine_mismatch({**meta, "gpu": H100.name, "compute_capability": "9.0"}, "m", "10.8.0", H100) is None


def test_parser_errors_name_the_nodes():
    text = parser_error_text("m.onnx", "10.8.0", [("n1", "MyOp", "No importer registered for op: MyOp")] * 4)
    assert text.startswith("TensorRT 10.8.0 cannot parse m.onnx: node 'n1' (MyOp): No importer") and "(+1 more)" in text
    assert "no detail" in parser_error_text("m.onnx", "10.8.0", [])


def test_dtype_mapping():
    assert torch_dtype_name("DataType.HALF") == "float16" and torch_dtype_name("INT64") == "int64"
    with pytest.raises(PlanError, match="no torch equivalent"):
        torch_dtype_name("DataType.FP4")


def _tiny_onnx(path, weight_type=TensorProto.FLOAT, qdq=False):
    w = helper.make_tensor("w", weight_type, [4, 2], np.ones(8).tolist())
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    inits = [w]
    if qdq:
        inits += [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]), helper.make_tensor("z", TensorProto.INT8, [],
                                                                                            [0])]
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
                 helper.make_node("MatMul", ["xd", "w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", weight_type, ["batch", 4])],
                              [helper.make_tensor_value_info("y", weight_type, ["batch", 2])], inits)
    onnx.save(helper.make_model(graph), path)
    return path


def test_onnx_traits(tmp_path):
    t = onnx_traits(_tiny_onnx(tmp_path / "a.onnx"))
    assert t == OnnxTraits(False, ("float32",), {"x": ("batch", 4)})
    assert onnx_traits(_tiny_onnx(tmp_path / "b.onnx", TensorProto.FLOAT16)).float_types == ("float16",)
    qdq = onnx_traits(_tiny_onnx(tmp_path / "c.onnx", qdq=True))
    assert qdq.qdq and select_plan("11.0.0", None, qdq).precision == "int8"


@pytest.fixture(scope="module")
def fp32(tiny_ws):
    from models.variants import get_variant

    return tiny_ws.prepare(get_variant("fp32"), {"onnx"})


def test_real_dlrm_export_gives_a_buildable_plan(fp32):
    traits = onnx_traits(fp32.files["onnx"])
    assert set(traits.inputs) == {"dense", "sparse"} and not traits.qdq
    prof = profile_shapes(traits.inputs, 256, 1024)
    assert prof["sparse"][2][0] == 1024 and all(s[1][0] == 256 for s in prof.values())
    assert select_plan("11.0.0", None, traits).strongly_typed


# --- with TensorRT and a GPU ------------------------------------------------------------------------------------

def trt_backend(path, tmp_path, batch=64, shapes="dynamic", **extra):
    backend = registry.get("tensorrt")()
    backend.load(str(path), BackendOptions(device="cuda:0", batch_size=batch, shapes=shapes,
                                           extra={"cache_dir": str(tmp_path / "engines"), **extra}))
    return backend


@needs_trt
@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.parametrize("shapes", ["dynamic", "static"])
@pytest.mark.parametrize("extra", [{}, {"cuda_graphs": True}, {"inputs": "host"}])
def test_engine_matches_pytorch_and_is_cached(tiny_ws, fp32, tmp_path, extra, shapes):
    from models.train import predict

    batch = tiny_ws.data.features(64, 123)
    expected = predict(tiny_ws.baseline(), batch, tiny_ws.names)
    first = trt_backend(fp32.files["onnx"], tmp_path, shapes=shapes, **extra)
    assert len(first.describe()["profile"]) == (2 if shapes == "static" else 1)
    np.testing.assert_allclose(first.run(batch), expected, atol=1e-4)
    assert first.describe()["cached"] is False and first.describe()["build_s"] > 0
    again = trt_backend(fp32.files["onnx"], tmp_path, shapes=shapes, **extra)
    assert again.describe()["cached"] is True
    np.testing.assert_allclose(again.run(batch), expected, atol=1e-4)
    assert again.memory()["engine_bytes"] > 0 and again.device_times_ms()["compute"] > 0
    assert np.allclose(again.run(tiny_ws.data.features(1024, 9)).shape, (1024,))  # the quality chunk fits


@needs_trt
@pytest.mark.tensorrt
@pytest.mark.gpu
def test_unparseable_onnx_is_one_clear_line(tmp_path):
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="recbench.test")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("recbench.test", 1)]), path)
    with pytest.raises(RuntimeError, match="cannot parse .*NoSuchOp"):
        trt_backend(path, tmp_path)


@needs_trt
@pytest.mark.tensorrt
@pytest.mark.gpu
def test_engine_built_elsewhere_is_refused(fp32, tmp_path):
    import json

    built = trt_backend(fp32.files["onnx"], tmp_path)
    engine = built.describe()["engine"]
    meta_path = engine.replace(".engine", ".json")
    meta = json.loads(open(meta_path).read())
    json.dump({**meta, "tensorrt": "9.9.9"}, open(meta_path, "w"))
    with pytest.raises(RuntimeError, match="built by TensorRT 9.9.9"):
        trt_backend(fp32.files["onnx"], tmp_path, engine=engine)
