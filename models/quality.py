"""Ranking quality metrics computed on held-out labelled data."""

from __future__ import annotations

from collections.abc import Callable, Iterator

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
    """AUC, logloss and their deltas plus fidelity to the fp32 reference's scores on the same inputs."""
    a, ll = auc(labels, scores), logloss(labels, scores)
    return {
        "auc": a,
        "logloss": ll,
        "auc_delta": a - reference["auc"],
        "logloss_delta": ll - reference["logloss"],
        **fidelity(scores, reference["scores"]),
        "fidelity": False,
    }


def normalized_entropy(labels: np.ndarray, scores: np.ndarray) -> float:
    """NE (He et al., ADKDD 2014; MLPerf DLRM): logloss over the entropy of the labels' base rate, i.e. the logloss
    of always predicting the average CTR. 1 = no better than the base rate; lower is better."""
    p = float(np.clip(labels.mean(), 1e-7, 1 - 1e-7))
    return logloss(labels, scores) / -(p * np.log(p) + (1 - p) * np.log(1 - p))


def accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    """Share of clicks / non-clicks predicted right at the 0.5 threshold."""
    return float(np.mean((scores >= 0.5) == (labels > 0.5)))


CLICK_METRICS = {"ne": normalized_entropy, "accuracy": accuracy, "auc": auc, "logloss": logloss}


def click_metrics(labels: np.ndarray, scores: np.ndarray, base: np.ndarray) -> dict:
    """NE, accuracy, AUC and logloss of click probabilities, each with its delta and its ratio to the same metric of
    the fp32 scores `base` (MLPerf DLRMv3's rule: NE, accuracy and AUC each within 99.9% of fp32)."""
    out = {}
    for name, metric in CLICK_METRICS.items():
        got, want = metric(labels, scores), metric(labels, base)
        out.update({name: got, f"{name}_delta": got - want, f"{name}_ratio": got / want})
    return out


def labelled_outputs(run: Callable[[dict], np.ndarray], reference_path: str, limit: int | None
                     ) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """The reference, its labels and fp32 scores [n, columns] and the runtime's scores in the same shape."""
    ref, x, n = load_reference(reference_path, limit)
    base = ref["scores"][:n]
    return ref, ref["labels"][:n], base, score_reference(run, x, n).reshape(base.shape)


def evaluate_clicks(run: Callable[[dict], np.ndarray], reference_path: str, limit: int | None) -> dict:
    """Clicks on a user's candidates (one row = one user's history and candidates): NE, accuracy, AUC and logloss
    over every (user, candidate) pair vs fp32, plus fidelity (rankings of each user's candidates)."""
    _, labels, base, scores = labelled_outputs(run, reference_path, limit)
    return {**click_metrics(labels.ravel(), scores.ravel(), base.ravel()), **fidelity(scores, base),
            "eval_pairs": int(labels.size), "fidelity": False}


def evaluate_tasks(run: Callable[[dict], np.ndarray], reference_path: str, limit: int | None) -> dict:
    """Multi-task ranking (one score per task): each task's NE, accuracy, AUC and logloss (`<task>_auc`, ...) with
    deltas and ratios vs fp32; each unprefixed key is the worst task's; fidelity over all scores as one ranking."""
    ref, labels, base, scores = labelled_outputs(run, reference_path, limit)
    per = [click_metrics(labels[:, j], scores[:, j], base[:, j]) for j in range(labels.shape[1])]
    worst = {}
    for key in per[0]:
        lower_is_better = key.split("_")[0] in ("ne", "logloss")  # its value, delta and ratio alike
        worst[key] = (max if lower_is_better else min)(m[key] for m in per)
    return {**{f"{task}_{k}": v for task, m in zip(ref["tasks"], per, strict=True) for k, v in m.items()}, **worst,
            **fidelity(scores.ravel(), base.ravel()), "eval_samples": len(labels), "fidelity": False}


FIDELITY_K = (10, 100)
ROW_CORR_LIMIT = 512  # rows whose rankings are compared (multi-score outputs: one ranking per row)
TIE_SHARE = 1e-5  # score differences below this share of the baseline's largest |score| count as ties


def fidelity(scores: np.ndarray, base: np.ndarray) -> dict:
    """How closely a variant reproduces the baseline's scores on the same inputs (fidelity, not accuracy):
    max / mean abs score difference, Spearman rank correlation, and overlap of the top-k (k = 10, 100).

    One score per sample: one ranking over all samples (top-k = the k samples ranked highest). Several scores
    per sample (e.g. one per catalog item): a ranking per row, averaged over rows. Rankings compare scores on
    a grid of TIE_SHARE x the baseline's scale, ties broken by position: saturated sigmoids (many scores of
    1.0 give or take 1e-7) would otherwise reorder on float noise alone."""
    n = len(base)
    got, want = scores.astype(np.float64).reshape(n, -1), base.astype(np.float64).reshape(n, -1)
    diff = np.abs(got - want)
    out = {"max_abs_score_delta": float(diff.max()), "mean_abs_score_delta": float(diff.mean())}
    if got.shape[1] == 1:
        got, want = got.T, want.T
    grid = max(float(np.abs(want).max()), 1e-30) * TIE_SHARE
    got, want = np.round(got[:ROW_CORR_LIMIT] / grid), np.round(want[:ROW_CORR_LIMIT] / grid)
    corr = [np.corrcoef(a, b)[0, 1] if np.std(a) and np.std(b) else float(np.array_equal(a, b))
            for a, b in zip(rankdata(got, axis=1), rankdata(want, axis=1), strict=True)]
    out["rank_corr"] = float(np.mean(corr))
    order_got, order_want = np.argsort(-got, axis=1, kind="stable"), np.argsort(-want, axis=1, kind="stable")
    for k in FIDELITY_K:
        if got.shape[1] > k:
            out[f"top{k}_overlap"] = float(overlap_at_k(order_got[:, :k], order_want[:, :k]).mean())
    out["eval_samples"] = int(n)
    return out


QUALITY_CHUNK = 1024


def run_chunks(run: Callable[[dict], np.ndarray], x: dict[str, np.ndarray], n: int,
               chunk: int = QUALITY_CHUNK) -> Iterator[tuple[slice, np.ndarray]]:
    """The runtime's outputs for the first n reference samples, chunk by chunk (never timed)."""
    for s in range(0, n, chunk):
        rows = slice(s, min(s + chunk, n))
        yield rows, run({k: v[rows] for k, v in x.items()})


def score_reference(run: Callable[[dict], np.ndarray], x: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Scores of the first n reference samples, fed to the runtime in chunks (never timed)."""
    return np.concatenate([out for _, out in run_chunks(run, x, n)])


def load_reference(reference_path: str, limit: int | None) -> tuple[dict, dict[str, np.ndarray], int]:
    """The reference file, its first n inputs (x_<name> arrays, keyed by name) and n."""
    ref = np.load(reference_path)
    total = len(ref[next(k for k in ref.files if k.startswith("x_"))])
    n = total if limit is None else min(limit, total)
    return ref, {k[2:]: ref[k][:n] for k in ref.files if k.startswith("x_")}, n


def evaluate_ranking(run: Callable[[dict], np.ndarray], reference_path: str, limit: int | None) -> dict:
    """CTR quality of a runtime on the held-out set, against the fp32 scores on the same inputs; without labels
    (a bring-your-own model without `labelled:` data) fidelity to them only, marked `fidelity: true`."""
    ref, x, n = load_reference(reference_path, limit)
    base = ref["scores"][:n]
    scores = score_reference(run, x, n)
    if "labels" not in ref.files:
        return {**fidelity(scores, base), "fidelity": True}
    labels = ref["labels"]
    reference = {"scores": base, "auc": auc(labels[:n], base), "logloss": logloss(labels[:n], base)}
    return ranking_quality(labels[:n], scores, reference)


def overlap_at_k(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Per row, the fraction of `want`'s items (n x k) that `got` (n x k') also holds: recall@k."""
    return (got[:, :, None] == want[:, None, :]).any(axis=1).mean(axis=1)


RETRIEVAL_CHUNK = 64  # users per call: each scores the whole item corpus


def evaluate_retrieval(run: Callable[[dict], np.ndarray], reference_path: str, limit: int | None) -> dict:
    """Recall@k of a runtime's top-k items against the fp32 model's top-k and against the planted relevance."""
    ref, x, n = load_reference(reference_path, limit)
    k = int(ref["k"])
    got = np.concatenate([out.reshape(-1, k) for _, out in run_chunks(run, x, n, RETRIEVAL_CHUNK)])
    got = np.rint(got).astype(np.int64)
    truth = ref["truth_topk"][:n]
    vs_truth, base_vs_truth = overlap_at_k(got, truth).mean(), overlap_at_k(ref["topk"][:n], truth).mean()
    return {
        "k": k,
        "recall_at_k": float(overlap_at_k(got, ref["topk"][:n]).mean()),  # vs the fp32 PyTorch model
        "recall_at_k_truth": float(vs_truth),
        "recall_at_k_truth_delta": float(vs_truth - base_vs_truth),
        "eval_samples": int(n),
    }


def next_item_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target among its item scores (column 0, the padding item, excluded)."""
    mine = np.take_along_axis(scores, targets[:, None], axis=1)
    return (scores[:, 1:] > mine).sum(axis=1)


def hit_ndcg(ranks: np.ndarray, k: int = 10) -> tuple[float, float]:
    """Hit rate@k and NDCG@k of one relevant item per row at the given 0-based ranks."""
    hit = ranks < k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())


SEQUENCE_CHUNK = 256


def evaluate_next_item(run: Callable[[dict], np.ndarray], reference_path: str, limit: int | None) -> dict:
    """Hit rate and NDCG@10 of the held-out next items under a runtime's catalog scores, vs the fp32 model's."""
    ref, x, n = load_reference(reference_path, limit)
    targets, ranks, overlap = ref["targets"][:n], [], []
    for rows, out in run_chunks(run, x, n, SEQUENCE_CHUNK):
        scores = out.reshape(rows.stop - rows.start, -1)
        ranks.append(next_item_ranks(scores, targets[rows]))
        top10 = np.argpartition(-scores[:, 1:], 9, axis=1)[:, :10] + 1
        overlap.append(overlap_at_k(top10, ref["top10"][rows]))
    hr, ndcg = hit_ndcg(np.concatenate(ranks))
    base_hr, base_ndcg = hit_ndcg(ref["ranks"][:n])
    return {
        "hr_at_10": hr, "ndcg_at_10": ndcg, "hr_at_10_delta": hr - base_hr, "ndcg_at_10_delta": ndcg - base_ndcg,
        "top10_overlap": float(np.concatenate(overlap).mean()), "eval_samples": int(n),
    }
