"""Small models in the style of public recommender libraries, for `recbench run --model tests.byo_library:X`."""

import torch
from torch import nn

SIZES = (1000, 500, 200, 50)
DENSE = 5


class CastNet(nn.Module):
    """Named ID inputs of shape [batch] and a dense block; casts every input in forward, as library models do."""

    def __init__(self, sizes=SIZES, dim=8):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(n, dim) for n in sizes)
        self.mlp = nn.Sequential(nn.Linear(dim * len(sizes) + DENSE, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, user_id, item_id, cat_a, cat_b, dense):
        ids = [user_id.long(), item_id.long(), cat_a.long(), cat_b.long()]
        emb = [t(i) for t, i in zip(self.tables, ids, strict=True)]
        return torch.sigmoid(self.mlp(torch.cat(emb + [dense.float()], dim=1))).squeeze(1)


class MatrixNet(nn.Module):
    """One float [batch, 5 + 4] matrix: dense values first, then IDs stored as floats (DeepCTR-style input)."""

    def __init__(self, sizes=SIZES, dim=8):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(n, dim) for n in sizes)
        self.linear = nn.Linear(DENSE + dim * len(sizes), 1)

    def forward(self, x):
        ids = x[:, DENSE:].long()
        emb = [t(ids[:, i]) for i, t in enumerate(self.tables)]
        return torch.sigmoid(self.linear(torch.cat([x[:, :DENSE], *emb], dim=1)))


class DictNet(nn.Module):
    """forward takes one mapping of feature name -> tensor (torchrec / EasyRec style)."""

    def __init__(self, dim=8):
        super().__init__()
        self.user = nn.Embedding(SIZES[0], dim)
        self.item = nn.Embedding(SIZES[1], dim)
        self.mlp = nn.Sequential(nn.Linear(2 * dim + DENSE, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, features: dict[str, torch.Tensor]):
        h = torch.cat([self.user(features["user"][:, 0]), self.item(features["item"][:, 0]), features["dense"]], 1)
        return torch.sigmoid(self.mlp(h))


class BagNet(nn.Module):
    """DLRM-style: multi-hot IDs pooled by nn.EmbeddingBag with offsets built in forward."""

    def __init__(self, sizes=SIZES, dim=8):
        super().__init__()
        self.bags = nn.ModuleList(nn.EmbeddingBag(n, dim, mode="sum") for n in sizes)
        self.top = nn.Sequential(nn.Linear(dim * len(sizes) + DENSE, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, dense, sparse):  # sparse: [batch, tables, hotness]
        b, _, hot = sparse.shape
        offsets = torch.arange(0, b * hot, hot, device=sparse.device)
        pooled = [bag(sparse[:, i].reshape(-1), offsets) for i, bag in enumerate(self.bags)]
        return torch.sigmoid(self.top(torch.cat([dense, *pooled], dim=1)))


class VarArgsNet(nn.Module):
    """forward(*inputs): inputs are bound by position only (the spec's order is the call order)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(SIZES[0], 8)
        self.out = nn.Linear(8 + DENSE, 1)

    def forward(self, *inputs):
        ids, dense = inputs
        return self.out(torch.cat([self.emb(ids[:, 0]), dense], 1))


class NormNet(nn.Module):
    """A modern block: RMSNorm, which the TorchScript exporter cannot export at opset 17 (the dynamo one can)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(SIZES[0], 8)
        self.norm = nn.RMSNorm(8 + DENSE)
        self.out = nn.Linear(8 + DENSE, 1)

    def forward(self, ids, dense):
        return torch.sigmoid(self.out(self.norm(torch.cat([self.emb(ids[:, 0]), dense], 1))))


class BNNet(nn.Module):
    """torch-rechub style: an MLP of Linear, BatchNorm1d / LayerNorm, ReLU and Dropout; dense cast with `.float()`."""

    def __init__(self, dim=16):
        super().__init__()
        self.emb = nn.Embedding(SIZES[0], dim)
        self.mlp = nn.Sequential(nn.Linear(dim + DENSE, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.2),
                                 nn.Linear(64, 32), nn.LayerNorm(32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, ids, dense):
        return torch.sigmoid(self.mlp(torch.cat([self.emb(ids), dense.float()], dim=1))).squeeze(1)


def _build(cls):
    def build() -> nn.Module:
        torch.manual_seed(0)
        return cls().eval()
    build.__doc__ = f"A seeded {cls.__name__}."
    return build


build_castnet, build_matrix, build_dict, build_bag, build_varargs, build_norm, build_bn = map(
    _build, (CastNet, MatrixNet, DictNet, BagNet, VarArgsNet, NormNet, BNNet))


# Input specs of the models above, as a user would write them (tests and scripts/byo-table use them).
CAST_SPEC = """inputs:
  - {name: user_id, dtype: int64, shape: [batch], cardinality: 1000}
  - {name: item_id, dtype: int64, shape: [batch], cardinality: 500}
  - {name: cat_a, dtype: int64, shape: [batch], cardinality: 200}
  - {name: cat_b, dtype: int64, shape: [batch], cardinality: 50}
  - {name: dense, dtype: float32, shape: [batch, 5]}
"""
MATRIX_SPEC = """inputs:
  - name: x
    columns: [{dense: true}, {dense: true}, {dense: true}, {dense: true}, {dense: true},
              {cardinality: 1000}, {cardinality: 500, distribution: uniform}, {cardinality: 200, zipf_a: 1.3},
              {cardinality: 50}]
"""
DICT_SPEC = """inputs:
  - {name: user, shape: [batch, 1], cardinality: 1000}
  - {name: item, shape: [batch, 1], cardinality: 500}
  - {name: dense, shape: [batch, 5]}
"""
BAG_SPEC = """inputs:
  - {name: sparse, dtype: int64, shape: [batch, 4, 3], cardinality: 50}
  - {name: dense, shape: [batch, 5]}
"""
BN_SPEC = """inputs:
  - {name: ids, dtype: int64, shape: [batch], cardinality: 1000}
  - {name: dense, dtype: float32, shape: [batch, 5]}
"""
SPECS = {"castnet": CAST_SPEC, "matrix": MATRIX_SPEC, "dict": DICT_SPEC, "bag": BAG_SPEC}
