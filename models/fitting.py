"""Training helpers for the built-in families that are not plain DLRM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from models import train


@contextmanager
def one_thread() -> Iterator[None]:
    """Train on one intra-op thread. These models' small per-step ops gain little from a second core, and on a
    busy 2-core machine two threads ran 10-20x slower than one (measured: DCN edge 4.4-9.9 s vs 0.44-0.52 s
    per step, two-tower edge 0.57-0.68 s vs 0.06-0.08 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_ctr(module: nn.Module, ws, lr: float = 2e-3) -> None:
    """The default CTR training (binary cross-entropy on the workspace's labelled data), on one thread."""
    x, y = ws.train_set()
    with one_thread():
        train.fit(module, x, y, ws.names, batch_size=ws.preset.train_batch, epochs=ws.preset.epochs, lr=lr)
