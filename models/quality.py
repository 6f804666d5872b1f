"""Ranking quality metrics computed on held-out labelled data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC via the Mann-Whitney U statistic (ties get average ranks)."""
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(labels: np.ndarray, scores: np.ndarray, eps: float = 1e-7) -> float:
    p = np.clip(scores.astype(np.float64), eps, 1 - eps)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def ranking_quality(labels: np.ndarray, scores: np.ndarray, reference: dict) -> dict:
    """AUC, logloss and their deltas plus score drift against the fp32 reference on the same inputs."""
    a, ll = auc(labels, scores), logloss(labels, scores)
    diff = np.abs(scores.astype(np.float64) - reference["scores"])
    return {
        "auc": a,
        "logloss": ll,
        "auc_delta": a - reference["auc"],
        "logloss_delta": ll - reference["logloss"],
        "max_abs_score_delta": float(diff.max()),
        "mean_abs_score_delta": float(diff.mean()),
        "eval_samples": int(len(labels)),
    }


QUALITY_CHUNK = 1024


def score_reference(run: Callable[[dict], np.ndarray], x: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Scores of the first n reference samples, fed to the runtime in chunks (never timed)."""
    return np.concatenate([run({k: v[s : s + QUALITY_CHUNK] for k, v in x.items()})
                           for s in range(0, n, QUALITY_CHUNK)])


def evaluate_ranking(run: Callable[[dict], np.ndarray], reference_path: str, limit: int | None) -> dict:
    """CTR quality of a runtime on the held-out set, against the fp32 PyTorch scores on the same inputs."""
    ref = np.load(reference_path)
    labels = ref["labels"]
    n = len(labels) if limit is None else min(limit, len(labels))
    x = {k[2:]: ref[k][:n] for k in ref.files if k.startswith("x_")}
    base = ref["scores"][:n]
    reference = {"scores": base, "auc": auc(labels[:n], base), "logloss": logloss(labels[:n], base)}
    return ranking_quality(labels[:n], score_reference(run, x, n), reference)
