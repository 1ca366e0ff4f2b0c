"""AUROC and AUPRC equal scikit-learn's on random, tied and imbalanced scores."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from genocnn.metrics import auroc, average_precision, evaluate


@pytest.mark.parametrize("seed", range(40))
def test_auroc_and_average_precision_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    truth = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(np.float32)
    truth[:2] = [0, 1]  # both classes
    score = rng.normal(truth * rng.uniform(0, 2), 1).astype(np.float32)
    if seed % 2:  # heavy ties, as in logits rounded or saturated
        score = np.round(score, 1)
    if seed % 5 == 0:
        score[:] = 0.25  # all tied
    assert auroc(truth, score) == pytest.approx(roc_auc_score(truth, score), abs=1e-12)
    assert average_precision(truth, score) == pytest.approx(average_precision_score(truth, score), abs=1e-12)


def test_evaluate_skips_unknown_labels_and_one_class_tasks():
    rng = np.random.default_rng(0)
    y = torch.tensor(rng.integers(0, 2, size=(300, 3)).astype(np.float32))
    y[::3, 0] = float("nan")
    y[:, 2] = 1.0  # one class: no AUROC
    logits = torch.tensor(rng.normal(size=(300, 3)).astype(np.float32)) + 2 * torch.nan_to_num(y)
    result = evaluate(y, logits, ["a", "b", "c"])
    known = ~torch.isnan(y[:, 0])
    assert result["tasks"]["a"]["auroc"] == pytest.approx(roc_auc_score(y[known, 0], logits[known, 0]))
    assert result["tasks"]["b"]["auprc"] == pytest.approx(average_precision_score(y[:, 1], logits[:, 1]))
    assert np.isnan(result["tasks"]["c"]["auroc"])
    assert result["auroc"] == pytest.approx((result["tasks"]["a"]["auroc"] + result["tasks"]["b"]["auroc"]) / 2)
