"""HSTU generative recommender (Zhai et al., ICML 2024; MLPerf Inference DLRMv3): pointwise-attention layers over a
user's history, each candidate item scored against it. Candidates attend to the history and to themselves, never to
each other, so one history encoding serves every candidate of a request (M-FALCON); the naive path re-encodes the
history with each candidate and gives the same scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from models.data_ranking import HistoryClickSynth
from models.data_sequence import PAD
from models.dlrm import mlp
from models.family import CLICK_QUALITY, ModelFamily, Preset
from models.ranking import click_reference


@dataclass(frozen=True)
class HSTUConfig:
    num_items: int
    history: int  # items of history per user (left-padded with 0)
    embedding_dim: int
    layers: int
    heads: int
    candidates: int  # items scored per request (one user)
    top_mlp: tuple[int, ...]  # the ranking head's hidden sizes; a final 1-unit layer is appended
    shared_history: bool = True  # M-FALCON: one history encoding for all candidates (False: re-encoded per candidate)


class HSTULayer(nn.Module):
    """U, V, Q, K = Split(SiLU(f1(Norm(X)))); A = SiLU(QKᵀ + rab(i - j)) / n over the allowed keys (pointwise: no
    softmax, n = history + 1, the longest context); Y = X + f2(Norm(A V) ⊙ U)."""

    def __init__(self, dim: int, heads: int, context: int):
        super().__init__()
        self.heads, self.scale = heads, 1.0 / context
        self.norm_in, self.norm_av = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.f1, self.f2 = nn.Linear(dim, 4 * dim), nn.Linear(dim, dim)
        self.rab = nn.Parameter(torch.zeros(heads, context))  # relative attention bias by distance i - j >= 0

    def split(self, t: torch.Tensor) -> torch.Tensor:
        """(batch, n, dim) -> (batch, heads, n, head_dim)."""
        return t.reshape(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        u, v, q, k = F.silu(self.f1(self.norm_in(x))).chunk(4, dim=-1)
        return u, self.split(v), self.split(q), self.split(k)

    def finish(self, x: torch.Tensor, av: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return x + self.f2(self.norm_av(av.transpose(1, 2).flatten(2)) * u)

    def forward(self, x: torch.Tensor, keep: torch.Tensor, distance: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Self-attention over x (batch, n, dim); keep (batch, 1, n, n) is 1 where a query may see a key (itself and
        earlier real items), distance (n, n) the relative positions. Returns the output and this layer's K, V."""
        u, v, q, k = self.project(x)
        att = F.silu(q @ k.transpose(-1, -2) + self.rab[:, distance]) * keep * self.scale
        return self.finish(x, att @ v, u), k, v

    def candidates(self, y: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor,
                   distance: torch.Tensor) -> torch.Tensor:
        """Candidates y (batch, c, dim) at the position after the history: each attends to the history's keys k /
        values v (keep: (batch, 1, 1, history), 1 for real items; distance: (history,) to each) and to itself,
        not to the other candidates."""
        u, cv, cq, ck = self.project(y)
        cross = F.silu(cq @ k.transpose(-1, -2) + self.rab[:, None, distance]) * keep
        own = F.silu((cq * ck).sum(-1, keepdim=True) + self.rab[:, :1, None])
        return self.finish(y, (cross @ v + own * cv) * self.scale, u)


class HSTU(nn.Module):
    """history (batch, L) + candidates (batch, c) item IDs -> click probability per candidate (batch, c)."""

    def __init__(self, cfg: HSTUConfig):
        super().__init__()
        d, n = cfg.embedding_dim, cfg.history + 1
        self.items = nn.Embedding(cfg.num_items + 1, d, padding_idx=PAD)
        nn.init.normal_(self.items.weight, std=0.1)
        self.candidate_tag = nn.Parameter(torch.zeros(d))  # marks the item being scored
        self.layers = nn.ModuleList(HSTULayer(d, cfg.heads, n) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(d)
        self.head = mlp([2 * d, *cfg.top_mlp, 1], last_activation=False)
        self.shared = cfg.shared_history
        pos = torch.arange(n)
        self.register_buffer("distance", (pos[:, None] - pos[None, :]).clamp(min=0), persistent=False)
        self.register_buffer("causal", (pos[:, None] >= pos[None, :]).float(), persistent=False)

    def encode(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(batch, n) items -> the first layer's input, who may attend to whom, and their distances."""
        n, x = seq.shape[1], self.items(seq)
        keep = self.causal[:n, :n] * (seq != PAD)[:, None, None, :].to(x.dtype)
        return x, keep, self.distance[:n, :n]

    def score(self, y: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        z = self.norm(y)
        return torch.sigmoid(self.head(torch.cat([z, z * self.items(candidates)], dim=-1))).squeeze(-1)

    def forward(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return (self.forward_shared if self.shared else self.forward_naive)(history, candidates)

    def forward_shared(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """M-FALCON: the history encoded once per layer; every candidate reads its keys and values."""
        x, keep, distance = self.encode(history)
        real = keep[:, :, -1:, :]  # the last query row sees every real item
        y = self.items(candidates) + self.candidate_tag
        for layer in self.layers:
            x_next, k, v = layer(x, keep, distance)
            y = layer.candidates(y, k, v, real, self.distance[-1, :-1])
            x = x_next
        return self.score(y, candidates)

    def forward_naive(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Each candidate appended to its own copy of the history, the whole sequence encoded causally."""
        b, c = candidates.shape
        seq = torch.cat([history.repeat_interleave(c, dim=0), candidates.reshape(-1, 1)], dim=1)
        x, keep, distance = self.encode(seq)
        x = torch.cat([x[:, :-1], x[:, -1:] + self.candidate_tag], dim=1)
        for layer in self.layers:
            x, _, _ = layer(x, keep, distance)
        return self.score(x[:, -1].reshape(b, c, -1), candidates)


# Requests (history length, candidates per user) shared with din; edge scores 256 candidates as the target.
HISTORY_PRESETS = {
    "tiny": {"num_items": 2_000, "history": 20, "candidates": 16},
    "edge": {"num_items": 20_000, "history": 128, "candidates": 256},
    "datacenter": {"num_items": 200_000, "history": 512, "candidates": 1024},
}
HISTORY_TRAINING = {
    "tiny": {"train_samples": 12_000, "train_batch": 128, "epochs": 2, "eval_samples": 512},
    "edge": {"train_samples": 6_000, "train_batch": 64, "eval_samples": 1_024},
    "datacenter": {"train_samples": 200_000, "train_batch": 256, "eval_samples": 2_048},
}
HSTU_SHAPES = {"tiny": (32, 2, 2, (32,)), "edge": (64, 2, 2, (64,)), "datacenter": (256, 4, 4, (256, 128))}


def history_data(cfg) -> HistoryClickSynth:
    return HistoryClickSynth(cfg.num_items, cfg.history, cfg.candidates)


def history_family(name: str, summary: str, config: type, fields: tuple[str, ...], shapes: dict,
                   build: Callable[[Any], nn.Module]) -> ModelFamily:
    """A family whose request is one user's history + candidates (hstu, din): the shared presets, data and quality;
    `shapes[preset]` fills the config's `fields`."""
    return ModelFamily(
        name=name,
        summary=summary,
        presets={p: Preset(config(**HISTORY_PRESETS[p], **dict(zip(fields, shapes[p], strict=True))),
                           **HISTORY_TRAINING[p]) for p in HISTORY_PRESETS},
        build=build,
        dataset=history_data,
        input_names=("history", "candidates"),
        item_input="candidates",
        quality_entry=CLICK_QUALITY,
        reference=click_reference,
    )


HSTU_FAMILY = history_family(
    "hstu", "HSTU generative recommender (MLPerf DLRMv3): pointwise-attention layers over the user's history, "
    "candidates scored with one shared history encoding (M-FALCON); quality = NE, accuracy, AUC vs fp32",
    HSTUConfig, ("embedding_dim", "layers", "heads", "top_mlp"), HSTU_SHAPES, HSTU)
