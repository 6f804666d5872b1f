"""prune-struct: whole hidden neurons removed by weight norm, so the dense layers really shrink."""

from __future__ import annotations

import torch
from torch import nn

from models.compress.base import Technique, copy_linear, finetune

KEEP = 0.5


def shrink_mlp(seq: nn.Sequential, keep: float) -> None:
    """Keep the strongest `keep` share of each hidden layer's neurons (in and out weights); the output size stays."""
    idx = [i for i, m in enumerate(seq) if isinstance(m, nn.Linear)]
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        first, second = seq[a], seq[b]
        score = first.weight.detach().norm(dim=1) * second.weight.detach().norm(dim=0)
        rows = torch.sort(score.topk(max(1, int(keep * first.out_features))).indices).values
        seq[a], seq[b] = copy_linear(first, rows=rows), copy_linear(second, cols=rows)


class StructuredPrune(Technique):
    name = "prune-struct"
    summary = f"structured: {int((1 - KEEP) * 100)}% of hidden neurons removed (layers shrink), briefly fine-tuned"
    stage = "module"

    def transform(self, ws, module):
        for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
            if sum(isinstance(m, nn.Linear) for m in seq) > 1:
                shrink_mlp(seq, KEEP)
        return finetune(ws, module)

    def notes(self, ws, module):
        return {"hidden_kept": KEEP}
