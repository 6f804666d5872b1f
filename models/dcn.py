"""DCN-v2 CTR ranker (MLPerf's DLRM-DCNv2): pooled multi-hot embeddings, low-rank cross layers, deep MLP."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.data import NUM_DENSE, criteo_cardinalities
from models.data_multihot import MultiHotCriteoSynth, capped_hotness
from models.dlrm import mlp
from models.family import ModelFamily, Preset
from models.fitting import fit_ctr


@dataclass(frozen=True)
class DCNConfig:
    cardinalities: tuple[int, ...]
    hotness: tuple[int, ...]  # IDs per sample of each categorical feature
    embedding_dim: int
    bottom_mlp: tuple[int, ...]  # hidden sizes; embedding_dim is appended
    cross_layers: int
    cross_rank: int
    deep_mlp: tuple[int, ...]  # hidden sizes; a final 1-unit layer is appended
    pooling: str = "sum"  # how a bag of embeddings becomes one vector: sum (MLPerf) or mean
    num_dense: int = NUM_DENSE


class LowRankCross(nn.Module):
    """x_{l+1} = x_0 * (U (V x_l) + b) + x_l, with V: width -> rank and U: rank -> width."""

    def __init__(self, width: int, rank: int):
        super().__init__()
        self.v = nn.Linear(width, rank, bias=False)
        self.u = nn.Linear(rank, width)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.u(self.v(x)) + x


class DCNv2(nn.Module):
    def __init__(self, cfg: DCNConfig):
        super().__init__()
        d = cfg.embedding_dim
        # nn.Embedding over each bag, pooled by a sum: one Gather + ReduceSum per feature in ONNX (no Loop).
        self.embeddings = nn.ModuleList(nn.Embedding(c, d, sparse=True) for c in cfg.cardinalities)
        self.bounds = [int(b) for b in np.cumsum((0, *cfg.hotness))]
        self.mean = cfg.pooling == "mean"
        self.bottom = mlp([cfg.num_dense, *cfg.bottom_mlp, d], last_activation=True)
        width = d * (len(cfg.cardinalities) + 1)
        self.cross = nn.ModuleList(LowRankCross(width, cfg.cross_rank) for _ in range(cfg.cross_layers))
        self.deep = mlp([width, *cfg.deep_mlp, 1], last_activation=False)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        pooled = []
        for emb, a, b in zip(self.embeddings, self.bounds[:-1], self.bounds[1:], strict=True):
            bag = emb(sparse[:, a:b])
            pooled.append(bag.mean(dim=1) if self.mean else bag.sum(dim=1))
        x0 = torch.cat([self.bottom(dense), *pooled], dim=1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        return torch.sigmoid(self.deep(x))


def _preset(cap: int, hot: int, dim: int, bottom: tuple[int, ...], cross: int, rank: int, deep: tuple[int, ...],
            **train) -> Preset:
    cfg = DCNConfig(criteo_cardinalities(cap), capped_hotness(hot), dim, bottom, cross, rank, deep)
    return Preset(config=cfg, **train)


DCN_FAMILY = ModelFamily(
    name="dcn",
    summary="DCN-v2 CTR ranker (MLPerf DLRM-DCNv2): 13 dense + 26 multi-hot features, low-rank cross + deep MLP",
    presets={
        "tiny": _preset(2_000, 3, 8, (32,), 2, 16, (32, 16), train_samples=40_000, train_batch=512, epochs=2,
                        eval_samples=8_192),
        "edge": _preset(40_000, 5, 16, (128, 64), 3, 32, (192, 96), train_samples=150_000, train_batch=1024,
                        eval_samples=32_768),
        "datacenter": _preset(1_000_000, 100, 64, (512, 256), 3, 512, (1024, 1024, 512, 256),
                              train_samples=1_000_000),
    },
    build=lambda cfg: DCNv2(cfg),
    dataset=lambda cfg: MultiHotCriteoSynth(cfg.cardinalities, cfg.hotness),
    input_names=("dense", "sparse"),
    fit=fit_ctr,
)
