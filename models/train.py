"""Training loop shared by baselines, fine-tuning after pruning, and distillation students."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# One thread: the result does not depend on the thread count, and on a busy 2-core machine two spinning
# threads made each small matmul up to 10x slower (measured while six jobs shared the cores).
TRAIN_THREADS = 1


def _optimizers(model: nn.Module, lr: float) -> list[torch.optim.Optimizer]:
    sparse = [m.weight for m in model.modules() if isinstance(m, nn.Embedding) and m.sparse and m.weight.requires_grad]
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids and p.requires_grad]
    opts: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=lr)]
    if sparse:
        opts.append(torch.optim.SparseAdam(sparse, lr=lr))
    return opts


def fit(
    model: nn.Module,
    inputs: dict[str, np.ndarray],
    targets: np.ndarray,
    input_names: tuple[str, ...],
    batch_size: int = 2048,
    epochs: int = 1,
    lr: float = 5e-3,
    seed: int = 0,
    after_step=None,
    loss: str = "bce",
) -> nn.Module:
    """Minimise binary cross-entropy (or, `loss="mse"`, squared error) of the model's scores against targets."""
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        return _fit(model, inputs, targets, input_names, batch_size, epochs, lr, seed, after_step, loss)
    finally:
        torch.set_num_threads(threads)


def _fit(model, inputs, targets, input_names, batch_size, epochs, lr, seed, after_step, loss) -> nn.Module:
    torch.manual_seed(seed)
    model.train()
    opts = _optimizers(model, lr)
    tensors = [torch.from_numpy(inputs[k]) for k in input_names]
    n = len(tensors[0])
    y = torch.from_numpy(targets.astype(np.float32)).reshape(n, -1)
    bce = loss == "bce"
    loss_fn = nn.BCELoss() if bce else nn.MSELoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            scores = model(*(t[idx] for t in tensors)).reshape(len(idx), -1)
            value = loss_fn(scores.clamp(1e-7, 1 - 1e-7) if bce else scores, y[idx])
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            value.backward()
            for opt in opts:
                opt.step()
            if after_step is not None:
                after_step(model)
    model.eval()
    return model


@torch.inference_mode()
def predict(model: nn.Module, inputs: dict[str, np.ndarray], input_names: tuple[str, ...],
            chunk: int = 8192) -> np.ndarray:
    model.eval()
    n = len(inputs[input_names[0]])
    out = [
        model(*(torch.from_numpy(inputs[k][s : s + chunk]) for k in input_names)).float().numpy().reshape(-1)
        for s in range(0, n, chunk)
    ]
    return np.concatenate(out)
