"""DLRM-style CTR ranker: embeddings + bottom MLP, pairwise dot interaction, top MLP, sigmoid."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.data import NUM_DENSE, CriteoSynth, criteo_cardinalities
from models.family import ModelFamily, Preset


@dataclass(frozen=True)
class DLRMConfig:
    cardinalities: tuple[int, ...]
    embedding_dim: int
    bottom_mlp: tuple[int, ...]  # hidden sizes; the last one is appended as embedding_dim
    top_mlp: tuple[int, ...]  # hidden sizes; a final 1-unit layer is appended
    num_dense: int = NUM_DENSE


def mlp(sizes: list[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if last_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


EMBEDDING_INIT = 0.05


class DLRM(nn.Module):
    def __init__(self, cfg: DLRMConfig):
        super().__init__()
        d = cfg.embedding_dim
        # nn.Embedding, not EmbeddingBag: exports to one ONNX Gather per table (see DESIGN.md).
        self.embeddings = nn.ModuleList(nn.Embedding(c, d, sparse=True) for c in cfg.cardinalities)
        for emb in self.embeddings:  # small init: N(0, 1) rows make the initial dot interactions explode
            nn.init.uniform_(emb.weight, -EMBEDDING_INIT, EMBEDDING_INIT)
        self.bottom = mlp([cfg.num_dense, *cfg.bottom_mlp, d], last_activation=True)
        n = len(cfg.cardinalities) + 1
        rows, cols = torch.tril_indices(n, n, offset=-1)
        self.register_buffer("pair_index", rows * n + cols, persistent=False)
        self.top = mlp([d + len(rows), *cfg.top_mlp, 1], last_activation=False)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        x = self.bottom(dense)
        vectors = torch.stack([x] + [emb(sparse[:, i]) for i, emb in enumerate(self.embeddings)], dim=1)
        pairs = torch.bmm(vectors, vectors.transpose(1, 2)).flatten(1)[:, self.pair_index]
        return torch.sigmoid(self.top(torch.cat([x, pairs], dim=1)))


def _preset(cap: int, dim: int, bottom: tuple[int, ...], top: tuple[int, ...], **train) -> Preset:
    return Preset(config=DLRMConfig(criteo_cardinalities(cap), dim, bottom, top), **train)


DLRM_FAMILY = ModelFamily(
    name="dlrm",
    summary="DLRM CTR ranker: 13 dense + 26 categorical features, dot interaction, Criteo-skewed tables",
    presets={
        "tiny": _preset(2_000, 8, (32,), (32, 16), train_samples=60_000, train_batch=512, eval_samples=16_384),
        "edge": _preset(40_000, 32, (512, 256), (512, 256), train_samples=400_000),
        "datacenter": _preset(1_000_000, 64, (512, 256), (1024, 1024, 512, 256), train_samples=1_000_000),
    },
    build=lambda cfg: DLRM(cfg),
    dataset=lambda cfg: CriteoSynth(cfg.cardinalities),
    input_names=("dense", "sparse"),
)
