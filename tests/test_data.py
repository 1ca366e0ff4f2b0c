from collections import Counter

import numpy as np
import pytest
import torch

from genocnn.data import dinucleotide_shuffle, load_pos_neg, split_indices
from genocnn.errors import GenocnnError


def _dinucs(s):
    return Counter(s[i : i + 2] for i in range(len(s) - 1))


@pytest.mark.parametrize("seed", range(5))
def test_dinucleotide_shuffle_keeps_dinucleotide_counts(seed):
    rng = np.random.default_rng(seed)
    s = "".join(rng.choice(list("ACGTN"), size=150, p=[0.3, 0.2, 0.2, 0.25, 0.05]))
    t = dinucleotide_shuffle(s, rng)
    assert _dinucs(t) == _dinucs(s) and t[0] == s[0] and t[-1] == s[-1]
    assert t != s


def test_dinucleotide_shuffle_is_seeded_and_handles_short():
    a = dinucleotide_shuffle("ACGTACGGTTACGATCGA", np.random.default_rng(3))
    b = dinucleotide_shuffle("ACGTACGGTTACGATCGA", np.random.default_rng(3))
    assert a == b
    assert dinucleotide_shuffle("ac", np.random.default_rng(0)) == "AC"


def test_load_pos_neg_with_shuffled_negatives(tiny_fastas):
    pos, _ = tiny_fastas
    data = load_pos_neg(pos, None, negatives_per_positive=2, seed=0)
    assert data.x.shape == (900, 4, 100) and data.x.dtype == torch.float32
    assert data.class_balance() == {"bound": (300, 600)}
    assert data.ids[300].endswith("_shuffled0")


def test_variable_lengths_and_explicit_length(tiny_fastas):
    pos, neg = tiny_fastas
    data = load_pos_neg(pos, neg, length=50)
    assert data.x.shape[-1] == 50
    assert torch.allclose(data.x.sum(1), torch.ones(len(data), 50))  # cropped: no padding left


def test_split_is_reproducible_stratified_and_disjoint():
    y = torch.tensor([1.0] * 60 + [0.0] * 140)[:, None]
    a = split_indices(y, 0.1, 0.2, seed=7)
    b = split_indices(y, 0.1, 0.2, seed=7)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(200))
    assert y[a.test].sum() == 12 and len(a.test) == 40


def test_split_too_small():
    with pytest.raises(GenocnnError, match="too few"):
        split_indices(torch.ones(3, 1), 0.1, 0.1, 0)
