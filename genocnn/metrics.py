"""Held-out metrics: AUROC and AUPRC per task over the known labels."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score


def evaluate(y: torch.Tensor, logits: torch.Tensor, tasks: list[str]) -> dict:
    """AUROC and AUPRC per task over known labels, and their mean (NaN where a task has one class)."""
    per_task = {}
    for t, name in enumerate(tasks):
        known = ~torch.isnan(y[:, t])
        truth = y[known, t].numpy()
        score = logits[known, t].numpy()
        if len(np.unique(truth)) < 2:
            per_task[name] = {"auroc": float("nan"), "auprc": float("nan")}
            continue
        per_task[name] = {
            "auroc": float(roc_auc_score(truth, score)),
            "auprc": float(average_precision_score(truth, score)),
        }
    return {
        "auroc": float(np.nanmean([m["auroc"] for m in per_task.values()])),
        "auprc": float(np.nanmean([m["auprc"] for m in per_task.values()])),
        "tasks": per_task,
    }
