"""A bring-your-own DeepFM-style CTR model (~10M parameters, ~95% in embeddings) for scripts/variants-benchmark.

    recbench run --model deepfm:build --input-spec scripts/byo/deepfm.yaml   (with scripts/byo on PYTHONPATH)
"""

import torch
from torch import nn

FIELDS, ROWS_PER_FIELD, DIM, MLP = 26, 11_500, 32, (256, 128)


class DeepFM(nn.Module):
    """One shared table with per-field offsets (as torchfm does): first-order weights + FM pairs + a deep MLP."""

    def __init__(self):
        super().__init__()
        self.register_buffer("offsets", torch.arange(FIELDS) * ROWS_PER_FIELD, persistent=False)
        self.embedding = nn.Embedding(FIELDS * ROWS_PER_FIELD, DIM)
        self.linear = nn.Embedding(FIELDS * ROWS_PER_FIELD, 1)
        self.bias = nn.Parameter(torch.zeros(1))
        sizes = (FIELDS * DIM, *MLP)
        layers = [m for a, b in zip(sizes[:-1], sizes[1:], strict=True) for m in (nn.Linear(a, b), nn.ReLU())]
        self.mlp = nn.Sequential(*layers, nn.Linear(sizes[-1], 1))
        nn.init.normal_(self.embedding.weight, std=0.05)
        nn.init.normal_(self.linear.weight, std=0.05)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        idx = ids + self.offsets
        e = self.embedding(idx)
        fm = 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1, keepdim=True)
        first = self.linear(idx).sum(1) + self.bias
        return torch.sigmoid(first + fm + self.mlp(e.flatten(1))).squeeze(1)


def build() -> nn.Module:
    torch.manual_seed(0)
    return DeepFM().eval()
