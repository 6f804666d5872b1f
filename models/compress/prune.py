"""prune-50 / prune-90: unstructured magnitude pruning of the MLP weights (torch: then a brief fine-tune)."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from models.compress.base import Technique, finetune, linear_layers, sparsity


def magnitude_masks(module: nn.Module, fraction: float) -> dict[str, torch.Tensor]:
    """Per layer, keep the weights whose magnitude is above that layer's `fraction` quantile."""
    masks = {}
    for name, layer in linear_layers(module):
        w = layer.weight.detach().abs().flatten()
        k = int(fraction * w.numel())
        threshold = w.kthvalue(k).values if k > 0 else w.new_tensor(-1.0)
        masks[name] = layer.weight.detach().abs() > threshold
    return masks


def prune_array(w: np.ndarray, fraction: float) -> np.ndarray:
    """`w` with its smallest-magnitude `fraction` of entries set to zero."""
    k = int(fraction * w.size)
    if k == 0:
        return w
    threshold = np.partition(np.abs(w).ravel(), k - 1)[k - 1]
    return np.where(np.abs(w) > threshold, w, 0).astype(w.dtype)


def weight_initializers(model: onnx.ModelProto) -> set[str]:
    """2-D float initializers that MatMul / Gemm nodes multiply by (the dense layers' weights)."""
    inits = {i.name: i for i in model.graph.initializer}
    return {n.input[1] for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in inits
            and len(inits[n.input[1]].dims) == 2 and inits[n.input[1]].data_type == onnx.TensorProto.FLOAT}


class MagnitudePrune(Technique):
    stage = "module"

    def __init__(self, percent: int):
        self.fraction = percent / 100
        self.name = f"prune-{percent}"
        self.summary = (f"{percent}% of MLP weights zeroed by magnitude (per layer; torch: briefly fine-tuned where "
                        f"labelled data exists; ONNX: MatMul/Gemm initializers)")

    def applies(self, ws, fmt):
        module = ws.skeleton()
        found = linear_layers(module) if module is not None else weight_initializers(onnx.load(str(ws.base_onnx())))
        return None if found else f"{self.name}: no nn.Linear layer / MatMul-Gemm weight initializer to prune"

    def transform(self, ws, module):
        masks = magnitude_masks(module, self.fraction)
        layers = dict(linear_layers(module))

        @torch.no_grad()
        def apply(_=None):
            for name, mask in masks.items():
                layers[name].weight.mul_(mask)

        apply()
        return finetune(ws, module, after_step=apply)

    def rewrite(self, ws, src, dst):
        model = onnx.load(str(src))
        names = weight_initializers(model)
        for i, init in enumerate(model.graph.initializer):
            if init.name in names:
                pruned = prune_array(numpy_helper.to_array(init), self.fraction)
                model.graph.initializer[i].CopyFrom(numpy_helper.from_array(pruned, init.name))
        onnx.save(model, str(dst))
        return dst

    def notes(self, ws, module):
        return {"sparsity": sparsity(module)} if module is not None else {"pruned_share": self.fraction}
