"""Pre-flight of a PyTorch factory's model: bind the spec's inputs to `forward`, run one batch, explain failures."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from models.byo_spec import ModelInput
from models.errors import ModelError

PREFLIGHT_BATCH = 3


class Bound(nn.Module):
    """The user's module called with the spec's inputs by name, or as one mapping: what recbench saves and exports."""

    def __init__(self, module: nn.Module, names: tuple[str, ...], as_dict: bool):
        super().__init__()
        self.module, self.names, self.as_dict = module, names, as_dict

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.names, inputs, strict=True))
        return self.module(named) if self.as_dict else self.module(**named)


def takes_mapping(params: list[inspect.Parameter]) -> bool:
    """forward(self, features: dict[...] / Mapping[...]): one parameter annotated as a mapping."""
    if len(params) != 1 or params[0].annotation is inspect.Parameter.empty:
        return False
    hint = params[0].annotation
    if isinstance(hint, str):
        return hint.split("[")[0].split(".")[-1] in ("dict", "Dict", "Mapping")
    origin = typing.get_origin(hint) or hint
    return isinstance(origin, type) and issubclass(origin, Mapping)


def bind(module: nn.Module, names: tuple[str, ...], as_dict: bool, what: str) -> tuple[nn.Module, str]:
    """The module to call with the inputs in spec order, and how they are bound (positional, by name or mapping)."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return module, "positional"
    if as_dict or takes_mapping(params):
        return Bound(module, names, True), "mapping"
    kinds = inspect.Parameter
    named = [p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)]
    if not named and any(p.kind == kinds.VAR_POSITIONAL for p in params):
        return module, "positional"
    unknown = [n for n in names if n not in named]
    if unknown and not any(p.kind == kinds.VAR_KEYWORD for p in params):
        raise ModelError(f"{what}: the input spec names {', '.join(unknown)}, which forward({', '.join(named)}) "
                              f"does not take; name the spec's inputs after forward's parameters")
    missing = [p.name for p in params if p.name in named and p.default is kinds.empty and p.name not in names]
    if missing:
        raise ModelError(f"{what}: forward({', '.join(named)}) needs {', '.join(missing)}, which the input spec "
                              f"does not give; add {'it' if len(missing) == 1 else 'them'} to the spec")
    if list(names) == named[:len(names)]:
        return module, "positional"
    return Bound(module, names, False), "by name"


def table_sizes(module: nn.Module) -> list[int]:
    return [m.num_embeddings for m in module.modules() if isinstance(m, nn.Embedding | nn.EmbeddingBag)]


def forward(module: nn.Module, batch: dict[str, np.ndarray]) -> object:
    with torch.inference_mode():
        return module(*(torch.from_numpy(v) for v in batch.values()))


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def overflowing(module: nn.Module, inputs: list[ModelInput], low: dict[str, np.ndarray]) -> str:
    """Which ID input (or matrix column) breaks the model at its highest ID, with the model's table sizes."""
    sizes = table_sizes(module)
    tables = f" (the model's embedding tables have {', '.join(map(str, sizes))} rows)" if sizes else ""
    for i in inputs:
        for slot, draw in i.id_slots():
            try:
                forward(module, {**low, i.name: i.pinned(low[i.name], True, slot)})
            except Exception as e:  # noqa: BLE001 - the user's forward may raise anything
                return (f"input {slot}: {draw.describe()} fail ({first_line(e)}): its cardinality is probably "
                        f"larger than the table it indexes{tables}")
    return f"IDs drawn from the spec fail: check each cardinality against the model{tables}"


def preflight(module: nn.Module, inputs: list[ModelInput], binding: str, what: str) -> None:
    """Run a batch at the lowest IDs, then a drawn one and one at every highest ID; a failure is bad input + hint."""
    rng = np.random.default_rng(0)
    drawn = {i.name: i.sample(rng, PREFLIGHT_BATCH) for i in inputs}
    low = {i.name: i.pinned(v, False) for i, v in zip(inputs, drawn.values(), strict=True)}
    top = {i.name: i.pinned(v, True) for i, v in zip(inputs, drawn.values(), strict=True)}
    try:
        out = forward(module, low)
    except Exception as e:  # noqa: BLE001 - the user's forward may raise anything
        hint = ("forward takes its inputs by position: are they listed in the spec in forward's order?"
                if binding == "positional" else "check each input's dtype and shape in the spec")
        raise ModelError(f"{what}: forward failed on a batch drawn from the input spec: {first_line(e)}; "
                              f"hint: {hint}") from None
    try:
        forward(module, drawn)
        forward(module, top)
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"{what}: forward failed on IDs drawn from the input spec: {first_line(e)}; "
                              f"hint: {overflowing(module, inputs, low)}") from None
    if not isinstance(out, torch.Tensor) or out.dim() == 0 or out.shape[0] != PREFLIGHT_BATCH:
        got = f"shape {list(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"{what}: forward returned {got} for a batch of {PREFLIGHT_BATCH}; recbench needs one "
                              f"tensor of scores with the batch on axis 0")
