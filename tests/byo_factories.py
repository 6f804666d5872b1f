"""PyTorch module factories for the bring-your-own tests (imported by `recbench run --model tests.byo_factories:X`)."""

import torch
from torch import nn


class TinyRanker(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(500, 4)
        self.mlp = nn.Sequential(nn.Linear(8 + 4, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(torch.cat([x, self.emb(ids[:, 0])], dim=1)))


class Unexportable(nn.Module):
    """Uses an operator the ONNX exporter has no mapping for (eigvalsh at opset 17)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigvalsh(x[:, :4, None] * x[:, None, :4]).sum(dim=1, keepdim=True)


def build_ranker() -> nn.Module:
    torch.manual_seed(0)
    return TinyRanker()


def build_unexportable() -> nn.Module:
    return Unexportable()


def build_not_a_module():
    return {"weights": [1, 2, 3]}


class FailsInJobs(nn.Module):
    """Pools multi-hot IDs with nn.EmbeddingBag (an ONNX Loop); its PyTorch forward raises inside a job process only,
    with a reason longer than any screen line: a job failure the parent's pre-flight cannot see."""

    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(100, 4, mode="sum")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            raise RuntimeError("refusing to run in a job: " + "this reason goes on " * 30 + "END-OF-REASON")
        offsets = torch.arange(0, ids.numel(), ids.shape[1])
        return self.bag(ids.reshape(-1), offsets).sum(1, keepdim=True)


def build_fails_in_jobs() -> nn.Module:
    torch.manual_seed(0)
    return FailsInJobs()


class TiedScorer(nn.Module):
    """Scores every catalog item with the same table it embeds the history with (SASRec's tied output layer)."""

    def __init__(self):
        super().__init__()
        self.items = nn.Embedding(300, 8)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.items(history).mean(dim=1) @ self.items.weight.T


def build_tied() -> nn.Module:
    torch.manual_seed(0)
    return TiedScorer()


def build_small_ranker() -> nn.Module:
    """A student for TinyRanker: a narrower table and hidden layer, the same inputs."""
    torch.manual_seed(1)
    student = TinyRanker()
    student.emb = nn.Embedding(500, 2)
    student.mlp = nn.Sequential(nn.Linear(8 + 2, 4), nn.ReLU(), nn.Linear(4, 1))
    return student
