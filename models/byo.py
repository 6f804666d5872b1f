"""Bring your own model: an ONNX file, an OpenVINO IR, a TensorRT engine or a PyTorch module factory."""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from models.artifacts import BENCH_SEED, CALIBRATION_SEED, EVAL_SEED, Prepared, cache_root, count_params
from models.byo_check import bind, preflight
from models.byo_export import cache_key, export_checked, recheck, slow_ops
from models.byo_spec import InputSpec, ModelInput, SpecFile, input_draws, numpy_dtype, read_spec
from models.compress.base import size_breakdown
from models.compress.calibration import read_calibration
from models.errors import ModelError
from models.fileio import save_atomic
from models.variants import Variant

FILE_FORMATS = {".onnx": "onnx", ".xml": "openvino", ".engine": "engine", ".plan": "engine", ".trt": "engine"}
AS_GIVEN = "as-given"
@dataclass
class Signature:
    """An input as the model file declares it: dims are ints, or None where symbolic / dynamic."""

    name: str
    dtype: np.dtype
    dims: list[int | None]
    table_rows: int | None = None  # rows of the embedding table the input indexes, where that is visible


def onnx_signature(path: Path) -> tuple[list[Signature], int]:
    """The graph's inputs (initializers excluded) and its parameter count."""
    import onnx
    from onnx import helper

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - protobuf and checker errors alike mean an unusable file
        raise ModelError(f"{path} is not a valid ONNX model: {str(e).splitlines()[0][:200]}") from None
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    rows = {n.input[1]: inits[n.input[0]][0] for n in model.graph.node
            if n.op_type == "Gather" and len(n.input) == 2 and n.input[0] in inits}
    out = []
    for v in model.graph.input:
        if v.name in inits:
            continue
        if not v.type.HasField("tensor_type"):
            raise ModelError(f"{path}: input {v.name} is not a tensor; recbench feeds tensor inputs only")
        kind = helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type) if v.type.tensor_type.elem_type else None
        dtype = numpy_dtype(str(np.dtype(kind)) if kind is not None else "undefined", f"{path}: input {v.name}")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
        out.append(Signature(v.name, dtype, dims, rows.get(v.name)))
    return out, sum(int(np.prod(d)) for d in inits.values())


def parameter_name(port) -> str:
    """An IR input's own name: its Parameter's name when the port carries it (a folded Cast adds internal names)."""
    names = port.get_names()
    own = port.get_node().get_friendly_name()
    return own if own in names else min(names, key=lambda n: (n.startswith("/"), n))


def openvino_signature(path: Path) -> list[Signature]:
    import openvino as ov

    if not path.with_suffix(".bin").exists():
        raise ModelError(f"{path}: the weights file {path.with_suffix('.bin').name} is missing beside it")
    try:
        model = ov.Core().read_model(str(path))
    except Exception as e:  # noqa: BLE001 - any parse error means an unusable IR
        raise ModelError(f"{path} is not a valid OpenVINO IR: {str(e).splitlines()[0][:200]}") from None
    return [Signature(parameter_name(p), numpy_dtype(str(p.get_element_type().to_dtype()), f"{path}: input"),
                      [None if d.is_dynamic else d.get_length() for d in p.get_partial_shape()]) for p in model.inputs]


def engine_signature(path: Path) -> list[Signature] | None:
    """A TensorRT engine's inputs (documented TensorRT 10 API); None where TensorRT cannot read it here."""
    try:
        import tensorrt as trt

        engine = trt.Runtime(trt.Logger(trt.Logger.ERROR)).deserialize_cuda_engine(path.read_bytes())
    except Exception:  # noqa: BLE001 - no TensorRT or no GPU here: the input spec must describe the inputs
        return None
    if engine is None:
        raise ModelError(f"{path} is not a TensorRT engine this TensorRT can deserialize")
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    return [Signature(n, np.dtype(trt.nptype(engine.get_tensor_dtype(n))),
                      [None if d < 0 else d for d in engine.get_tensor_shape(n)]) for n in inputs]


def spec_signature(spec: SpecFile, what: str) -> list[Signature]:
    """Inputs of a model with no readable signature: every one must carry a shape in the spec."""
    if not spec.inputs:
        raise ModelError(f"{what} needs --input-spec FILE listing its inputs (name, dtype, shape with 'batch')")
    out = []
    for s in spec.inputs:
        shape = s.shape or (["batch", len(s.columns)] if s.columns else None)
        if shape is None:
            raise ModelError(f"input spec: {s.name} needs a shape (e.g. [batch, 16]) for {what}")
        if s.columns:
            integer = all(not c.dense for c in s.columns)
        else:
            integer = s.cardinality is not None or (s.range is not None and s.dtype is None)
        dtype = numpy_dtype(s.dtype or ("int64" if integer else "float32"), f"input spec: {s.name}")
        out.append(Signature(s.name, dtype, [None if isinstance(d, str) else d for d in shape]))
    return out


def resolve(signature: list[Signature], spec: SpecFile, what: str) -> list[ModelInput]:
    """Merge the model's own signature with the user's spec; reject any mismatch with one clear line."""
    by_name = {s.name: s for s in spec.inputs}
    unknown = sorted(set(by_name) - {s.name for s in signature})
    if unknown:
        raise ModelError(f"input spec names {', '.join(unknown)}, which {what} has no input of; "
                        f"its inputs: {', '.join(s.name for s in signature)}")
    return [resolve_one(sig, by_name.get(sig.name)) for sig in signature]


def resolve_one(sig: Signature, s: InputSpec | None) -> ModelInput:
    where = f"input {sig.name}"
    dtype = sig.dtype
    if s is not None and s.dtype is not None and numpy_dtype(s.dtype, where) != dtype:
        raise ModelError(f"{where}: the spec says {s.dtype}, the model takes {dtype}")
    dims: list[int | str | None] = list(sig.dims)
    if s is not None and s.shape is not None:
        if len(s.shape) != len(dims) or any(isinstance(a, int) and b is not None and a != b
                                            for a, b in zip(s.shape, dims, strict=True)):
            raise ModelError(f"{where}: the spec's shape {s.shape} does not fit the model's {dims}")
        dims = list(s.shape)
    if not dims:
        raise ModelError(f"{where} is a scalar; recbench needs a batch axis on every input")
    batch = next((i for i, d in enumerate(dims) if isinstance(d, str) and d == "batch"), None)
    if batch is None:
        batch = next((i for i, d in enumerate(dims) if d is None or isinstance(d, str)), 0)
    shape: list[int | None] = []
    for i, d in enumerate(dims):
        if i == batch:
            shape.append(None)
        elif d is None or isinstance(d, str):
            raise ModelError(f"{where}: axis {i} has no fixed size; give its shape in --input-spec (e.g. [batch, 16])")
        else:
            shape.append(int(d))
    if s is not None and s.columns is not None and shape[-1] != len(s.columns):
        raise ModelError(f"{where}: the spec lists {len(s.columns)} columns, the input's last axis has {shape[-1]}")
    fixed = dims[batch] if isinstance(dims[batch], int) else None
    return ModelInput(sig.name, dtype, shape, fixed, input_draws(s, dtype, sig.table_rows, where))


class AsGiven(Variant):
    """The user's model unchanged, in the formats it could be had in; `unbuilt` says why the others are missing."""

    def __init__(self, files: dict[str, str], unbuilt: dict[str, str]):
        super().__init__()
        self.name, self.summary = AS_GIVEN, "a bring-your-own model, as given"
        self.formats = tuple(files)
        self.files = files
        self.unbuilt = unbuilt


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


class ByoModel:
    """What a sweep needs of a model family and its workspace, for a model recbench did not build.

    Its variants: every graph-level technique on its ONNX (a file, or a factory's export), and the module-level
    ones where a torch factory gives a module; `fp32` names the model as given (the baseline of every variant).
    """

    default_preset = AS_GIVEN
    quality_entry = "models.quality:evaluate_ranking"
    train_batch = 256  # fine-tuning and distillation with the user's labelled data

    def __init__(self, name: str, inputs: list[ModelInput], variant: AsGiven, params: int | None, kind: str,
                 spec: SpecFile, module=None, onnx_file: Path | None = None, student: str | None = None):
        self.name, self.inputs, self.variant, self.params, self.kind = name, inputs, variant, params, kind
        self.spec, self.module, self.onnx_file, self.student_entry = spec, module, onnx_file, student
        self.input_names = self.names = tuple(i.name for i in inputs)
        self.dir = artifact_dir(name)
        self.onnx_unbuilt = variant.unbuilt.get("onnx") or (
            None if onnx_file else f"{kind} is not ONNX; graph-level techniques read ONNX files")
        self.calibration = read_calibration(spec.calibration, self.features(2, 0)) if spec.calibration else None
        self.calibration_source = str(spec.calibration) if spec.calibration else "input spec distribution"
        self.reference = self.write_reference()
        self.notes: dict = {}  # how it was bound and exported, stored in every record of it (variant_notes)

    def preset(self, name: str) -> None:
        if name != AS_GIVEN:
            raise ModelError(f"presets apply to built-in models; {self.name} runs as given (valid: {AS_GIVEN})")

    def check_batch_sizes(self, sizes: list[int]) -> None:
        check_batch_sizes(self.name, self.inputs, sizes)

    def features(self, n: int, seed: int) -> dict[str, np.ndarray]:
        return sample_inputs(self.inputs, n, seed)

    def bench_inputs(self, batch_size: int, pool: int) -> list[dict[str, np.ndarray]]:
        return [self.features(batch_size, BENCH_SEED + 1000 * i) for i in range(pool)]

    # what variants need of the model (see models.variants.Variant)
    def skeleton(self):
        return self.module

    def baseline(self):
        return self.module

    def base_onnx(self) -> Path:
        """The ONNX every graph-level step starts from (a copy with every node named: quantizers select by name)."""
        from models.compress.onnx_graph import named_nodes

        path = self.dir / "base.onnx"
        return path if path.exists() else named_nodes(self.onnx_file, path)

    def export(self, module, path: Path) -> Path:
        from models.export import export_checked

        return export_checked(module, path, self.features(64, 99), self.input_names, ("output",))

    def variant_dir(self, name: str) -> Path:
        d = self.dir / "variants" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def train_set(self) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        return labelled_data(self.spec, self.input_names) if self.spec.labelled else None

    finetune_set = train_set

    def calibration_inputs(self, n: int) -> dict[str, np.ndarray]:
        return self.calibration if self.calibration is not None else self.features(n, CALIBRATION_SEED)

    def student_reason(self) -> str | None:
        if self.module is None:
            return f"distilled: {self.kind} has no PyTorch module to teach a student"
        if self.student_entry is None:
            return "distilled: no student given (--student pkg.mod:build_small)"
        if self.spec.labelled is None:
            return "distilled: needs labelled data (labelled: in the input spec) to train the student on"
        return None

    def student(self):
        from torch import nn

        module = load_factory(self.student_entry)()
        if not isinstance(module, nn.Module):
            raise ModelError(f"--student {self.student_entry}: the factory returned {type(module).__name__}")
        return module

    def student_summary(self) -> str:
        return self.student_entry or ""

    def prepare(self, variant: Variant, formats: set[str]) -> Prepared:
        if variant is self.variant:
            notes = {**(size_breakdown(self.module) if self.module is not None else {}), **self.notes}
            return Prepared(self.name, AS_GIVEN, variant.name, {f: variant.files[f] for f in formats}, self.params,
                            None, self.reference, notes)
        module = variant.module(self)
        out = self.variant_dir(variant.name)
        files = {f: str(variant.write(self, module, f, out)) for f in sorted(formats)}
        return Prepared(self.name, AS_GIVEN, variant.name, files, count_params(module) if module else self.params,
                        None, self.reference, variant.notes(self, module))

    def write_reference(self) -> str:
        """eval.npz: held-out inputs (the user's labelled data, else drawn from the spec with a seed of their own)
        scored by the model as given, the baseline of every variant's quality (labelled) or fidelity (unlabelled)."""
        from models.quality import auc, logloss

        if self.module is not None:
            from models.train import predict

            score = lambda x: predict(self.module, x, self.input_names)  # noqa: E731
        elif self.onnx_file is not None:
            from models.export import onnx_scores

            score = lambda x: onnx_scores(self.onnx_file, x)  # noqa: E731
        else:
            return ""
        data = self.train_set()
        x, labels = data if data else (self.features(FIDELITY_SAMPLES, EVAL_SEED), None)
        scores = score(x).astype(np.float64).reshape(len(next(iter(x.values()))), -1)  # a row per sample
        scores = scores[:, 0] if scores.shape[1] == 1 else scores
        extra = {} if labels is None else {"labels": labels, "auc": auc(labels, scores),
                                           "logloss": logloss(labels, scores)}
        path = self.dir / "eval.npz"
        save_atomic(path, lambda t: np.savez(t.open("wb"), scores=scores, **extra,
                                             **{f"x_{k}": v for k, v in x.items()}))
        return str(path)


FIDELITY_SAMPLES = 4096  # unlabelled reference inputs for fidelity to the model as given


def labelled_data(spec: SpecFile, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    try:
        data = np.load(spec.labelled)
        return {n: data[n] for n in names}, data["labels"].astype(np.float32)
    except (OSError, KeyError, ValueError) as e:
        raise ModelError(f"labelled data {spec.labelled}: needs arrays {', '.join(names)} and labels ({e})") from None


def artifact_dir(name: str) -> Path:
    root = cache_root() / "byo"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))


def from_file(path: Path, spec: SpecFile, student: str | None = None) -> ByoModel:
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ModelError(f"{path}: unsupported model file; valid: {', '.join(FILE_FORMATS)} or module:factory")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    params = None
    if fmt == "onnx":
        signature, params = onnx_signature(path)
    elif fmt == "openvino":
        signature = openvino_signature(path)
    else:
        signature = engine_signature(path) or spec_signature(spec, f"TensorRT engine {path.name} (unreadable here)")
    inputs = resolve(signature, spec, str(path))
    if spec.labelled is not None and fmt != "onnx":
        raise ModelError("labelled data (quality) is supported for ONNX files and PyTorch factories")
    kind = {"onnx": "an ONNX file", "openvino": "an OpenVINO IR", "engine": "a TensorRT engine"}[fmt]
    model = ByoModel(safe_name(path.stem), inputs, AsGiven({fmt: str(path.resolve())}, {}), params, kind, spec,
                     onnx_file=path.resolve() if fmt == "onnx" else None, student=student)
    if fmt == "onnx":
        model.notes = {"onnx_loop_ops": slow_ops(path)}
    return model


def load_factory(entry: str, flag: str = "--model"):
    """The user's factory; the working directory is importable, as with `python -m` (spawned jobs inherit it)."""
    module_name, _, attr = entry.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import failure of the user's code is bad input
        raise ModelError(f"cannot import {module_name} for {flag} {entry}: {type(e).__name__}: {e}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"{flag} {entry}: {module_name} has no callable {attr}")
    return factory


def check_batch_sizes(name: str, inputs: list[ModelInput], sizes: list[int]) -> None:
    for i in inputs:
        if i.fixed_batch is not None and any(b != i.fixed_batch for b in sizes):
            raise ModelError(f"{name}: input {i.name} fixes the batch size at {i.fixed_batch}; "
                             f"run with --batch-sizes {i.fixed_batch} or export it with a dynamic batch axis")


def sample_inputs(inputs: list[ModelInput], n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i.name: i.sample(rng, n) for i in inputs}


def build_module(entry: str):
    """The user's factory called: an eval-mode torch.nn.Module, or one line saying why not."""
    from torch import nn

    factory = load_factory(entry)
    try:
        module = factory()
    except Exception as e:  # noqa: BLE001 - the user's factory failing is bad input
        raise ModelError(f"--model {entry}: the factory raised {type(e).__name__}: {e}") from None
    if not isinstance(module, nn.Module):
        raise ModelError(f"--model {entry}: the factory returned {type(module).__name__}, not a torch.nn.Module")
    return module.eval()


def from_factory(entry: str, spec: SpecFile, student: str | None, exporter: str, batch_sizes: list[int]
                 ) -> ByoModel:
    """Build the user's module, check it on the spec (pre-flight), then reuse or write its torch and ONNX files."""
    module = build_module(entry)
    what = f"--model {entry}"
    inputs = resolve(spec_signature(spec, f"factory {entry}"), spec, f"factory {entry}")
    names = tuple(i.name for i in inputs)
    name = safe_name(entry.replace(":", "."))
    params = count_params(module)
    check_batch_sizes(name, inputs, batch_sizes)
    module, binding = bind(module, names, spec.as_dict, what)
    preflight(module, inputs, binding, what)
    if student is not None:
        load_factory(student, "--student")  # a bad entry is bad input now, not a failed job later
    labelled = spec.labelled.stat().st_mtime_ns if spec.labelled and spec.labelled.exists() else None
    key = cache_key(module, spec.model_dump_json(), str(labelled), exporter)  # batch sizes change no artifact
    draw = partial(sample_inputs, inputs)
    saved = cached_export(cache_root() / "byo" / f"{name}-{key}", module, draw, names, exporter, batch_sizes,
                          binding)
    if not saved["files"]:
        raise ModelError(f"{what}: the module could be neither saved nor exported ({saved['unbuilt']['torch']})")
    files = saved["files"]
    model = ByoModel(name, inputs, AsGiven(files, saved["unbuilt"]), params, "a PyTorch factory", spec,
                     module=module, onnx_file=Path(files["onnx"]) if "onnx" in files else None, student=student)
    model.notes = {**saved["notes"], "binding": saved["binding"]}
    return model


def cached_export(out: Path, module, draw, names: tuple[str, ...], exporter: str, batch_sizes: list[int],
                  binding: str) -> dict:
    """byo.json of `out` (module saved, ONNX exported and parity-checked), written unless there; a cached ONNX not
    yet checked at this run's batches is checked at them (exported again only if that fails)."""
    import torch

    done = out / "byo.json"
    if done.exists():
        saved = json.loads(done.read_text())
        if "onnx" not in saved["files"]:
            return saved
        notes = recheck(module, Path(saved["files"]["onnx"]), draw, saved["notes"], batch_sizes)
        if notes == saved["notes"]:
            return saved
        if notes is not None:
            saved["notes"] = notes
            save_atomic(done, lambda t: t.write_text(json.dumps(saved)))
            return saved
    out.mkdir(parents=True, exist_ok=True)
    files, unbuilt = {}, {}
    try:
        torch.save(module, out / "model.pt")
        files["torch"] = str(out / "model.pt")
    except Exception as e:  # noqa: BLE001 - e.g. a class defined where pickle cannot find it
        unbuilt["torch"] = f"saving the module failed: {type(e).__name__}: {e}"
    onnx = export_checked(module, draw, names, out, exporter, batch_sizes)
    if onnx.path is not None:
        files["onnx"] = str(onnx.path)
    else:
        unbuilt["onnx"] = onnx.reason
    saved = {"files": files, "unbuilt": unbuilt, "notes": onnx.notes, "binding": binding}
    save_atomic(done, lambda t: t.write_text(json.dumps(saved)))
    return saved


def is_byo(model: str) -> bool:
    """A model given as a file path or a module:factory entry rather than a built-in name."""
    return ":" in model or "/" in model or Path(model).suffix.lower() in FILE_FORMATS or Path(model).is_file()


def open_byo(model: str, spec_path: Path | None, student: str | None = None, calibration: Path | None = None,
             exporter: str = "auto", batch_sizes: list[int] | None = None) -> ByoModel:
    """The user's model with its inputs resolved and checked; batch_sizes: the sweep's (parity runs at the largest)."""
    spec = read_spec(spec_path)
    spec.calibration = calibration or spec.calibration  # the command line's file wins over the spec's
    sizes = batch_sizes or [64]
    if ":" in model and not Path(model).exists():
        return from_factory(model, spec, student, exporter, sizes)
    byo = from_file(Path(model), spec, student)
    byo.check_batch_sizes(sizes)
    return byo
