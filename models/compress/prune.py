"""prune-50 / prune-90: unstructured magnitude pruning of the MLP weights, then a brief fine-tune."""

from __future__ import annotations

import torch
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


class MagnitudePrune(Technique):
    stage = "module"

    def __init__(self, percent: int):
        self.fraction = percent / 100
        self.name = f"prune-{percent}"
        self.summary = f"{percent}% of MLP weights zeroed by magnitude (per layer), briefly fine-tuned"

    def transform(self, ws, module):
        masks = magnitude_masks(module, self.fraction)
        layers = dict(linear_layers(module))

        @torch.no_grad()
        def apply(_=None):
            for name, mask in masks.items():
                layers[name].weight.mul_(mask)

        apply()
        return finetune(ws, module, after_step=apply)

    def notes(self, ws, module):
        return {"sparsity": sparsity(module)}
