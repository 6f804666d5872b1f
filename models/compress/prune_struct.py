"""prune-struct: whole hidden neurons removed by weight norm, so the dense layers really shrink."""

from __future__ import annotations

import copy

import torch
from torch import nn

from models.compress.base import Technique, copy_linear, finetune

KEEP = 0.5
# per-channel layers that may sit between two Linears (BatchNorm / LayerNorm / RMSNorm): they lose the same channels
NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.RMSNorm)


def hidden_layers(seq: nn.Sequential) -> list[tuple[int, int]]:
    """Index pairs of consecutive Linears in `seq`: the neurons between each pair are what is pruned."""
    idx = [i for i, m in enumerate(seq) if isinstance(m, nn.Linear)]
    return list(zip(idx[:-1], idx[1:], strict=True))


def blocker(seq: nn.Sequential) -> nn.Module | None:
    """A layer with weights between two Linears that is not a per-channel norm: pruning would break its width."""
    return next((m for a, b in hidden_layers(seq) for m in list(seq)[a + 1:b]
                 if not isinstance(m, NORMS) and any(p.numel() > 1 for p in m.parameters())), None)


@torch.no_grad()
def copy_norm(norm: nn.Module, rows: torch.Tensor) -> nn.Module:
    """The norm layer for the kept channels only (its weights, running statistics and declared width)."""
    out = copy.deepcopy(norm)
    for name, p in norm.named_parameters(recurse=False):
        setattr(out, name, nn.Parameter(p[rows].clone()))
    for name, b in norm.named_buffers(recurse=False):
        if b is not None and b.dim() == 1:
            setattr(out, name, b[rows].clone())
    if isinstance(norm, nn.modules.batchnorm._BatchNorm):
        out.num_features = len(rows)
    else:
        out.normalized_shape = (len(rows),)
    return out


def shrink_mlp(seq: nn.Sequential, keep: float) -> None:
    """Keep the strongest `keep` share of each hidden layer's neurons (in and out weights, and the norms between);
    the output size stays."""
    for a, b in hidden_layers(seq):
        first, second = seq[a], seq[b]
        score = first.weight.detach().norm(dim=1) * second.weight.detach().norm(dim=0)
        rows = torch.sort(score.topk(max(1, int(keep * first.out_features))).indices).values
        seq[a], seq[b] = copy_linear(first, rows=rows), copy_linear(second, cols=rows)
        for i in range(a + 1, b):
            if isinstance(seq[i], NORMS):
                seq[i] = copy_norm(seq[i], rows)


def mlps(module: nn.Module) -> list[nn.Sequential]:
    return [m for m in module.modules() if isinstance(m, nn.Sequential) and len(hidden_layers(m)) > 0]


class StructuredPrune(Technique):
    name = "prune-struct"
    summary = f"structured: {int((1 - KEEP) * 100)}% of hidden neurons removed (layers shrink), briefly fine-tuned"
    stage = "module"

    def applies(self, ws, fmt):
        module = ws.skeleton()
        if module is None:
            return None  # a model without a module: the variant says why (its step changes torch modules)
        if not mlps(module):
            return f"{self.name}: no MLP to prune (an nn.Sequential holding two or more Linear layers)"
        layer = next((m for m in map(blocker, mlps(module)) if m is not None), None)
        if layer is not None:
            return (f"{self.name}: a {type(layer).__name__} with weights sits between two Linear layers of an MLP; "
                    f"only BatchNorm / LayerNorm / RMSNorm are pruned with the neurons before them")
        return None

    def transform(self, ws, module):
        for seq in mlps(module):
            shrink_mlp(seq, KEEP)
        return finetune(ws, module)

    def notes(self, ws, module):
        return {"hidden_kept": KEEP}
