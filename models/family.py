"""What every built-in model family provides: presets, a module builder and a labelled data source."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from torch import nn

from models.errors import ModelError


class LabelledData(Protocol):
    def features(self, n: int, seed: int) -> dict[str, np.ndarray]: ...

    def labelled(self, n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]: ...


@dataclass(frozen=True)
class Preset:
    config: Any  # a frozen dataclass the family's build() understands
    train_samples: int
    train_batch: int = 2048
    epochs: int = 1
    eval_samples: int = 65_536


DEFAULT_QUALITY = "models.quality:evaluate_ranking"  # CTR quality: AUC / logloss on labelled data
CLICK_QUALITY = "models.quality:evaluate_clicks"  # clicks on a user's candidates: NE / accuracy / AUC
TASKS_QUALITY = "models.quality:evaluate_tasks"  # one click-like label per task, quality per task
CLICK_LABELS = (DEFAULT_QUALITY, CLICK_QUALITY, TASKS_QUALITY)  # labels are clicks: BCE fine-tuning applies


@dataclass(frozen=True)
class ModelFamily:
    name: str
    summary: str
    presets: dict[str, Preset]
    build: Callable[[Any], nn.Module]
    dataset: Callable[[Any], LabelledData]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...] = ("score",)
    default_preset: str = "edge"
    quality_entry: str = DEFAULT_QUALITY  # evaluator run by the worker on the backend
    extra: dict[str, Any] = field(default_factory=dict)
    # The input whose axis 1 lists a request's items (hstu, din: "candidates"): exported with a dynamic item axis
    # (so is the output's axis 1), and a serving request of N rows is one user with N of them.
    item_input: str | None = None
    # Optional hooks for families that are not trained / scored like a CTR ranker (None: the CTR defaults).
    fit: Callable[[nn.Module, Any], None] | None = None  # (module, workspace): train the module in place
    reference: Callable[[Any], dict[str, Any]] | None = None  # workspace -> eval.npz arrays for quality_entry
    parity: Callable[[nn.Module, Any, dict[str, np.ndarray]], float] | None = None  # (module, onnx path, inputs)

    def preset(self, name: str) -> Preset:
        if name not in self.presets:
            raise ModelError(f"unknown preset '{name}' for model {self.name}; valid: {', '.join(self.presets)}")
        return self.presets[name]


def config_hash(*parts: Any) -> str:
    """A short stable hash of dataclasses / plain values, used as a cache key."""

    def plain(x: Any) -> Any:
        return dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x

    blob = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
