"""Builds, trains and caches each model variant's artifacts (torch module, ONNX, ...) by config hash."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models import train
from models.family import CLICK_LABELS, DEFAULT_QUALITY, ModelFamily, config_hash
from models.fileio import cache_root, save_atomic
from models.quality import auc, logloss

ARTIFACT_VERSION = 4  # bump when a change to training or export invalidates cached artifacts
TRAIN_SEED, EVAL_SEED, CALIBRATION_SEED, BENCH_SEED = 1, 2, 3, 4


@dataclass
class Prepared:
    """A variant ready for backends: one file per format, plus what every record reports about it."""

    model: str
    preset: str
    variant: str
    files: dict[str, str]
    params: int
    flops_per_sample: float | None
    reference: str  # eval.npz: held-out inputs, labels and the fp32 baseline's scores
    notes: dict = field(default_factory=dict)


def count_params(module: nn.Module) -> int:
    """Weights, counting a quantized table's codes as the values they stand for (`quantized_weights`)."""
    return sum(p.numel() for p in module.parameters()) + sum(
        b.numel() for name, b in module.named_buffers() if "packed" in name or "weight" in name
    ) + sum(getattr(m, "quantized_weights", 0) for m in module.modules())


def flops_per_sample(module: nn.Module, example: dict[str, np.ndarray], names: tuple[str, ...]) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        module(*(torch.from_numpy(example[k][:1]) for k in names))
    return float(counter.get_total_flops())


def gather_bytes_per_sample(module: nn.Module, example: dict[str, np.ndarray], names: tuple[str, ...]) -> float:
    """Embedding-row bytes one sample reads: rows looked up x bytes per row (codes + scales for quantized tables)."""
    total = [0.0]

    def hook(m: nn.Module, args: tuple, _out) -> None:
        tensors = [*m.parameters(recurse=False), *m.buffers(recurse=False)]
        rows = max(t.shape[0] for t in tensors)
        total[0] += args[0].numel() * sum(t.numel() * t.element_size() for t in tensors) / rows

    hooks = [m.register_forward_hook(hook) for m in module.modules()
             if isinstance(m, nn.Embedding) or hasattr(m, "quantized_weights")]
    try:
        with torch.inference_mode():
            module(*(torch.from_numpy(example[k][:1]) for k in names))
    finally:
        for h in hooks:
            h.remove()
    return total[0]


class Workspace:
    """One model preset's cache folder: its trained baseline, eval data and variant artifacts."""

    def __init__(self, family: ModelFamily, preset_name: str, log: Callable[[str], None] = lambda s: None):
        self.family, self.preset_name = family, preset_name
        self.preset = family.preset(preset_name)
        self.data = family.dataset(self.preset.config)
        key = config_hash(ARTIFACT_VERSION, family.name, self.preset)
        self.dir = cache_root() / f"{family.name}-{preset_name}-{key}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self._baseline: nn.Module | None = None
        self._skeleton: nn.Module | None = None
        self.kind = f"the built-in {family.name}"
        self.onnx_unbuilt: str | None = None
        self.calibration: dict[str, np.ndarray] | None = None  # the user's calibration inputs (--calibration)
        self.calibration_source = "training distribution (its own seed)"

    def use_calibration(self, path: Path) -> None:
        """Calibrate int8-static on the user's file (checked against the model's inputs) instead of the data."""
        from models.compress.calibration import read_calibration

        self.calibration = read_calibration(path, self.data.features(2, 0))
        self.calibration_source = str(path)
        self.calibration_tag = hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    @property
    def names(self) -> tuple[str, ...]:
        return self.family.input_names

    @property
    def item_input(self) -> str | None:
        return self.family.item_input

    def build_module(self, config=None) -> nn.Module:
        return self.family.build(config or self.preset.config)

    def train_set(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        return self.data.labelled(self.preset.train_samples, TRAIN_SEED)

    def finetune_set(self) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """Labelled data for fine-tuning with binary cross-entropy: families whose labels are clicks only."""
        return self.train_set() if self.family.quality_entry in CLICK_LABELS else None

    @property
    def train_batch(self) -> int:
        return self.preset.train_batch

    def skeleton(self) -> nn.Module:
        """The model's structure without training it (the trained baseline once loaded): what techniques inspect."""
        if self._baseline is not None:
            return self._baseline
        if self._skeleton is None:
            self._skeleton = self.build_module()
        return self._skeleton

    def base_onnx(self) -> Path:
        """The trained baseline's ONNX (the fp32 variant's file)."""
        path = self.variant_dir("fp32") / "model.onnx"
        return path if path.exists() else self.export(self.baseline(), path)

    def export(self, module: nn.Module, path: Path) -> Path:
        from models.export import export_checked

        return export_checked(module, path, self.data.features(256, 99), self.names, self.family.output_names,
                              self.family.parity, self.family.item_input)

    def student(self) -> nn.Module:
        from models.compress.distill import student_config

        return self.build_module(student_config(self.preset.config))

    def student_reason(self) -> str | None:
        from models.compress.distill import WIDTH_FIELDS, student_config

        if self.family.fit is not None and self.family.quality_entry != DEFAULT_QUALITY:
            return (f"distilled: {self.family.name} trains with its own objective; distillation on soft labels "
                    f"covers the CTR rankers")
        if student_config(self.preset.config) is None:
            return f"distilled: no student for {self.family.name} (its config has none of {', '.join(WIDTH_FIELDS)})"
        return None

    def student_summary(self) -> dict:
        from models.compress.distill import WIDTH_FIELDS, student_config

        cfg = student_config(self.preset.config)
        return {f: getattr(cfg, f) for f in WIDTH_FIELDS if hasattr(cfg, f)}

    def baseline(self) -> nn.Module:
        """The trained fp32 model (trained once, then loaded from the cache)."""
        if self._baseline is None:
            path = self.dir / "baseline.pt"
            torch.manual_seed(TRAIN_SEED)  # the initial weights too: a retrain gives the same model
            module = self.build_module()
            if path.exists():
                module.load_state_dict(torch.load(path, weights_only=True))
            else:
                self.log(f"training {self.family.name}/{self.preset_name} on {self.preset.train_samples} samples")
                t0 = time.perf_counter()
                if self.family.fit:
                    self.family.fit(module, self)
                else:
                    x, y = self.train_set()
                    p = self.preset
                    train.fit(module, x, y, self.names, batch_size=p.train_batch, epochs=p.epochs)
                save_atomic(path, lambda t: torch.save(module.state_dict(), t))
                self.log(f"trained in {time.perf_counter() - t0:.0f}s")
            self._baseline = module.eval()
        return self._baseline

    def reference(self) -> Path:
        """Held-out eval inputs, labels and the fp32 baseline's scores, AUC and logloss."""
        path = self.dir / "eval.npz"
        if not path.exists() and self.family.reference:
            arrays = self.family.reference(self)
            save_atomic(path, lambda t: np.savez(t.open("wb"), **arrays))
        elif not path.exists():
            x, y = self.data.labelled(self.preset.eval_samples, EVAL_SEED)
            scores = train.predict(self.baseline(), x, self.names).astype(np.float64)
            save_atomic(path, lambda t: np.savez(t.open("wb"), labels=y, scores=scores, auc=auc(y, scores),
                                                 logloss=logloss(y, scores), **{f"x_{k}": v for k, v in x.items()}))
        return path

    def bench_inputs(self, batch_size: int, pool: int) -> list[dict[str, np.ndarray]]:
        """`pool` distinct batches drawn from the data distribution (not the eval set)."""
        return [self.data.features(batch_size, BENCH_SEED + 1000 * i) for i in range(pool)]

    def calibration_inputs(self, n: int) -> dict[str, np.ndarray]:
        return self.calibration if self.calibration is not None else self.data.features(n, CALIBRATION_SEED)

    def variant_dir(self, variant: str) -> Path:
        d = self.dir / "variants" / variant
        d.mkdir(parents=True, exist_ok=True)
        return d

    def prepare(self, variant, formats: set[str]) -> Prepared:
        """Build (or reuse) the variant's artifacts in the requested formats."""
        own = variant.calibrated and self.calibration is not None  # artifacts of the user's calibration data
        vdir = self.variant_dir(variant.name + (f"@calibration-{self.calibration_tag}" if own else ""))
        meta_path = vdir / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        files = meta.get("files", {})
        missing = [f for f in sorted(formats) if f not in files or not Path(files[f]).exists()]
        if missing or "params" not in meta or "gather_bytes_per_sample" not in meta.get("notes", {}):
            module = variant.module(self)
            meta.setdefault("params", count_params(module))
            example = self.data.features(4, BENCH_SEED)
            meta.setdefault("flops_per_sample", flops_per_sample(self.baseline(), example, self.names))
            for fmt in missing:
                self.log(f"building {variant.name} [{fmt}]")
                files[fmt] = str(variant.write(self, module, fmt, vdir))
            meta.update(files=files, notes={**variant.notes(self, module),
                                            "gather_bytes_per_sample": gather_bytes_per_sample(module, example,
                                                                                               self.names)})
            save_atomic(meta_path, lambda t: t.write_text(json.dumps(meta, indent=1)))
        return Prepared(self.family.name, self.preset_name, variant.name, {f: files[f] for f in formats},
                        meta["params"], meta["flops_per_sample"], str(self.reference()), meta.get("notes", {}))


def prepared_from_dict(d: dict) -> Prepared:
    return Prepared(**d)


def prepared_to_dict(p: Prepared) -> dict:
    return asdict(p)
