"""SASRec-style sequential recommender: item + position embeddings, causal self-attention, next-item scores."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.artifacts import EVAL_SEED, TRAIN_SEED, Workspace
from models.data_sequence import PAD, SequenceSynth
from models.family import ModelFamily, Preset
from models.fitting import one_thread
from models.quality import next_item_ranks
from models.train import predict


@dataclass(frozen=True)
class SASRecConfig:
    num_items: int
    history: int
    dim: int
    blocks: int
    heads: int
    negatives: int = 256  # shared sampled negatives per training batch


class CausalBlock(nn.Module):
    """Pre-norm transformer block: masked multi-head self-attention, then a position-wise feed-forward."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        length, dim = x.shape[1], x.shape[2]
        q, k, v = self.qkv(self.norm1(x)).reshape(-1, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        att = torch.softmax(att.masked_fill(blocked, -1e9), dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(-1, length, dim))
        return x + self.ffn(self.norm2(x))


class SASRec(nn.Module):
    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.items = nn.Embedding(cfg.num_items + 1, cfg.dim, padding_idx=PAD)
        self.positions = nn.Parameter(torch.randn(cfg.history, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList(CausalBlock(cfg.dim, cfg.heads) for _ in range(cfg.blocks))
        self.norm = nn.LayerNorm(cfg.dim)
        future = torch.triu(torch.ones(cfg.history, cfg.history, dtype=torch.bool), diagonal=1)
        self.register_buffer("future", future, persistent=False)
        self.scale = math.sqrt(cfg.dim)

    def encode(self, history: torch.Tensor) -> torch.Tensor:
        """A vector per position, each seeing only itself and earlier, non-padding items."""
        real = (history != PAD).unsqueeze(-1)
        x = (self.items(history) * self.scale + self.positions) * real
        blocked = (self.future | (history == PAD).unsqueeze(1)).unsqueeze(1)  # (batch, 1, query, key)
        for block in self.blocks:
            x = block(x, blocked)
        return self.norm(x)

    def logits(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scaled dot products of position vectors (..., dim) with item vectors (n, dim): (..., n)."""
        return (h @ items.T) / self.scale

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """Scores of every catalog item (column 0 is padding) as the next item after the history."""
        return self.logits(self.encode(history)[:, -1], self.items.weight)


def fit_sasrec(module: SASRec, ws: Workspace) -> None:
    """Next-item cross-entropy at every position, against the target and shared uniformly sampled negatives."""
    cfg, preset = ws.preset.config, ws.preset
    seq = torch.from_numpy(ws.data.sequences(preset.train_samples, TRAIN_SEED))
    torch.manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=2e-3)
    module.train()
    with one_thread():
        for _ in range(preset.epochs):
            for batch in seq[torch.randperm(len(seq))].split(preset.train_batch):
                opt.zero_grad(set_to_none=True)
                next_item_loss(module, batch, cfg.negatives).backward()
                opt.step()
    module.eval()


def next_item_loss(module: SASRec, batch: torch.Tensor, negatives: int) -> torch.Tensor:
    """Cross-entropy of each position's next item against `negatives` uniformly sampled items (shared)."""
    history, targets = batch[:, :-1], batch[:, 1:]
    real = targets != PAD
    h = module.encode(history)[real]
    sampled = torch.randint(1, module.items.num_embeddings, (negatives,))
    pos = (h * module.items(targets[real])).sum(-1, keepdim=True) / module.scale
    logits = torch.cat([pos, module.logits(h, module.items(sampled))], dim=-1)
    return nn.functional.cross_entropy(logits, torch.zeros(len(h), dtype=torch.long))


def sasrec_reference(ws: Workspace) -> dict:
    """Held-out histories, their next items, and the fp32 model's target ranks and top-10 lists."""
    x, targets = ws.data.labelled(ws.preset.eval_samples, EVAL_SEED)
    ranks, top10 = [], []
    for s in range(0, len(targets), 512):
        scores = predict(ws.baseline(), {"history": x["history"][s : s + 512]}, ("history",)).reshape(
            -1, ws.preset.config.num_items + 1)
        ranks.append(next_item_ranks(scores, targets[s : s + 512]))
        top10.append(np.argpartition(-scores[:, 1:], 9, axis=1)[:, :10] + 1)
    return {"x_history": x["history"], "targets": targets, "ranks": np.concatenate(ranks),
            "top10": np.concatenate(top10)}


SASREC_FAMILY = ModelFamily(
    name="sasrec",
    summary="SASRec sequential recommender: causal self-attention over the last items, scores for the whole "
            "catalog; quality = hit rate / NDCG@10 of held-out next items",
    presets={
        "tiny": Preset(SASRecConfig(2_000, 20, 32, 2, 2), train_samples=6_000, train_batch=128, epochs=2,
                       eval_samples=1_024),
        "edge": Preset(SASRecConfig(20_000, 50, 64, 2, 2), train_samples=16_000, train_batch=256,
                       eval_samples=4_096),
        "datacenter": Preset(SASRecConfig(200_000, 200, 128, 4, 4), train_samples=300_000, train_batch=256,
                             eval_samples=8_192),
    },
    build=lambda cfg: SASRec(cfg),
    dataset=lambda cfg: SequenceSynth(cfg.num_items, cfg.history),
    input_names=("history",),
    quality_entry="models.quality:evaluate_next_item",
    fit=fit_sasrec,
    reference=sasrec_reference,
)
