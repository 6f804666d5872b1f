"""Ranking quality metrics computed on held-out labelled data."""

from __future__ import annotations

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
