"""DIN (Zhou et al., KDD 2018): target attention. A local activation unit weights each item of the user's history
by its relevance to the candidate; the weighted sum (no softmax: the weights keep the intensity of interest) and the
candidate feed an MLP. Same requests as hstu: one history, several candidates, one click probability each."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.data_sequence import PAD
from models.dlrm import mlp
from models.hstu import history_family


@dataclass(frozen=True)
class DINConfig:
    num_items: int
    history: int
    candidates: int
    embedding_dim: int
    attention_mlp: tuple[int, ...]  # the activation unit's hidden sizes; a final 1-unit layer is appended
    deep_mlp: tuple[int, ...]  # hidden sizes; a final 1-unit layer is appended


class DIN(nn.Module):
    """history (batch, L) + candidates (batch, c) item IDs -> click probability per candidate (batch, c)."""

    def __init__(self, cfg: DINConfig):
        super().__init__()
        d = cfg.embedding_dim
        self.items = nn.Embedding(cfg.num_items + 1, d, padding_idx=PAD)
        nn.init.normal_(self.items.weight, std=0.1)
        self.activation = mlp([4 * d, *cfg.attention_mlp, 1], last_activation=False)
        self.deep = mlp([3 * d, *cfg.deep_mlp, 1], last_activation=False)

    def forward(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        e = self.items(candidates)  # (b, c, d)
        h = self.items(history)[:, None].expand(-1, e.shape[1], -1, -1)  # (b, c, L, d)
        t = e[:, :, None].expand_as(h)
        weight = self.activation(torch.cat([h, t, h - t, h * t], dim=-1)).squeeze(-1)  # (b, c, L)
        weight = weight * (history != PAD)[:, None, :].to(weight.dtype)
        interest = (weight.unsqueeze(-1) * h).sum(dim=2)  # (b, c, d)
        return torch.sigmoid(self.deep(torch.cat([interest, e, interest * e], dim=-1))).squeeze(-1)


DIN_SHAPES = {"tiny": (16, (32,), (64, 32)), "edge": (32, (64,), (128, 64)), "datacenter": (64, (128,), (512, 256))}

DIN_FAMILY = history_family(
    "din", "DIN target attention: a local activation unit weights each history item by its relevance to the "
    "candidate, then an MLP; hstu's requests (history + candidates); quality = NE, accuracy, AUC vs fp32",
    DINConfig, ("embedding_dim", "attention_mlp", "deep_mlp"), DIN_SHAPES, DIN)
