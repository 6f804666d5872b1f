"""What a TensorRT build should be, decided without TensorRT: version checks, precision mechanism per version,
optimization-profile shapes, engine cache keys and the messages a user sees when something does not fit."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

MIN_VERSION = (10, 0)
TENSORRT_HINT = ("pip install recbench[tensorrt] on a machine with an NVIDIA GPU (the tensorrt-cu12/13-libs wheels "
                 "download from NVIDIA's package index, which must be reachable)")
FLOAT_TYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class PlanError(ValueError):
    """A build that cannot be made as asked (wrong precision for this version, a shape the profile can't take)."""


def parse_version(version: str) -> tuple[int, ...]:
    """'10.8.0.43' -> (10, 8, 0, 43); trailing text such as 'rc1' or '+cuda12' is ignored."""
    parts = re.findall(r"\d+", version.split("+")[0])
    if not parts:
        raise ValueError(f"not a version: {version!r}")
    return tuple(int(p) for p in parts)


def version_reason(version: str) -> str | None:
    """Why this TensorRT is too old for recbench; None when it will do."""
    if parse_version(version)[:2] < MIN_VERSION:
        return (f"TensorRT {version} is too old: recbench needs {'.'.join(map(str, MIN_VERSION))} or newer "
                f"(named I/O tensors, execute_async_v3, INT64 inputs): {TENSORRT_HINT}")
    return None


def tensorrt_reason(version: str | None, has_builder: bool, cuda_reason: str | None) -> str | None:
    """Why the tensorrt backend cannot run here, in one line; None when it can."""
    if version is None:
        return f"tensorrt not installed: {TENSORRT_HINT}"
    too_old = version_reason(version)
    if too_old:
        return too_old
    if not has_builder:
        return (f"TensorRT {version} is a lean/dispatch runtime without the builder: recbench builds engines "
                f"from ONNX and needs the full package ({TENSORRT_HINT})")
    if cuda_reason:
        return f"TensorRT {version} found, but its device buffers come from PyTorch on CUDA: {cuda_reason}"
    return None


@dataclass(frozen=True)
class OnnxTraits:
    """What the ONNX file says about precision and shapes."""

    qdq: bool  # has QuantizeLinear/DequantizeLinear nodes (explicit quantization)
    float_types: tuple[str, ...]  # floating element types of its initializers, e.g. ("float16",)
    inputs: dict[str, tuple[int | str, ...]]  # input name -> shape; a str or -1 marks a dynamic dimension


def onnx_traits(path: str | Path) -> OnnxTraits:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node)
    names = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16",
             onnx.TensorProto.BFLOAT16: "bfloat16"}
    floats = sorted({names[t.data_type] for t in graph.initializer if t.data_type in names})
    weights = {t.name for t in graph.initializer}
    inputs = {i.name: tuple(d.dim_param or (d.dim_value if d.HasField("dim_value") else -1)
                            for d in i.type.tensor_type.shape.dim)
              for i in graph.input if i.name not in weights}
    return OnnxTraits(qdq, tuple(floats), inputs)


@dataclass(frozen=True)
class BuildPlan:
    """How to get the requested precision out of this TensorRT version."""

    precision: str  # fp32 | fp16 | bf16 | int8
    strongly_typed: bool  # tensor types in the ONNX decide each layer's precision
    flags: tuple[str, ...] = ()  # BuilderFlag names to set (10.x weak typing only)
    clear_flags: tuple[str, ...] = ()  # BuilderFlag names to clear (TF32 unless asked for)
    note: str = ""


def _inferred_precision(traits: OnnxTraits) -> str:
    if traits.qdq:
        return "int8"
    if "float32" not in traits.float_types:
        for name, t in FLOAT_TYPES.items():
            if t in traits.float_types:
                return name
    return "fp32"


def select_plan(version: str, requested: str | None, traits: OnnxTraits, tf32: bool = False) -> BuildPlan:
    """The precision mechanism: 10.x builder flags (weak typing) or strongly typed networks (always in 11.x,
    and for Q/DQ int8 in 10.x); int8 only from an ONNX with Q/DQ nodes (the int8-static variant)."""
    precision = requested or _inferred_precision(traits)
    major = parse_version(version)[0]
    clear = () if tf32 else ("TF32",)
    if precision == "int8":
        if not traits.qdq:
            raise PlanError("int8 on TensorRT needs an ONNX with QuantizeLinear/DequantizeLinear nodes (the "
                            "int8-static variant); this one has none, and calibration-based implicit int8 is "
                            "deprecated in TensorRT 10 and removed in 11")
        return BuildPlan("int8", True, (), clear, "explicit quantization: Q/DQ nodes decide int8, other layers "
                                                  "keep their ONNX types")
    if precision not in FLOAT_TYPES:
        raise PlanError(f"unknown precision '{precision}'; valid: {', '.join([*FLOAT_TYPES, 'int8'])}")
    if precision == "fp32":
        return BuildPlan("fp32", major >= 11, (), clear, "fp32 network, no reduced-precision types or flags")
    if FLOAT_TYPES[precision] in traits.float_types and "float32" not in traits.float_types:
        return BuildPlan(precision, True, (), clear, "strongly typed: the ONNX's tensor types are the precision")
    if major >= 11:
        raise PlanError(f"TensorRT {version} builds strongly typed networks only (builder precision flags were "
                        f"removed in 11.0): {precision} needs an ONNX whose weights are {FLOAT_TYPES[precision]} "
                        f"(the {precision} variant, or ModelOpt AutoCast); this one has "
                        f"{', '.join(traits.float_types) or 'no float weights'}")
    flag = precision.upper()
    return BuildPlan(precision, False, (flag,), clear, f"weak typing: builder flag {flag} lets TensorRT pick "
                                                      f"{precision} kernels where faster")


def profile_shapes(inputs: dict[str, tuple[int | str, ...]], batch: int, max_batch: int
                   ) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """min/opt/max shape per input: batch 1 .. max(batch, max_batch), tuned for the job's batch."""
    if batch < 1:
        raise PlanError(f"batch size must be positive, got {batch}")
    top = max(batch, max_batch)
    out = {}
    for name, shape in inputs.items():
        if not shape:
            raise PlanError(f"input '{name}' is a scalar; recbench expects a batch dimension first")
        rest = shape[1:]
        if any(isinstance(d, str) or d < 0 for d in rest):
            raise PlanError(f"input '{name}' has a dynamic dimension other than the batch {list(shape)}: "
                            "only the first (batch) dimension may vary")
        rest = tuple(int(d) for d in rest)
        if not (isinstance(shape[0], str) or shape[0] < 0):  # a fixed batch: the engine takes exactly that
            fixed = (int(shape[0]), *rest)
            if shape[0] != batch:
                raise PlanError(f"input '{name}' has a fixed batch of {shape[0]}; the job asks for {batch}")
            out[name] = (fixed, fixed, fixed)
            continue
        out[name] = ((1, *rest), (batch, *rest), (top, *rest))
    return out


@dataclass(frozen=True)
class GpuId:
    name: str
    compute_capability: str


def _digest(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


def profile_set(inputs: dict[str, tuple[int | str, ...]], batch: int, max_batch: int, static: bool) -> list[dict]:
    """The engine's optimization profiles: for static shapes one pinned to the job's batch (min = opt = max: what
    the timed contexts use) first, then the dynamic one (1..max_batch, for every other batch: the quality chunks)."""
    dynamic = profile_shapes(inputs, batch, max_batch)
    return [{k: (opt, opt, opt) for k, (_, opt, _) in dynamic.items()}, dynamic] if static else [dynamic]


def listed(profiles: list[dict]) -> list[dict]:
    """The profiles as JSON lists (engine keys, sidecars, backend_settings)."""
    return [{k: [list(s) for s in v] for k, v in p.items()} for p in profiles]


def engine_key(artifact_sha256: str, version: str, gpu: GpuId, plan: BuildPlan, profiles: list[dict],
               settings: dict) -> str:
    """Cache key of an engine: the same ONNX, TensorRT version, GPU, precision, profiles and build settings."""
    return _digest({"artifact": artifact_sha256, "tensorrt": version, "gpu": asdict(gpu), "plan": asdict(plan),
                    "profile": listed(profiles), "settings": settings})


def timing_cache_key(version: str, gpu: GpuId) -> str:
    """Timing caches hold per-layer tactic timings: valid across models, not across versions or GPUs."""
    return _digest({"tensorrt": version, "gpu": asdict(gpu)})


def engine_mismatch(meta: dict, path: str | Path, version: str, gpu: GpuId) -> str | None:
    """Why an engine built as `meta` says cannot run with this TensorRT on this GPU; None when it can."""
    built = (meta.get("tensorrt"), meta.get("gpu"), meta.get("compute_capability"))
    if built == (version, gpu.name, gpu.compute_capability):
        return None
    return (f"engine {path} was built by TensorRT {built[0]} for {built[1]} (sm {built[2]}); this is TensorRT "
            f"{version} on {gpu.name} (sm {gpu.compute_capability}): engines are tied to both, rebuild it")


def parser_error_text(path: str | Path, version: str, errors: list[tuple[str, str, str]]) -> str:
    """One line for an ONNX TensorRT cannot parse: (node name, op type, description) per error."""
    if not errors:
        return f"TensorRT {version} could not parse {path} (no detail from the parser)"
    shown = "; ".join(f"node '{n or '?'}' ({op or '?'}): {desc}" for n, op, desc in errors[:3])
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"TensorRT {version} cannot parse {path}: {shown}{more}"


TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
                "INT64": "int64", "BOOL": "bool", "UINT8": "uint8", "FP8": "float8_e4m3fn"}


def torch_dtype_name(trt_dtype) -> str:
    """torch dtype name for a TensorRT DataType (or its name, e.g. 'DataType.HALF')."""
    name = str(trt_dtype).rsplit(".", 1)[-1].upper()
    if name not in TORCH_DTYPES:
        raise PlanError(f"TensorRT I/O type {name} has no torch equivalent")
    return TORCH_DTYPES[name]
