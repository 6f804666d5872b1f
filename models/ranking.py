"""What the families with several click labels per row share: their eval reference (hstu, din, mmoe)."""

from __future__ import annotations

from models.artifacts import EVAL_SEED, Workspace
from models.train import predict

REFERENCE_CHUNK = 256  # rows per fp32 call: a row of hstu / din is a whole user history with its candidates


def click_reference(ws: Workspace) -> dict:
    """Held-out inputs, their labels [n, columns] and the fp32 model's scores in the same shape (plus the task
    names where the data has tasks)."""
    x, labels = ws.data.labelled(ws.preset.eval_samples, EVAL_SEED)
    scores = predict(ws.baseline(), x, ws.names, chunk=REFERENCE_CHUNK).reshape(labels.shape)
    tasks = {"tasks": list(ws.data.tasks)} if hasattr(ws.data, "tasks") else {}
    return {"labels": labels, "scores": scores, **tasks, **{f"x_{k}": v for k, v in x.items()}}
