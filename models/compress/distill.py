"""distilled: a smaller student (narrower MLPs, smaller embeddings) trained on the teacher's soft labels."""

from __future__ import annotations

import dataclasses

import torch

from models import train
from models.compress.base import Technique
from models.errors import ModelError

SHRINK = 4  # embedding dim and hidden widths divided by this
STUDENT_EPOCHS = 2
STUDENT_LR = 5e-3
MIN_WIDTH = 8  # narrower students of the tiny preset stopped learning (all-dead ReLUs)


def student_config(cfg):
    """The teacher's config with embeddings and hidden layers SHRINK times narrower."""
    fields = {f.name for f in dataclasses.fields(cfg)} if dataclasses.is_dataclass(cfg) else set()
    if not {"embedding_dim", "bottom_mlp", "top_mlp"} <= fields:
        raise ModelError(f"variant distilled needs a config with embedding_dim/bottom_mlp/top_mlp, not {type(cfg)}")
    narrow = lambda sizes: tuple(max(MIN_WIDTH, s // SHRINK) for s in sizes)  # noqa: E731
    return dataclasses.replace(cfg, embedding_dim=max(MIN_WIDTH // 2, cfg.embedding_dim // SHRINK),
                               bottom_mlp=narrow(cfg.bottom_mlp), top_mlp=narrow(cfg.top_mlp))


class Distilled(Technique):
    name = "distilled"
    summary = f"student with {SHRINK}x narrower embeddings and MLPs, trained on the teacher's soft labels"
    stage = "model"

    def transform(self, ws, module):
        x, _ = ws.train_set()  # the teacher's probabilities replace the sampled clicks
        soft = train.predict(module, x, ws.names)
        torch.manual_seed(0)
        student = ws.build_module(student_config(ws.preset.config))
        p = ws.preset
        return train.fit(student, x, soft, ws.names, batch_size=p.train_batch, epochs=STUDENT_EPOCHS, lr=STUDENT_LR)

    def notes(self, ws, module):
        cfg = student_config(ws.preset.config)
        return {"student": {"embedding_dim": cfg.embedding_dim, "bottom_mlp": cfg.bottom_mlp, "top_mlp": cfg.top_mlp}}
