"""Builds a serialized TensorRT engine from ONNX with the builder API (10.x and 11.x), reusing a timing cache."""

from __future__ import annotations

import time
from pathlib import Path

from backends.trt_plan import BuildPlan, parse_version, parser_error_text


def parse_onnx(trt, builder, logger, onnx_path: Path, plan: BuildPlan):
    """A network definition parsed from the ONNX file; a one-line error naming the nodes it cannot take."""
    flags = 0
    if plan.strongly_typed and parse_version(trt.__version__)[0] < 11:  # 11.x: strong typing is the only mode
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = []
        for i in range(parser.num_errors):
            e = parser.get_error(i)
            name = e.node_name() if hasattr(e, "node_name") else str(e.node())
            op = e.node_operator() if hasattr(e, "node_operator") else ""
            errors.append((name, op, e.desc()))
        raise RuntimeError(parser_error_text(onnx_path, trt.__version__, errors))
    return network, parser


def build_engine(trt, logger, onnx_path: Path, plan: BuildPlan, profiles: list[dict], settings: dict,
                 timing_cache: bytes) -> tuple[bytes, bytes, float]:
    """(serialized engine, updated timing cache, build seconds)."""
    builder = trt.Builder(logger)
    network, _parser = parse_onnx(trt, builder, logger, onnx_path, plan)  # the parser must outlive the build
    config = builder.create_builder_config()
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in plan.clear_flags:
        if hasattr(trt.BuilderFlag, flag):
            config.clear_flag(getattr(trt.BuilderFlag, flag))
    if settings.get("workspace_mb"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings["workspace_mb"]) << 20)
    if settings.get("optimization_level") is not None:
        config.builder_optimization_level = int(settings["optimization_level"])
    for profile in profiles:  # index i = its order here (execution contexts select one by index)
        opt = builder.create_optimization_profile()
        for name, (lo, mid, hi) in profile.items():
            opt.set_shape(name, lo, mid, hi)
        config.add_optimization_profile(opt)
    cache = config.create_timing_cache(timing_cache)
    config.set_timing_cache(cache, ignore_mismatch=False)
    t0 = time.perf_counter()
    blob = builder.build_serialized_network(network, config)
    build_s = time.perf_counter() - t0
    if blob is None:
        raise RuntimeError(f"TensorRT {trt.__version__} failed to build an engine from {onnx_path} "
                           f"({plan.precision}); the builder's messages are in the job log")
    return bytes(blob), bytes(config.get_timing_cache().serialize()), build_s
