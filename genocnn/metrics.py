"""Held-out metrics: AUROC and AUPRC per task over the known labels.

Both are computed here in numpy rather than with scikit-learn: importing
``sklearn.metrics`` costs about 1.7 s, which every ``genocnn train`` paid
(measured on the 2-core CPU machine, where ``import torch`` costs 2.1 s).
The values equal scikit-learn's ``roc_auc_score`` (ties count one half) and
``average_precision_score`` (step-wise precision at each distinct score); the
tests compare them on random and tied scores.
"""

from __future__ import annotations

import numpy as np
import torch


def auroc(truth: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the chance a positive outscores a negative (ties count one half).

    Parameters
    ----------
    truth : np.ndarray, shape (n,)
        1 for positives, 0 for negatives.
    score : np.ndarray, shape (n,)

    Examples
    --------
    >>> auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    positive = np.asarray(truth) == 1
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    _, inverse, counts = np.unique(np.asarray(score, dtype=np.float64), return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank of each distinct score
    rank_sum = float(mid_rank[inverse.ravel()][positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def average_precision(truth: np.ndarray, score: np.ndarray) -> float:
    """Average precision: precision at each distinct score, weighted by the recall it adds.

    ``truth`` and ``score`` as for :func:`auroc`.

    Examples
    --------
    >>> round(average_precision(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])), 4)
    0.8333
    """
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    s = np.asarray(score, dtype=np.float64)[order]
    hits = (np.asarray(truth)[order] == 1).astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last row of each distinct score
    true_pos = np.cumsum(hits)[last]
    precision = true_pos / (last + 1)
    recall_gain = np.diff(np.r_[0.0, true_pos]) / true_pos[-1]
    return float(np.sum(recall_gain * precision))


def evaluate(y: torch.Tensor, logits: torch.Tensor, tasks: list[str]) -> dict:
    """AUROC and AUPRC per task over known labels, and their mean (NaN where a task has one class).

    Parameters
    ----------
    y : torch.Tensor, shape (N, T)
        Labels 0/1, NaN where unknown.
    logits : torch.Tensor, shape (N, T)
    tasks : list of str, length T

    Returns
    -------
    dict
        ``auroc``, ``auprc`` (means over tasks with both classes) and ``tasks``
        (name -> ``{"auroc", "auprc"}``).
    """
    per_task = {}
    for t, name in enumerate(tasks):
        known = ~torch.isnan(y[:, t])
        truth = y[known, t].numpy()
        score = logits[known, t].numpy()
        if len(np.unique(truth)) < 2:
            per_task[name] = {"auroc": float("nan"), "auprc": float("nan")}
            continue
        per_task[name] = {"auroc": float(auroc(truth, score)), "auprc": average_precision(truth, score)}
    return {
        "auroc": float(np.nanmean([m["auroc"] for m in per_task.values()])),
        "auprc": float(np.nanmean([m["auprc"] for m in per_task.values()])),
        "tasks": per_task,
    }
