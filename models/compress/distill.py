"""distilled: a smaller student trained on the teacher's soft labels (built-ins: narrower; BYO: --student)."""

from __future__ import annotations

import dataclasses

import torch

from models import train
from models.compress.base import Technique

SHRINK = 4  # embedding dim and hidden widths divided by this
STUDENT_EPOCHS = 2
STUDENT_LR = 5e-3
MIN_WIDTH = 8  # narrower students of the tiny preset stopped learning (all-dead ReLUs)
WIDTH_FIELDS = ("embedding_dim", "bottom_mlp", "top_mlp", "deep_mlp", "tower_mlp", "cross_rank", "out_dim")


def student_config(cfg):
    """The teacher's config with every width (embedding dim, hidden layers, ranks) SHRINK times narrower, or None
    where it names none of WIDTH_FIELDS. The student takes the teacher's inputs, which a smaller preset (other
    tables) would not."""
    fields = {f.name for f in dataclasses.fields(cfg)} if dataclasses.is_dataclass(cfg) else set()
    shrink = lambda v: max(MIN_WIDTH // 2, v // SHRINK) if isinstance(v, int) else tuple(  # noqa: E731
        max(MIN_WIDTH, s // SHRINK) for s in v)
    changes = {f: shrink(getattr(cfg, f)) for f in WIDTH_FIELDS if f in fields}
    return dataclasses.replace(cfg, **changes) if changes else None


class Distilled(Technique):
    name = "distilled"
    summary = (f"student trained on the teacher's soft labels (built-ins: {SHRINK}x narrower embeddings and MLPs; "
               f"bring-your-own: --student pkg.mod:factory with labelled data)")
    stage = "model"

    def applies(self, ws, fmt):
        return ws.student_reason()

    def transform(self, ws, module):
        x, _ = ws.train_set()  # the teacher's scores replace the labels
        soft = train.predict(module, x, ws.names)
        torch.manual_seed(0)
        student = ws.student()
        loss = "bce" if 0 <= soft.min() and soft.max() <= 1 else "mse"  # probabilities, else raw scores
        return train.fit(student, x, soft, ws.names, batch_size=ws.train_batch, epochs=STUDENT_EPOCHS,
                         lr=STUDENT_LR, loss=loss)

    def notes(self, ws, module):
        return {"student": ws.student_summary(), "student_params": sum(p.numel() for p in module.parameters())}
