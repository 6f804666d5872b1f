"""lowrank: the large MLP layers replaced by two thin ones from a truncated SVD, briefly fine-tuned."""

from __future__ import annotations

import torch
from torch import nn

from models.compress.base import Technique, finetune, linear_layers

MIN_DIM = 16  # layers whose smaller side is at least this are factorised
RANK_SHARE = 0.25  # rank kept, as a share of the smaller side


@torch.no_grad()
def factorise(layer: nn.Linear, rank: int) -> nn.Sequential:
    u, s, vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    root = s[:rank].sqrt()
    down = nn.Linear(layer.in_features, rank, bias=False)
    up = nn.Linear(rank, layer.out_features, bias=layer.bias is not None)
    down.weight.copy_(root[:, None] * vh[:rank])
    up.weight.copy_(u[:, :rank] * root)
    if layer.bias is not None:
        up.bias.copy_(layer.bias)
    return nn.Sequential(down, up)


class LowRank(Technique):
    name = "lowrank"
    summary = f"SVD factorisation of MLP layers >= {MIN_DIM} wide at rank {RANK_SHARE:.0%}, briefly fine-tuned"
    stage = "module"

    def transform(self, ws, module):
        for name, layer in linear_layers(module):
            small = min(layer.in_features, layer.out_features)
            if small >= MIN_DIM:
                parent_name, _, child = name.rpartition(".")
                setattr(module.get_submodule(parent_name), child, factorise(layer, int(small * RANK_SHARE)))
        return finetune(ws, module)

    def notes(self, ws, module):
        pairs = [m for m in module.modules() if isinstance(m, nn.Sequential) and len(m) == 2
                 and all(isinstance(c, nn.Linear) for c in m)]
        return {"factorised_layers": len(pairs), "ranks": [m[0].out_features for m in pairs]}
