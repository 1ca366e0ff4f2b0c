from collections import Counter

import numpy as np
import pytest
import torch

from genocnn.data import load_pos_neg
from genocnn.errors import GenocnnError
from genocnn.negatives import base_counts, dinucleotide_shuffle, gc_content
from genocnn.splits import chrom_split, split_indices, stratified_draw


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


def test_split_indices_and_chrom_split_stratify_alike():
    """Without held-out chromosomes, chrom_split draws its test part exactly as split_indices does."""
    y = torch.tensor([1.0] * 37 + [0.0] * 91 + [float("nan")] * 12)[:, None]
    chroms = ["chr1"] * len(y)
    for seed in range(5):
        a = split_indices(y, 0.1, 0.2, seed)
        b = chrom_split(chroms, y, valid_fraction=0.1, test_fraction=0.2, seed=seed)
        assert np.array_equal(a.test, b.test)
        for split in (a, b):
            assert sorted(np.concatenate(split).tolist()) == list(range(len(y)))
            assert int(y[split.test, 0].nansum()) == round(37 * 0.2)  # per stratum: round(n * fraction)


def test_stratified_draw_cuts_each_stratum():
    labels = np.array([1.0] * 10 + [0.0] * 20 + [-1.0] * 5)
    index = np.arange(35)[::-1].copy()
    first, second, rest = stratified_draw(index, labels, [0.2, 0.3], np.random.default_rng(0))
    for value, n in ((1.0, 10), (0.0, 20), (-1.0, 5)):
        counts = [int((labels[p] == value).sum()) for p in (first, second, rest)]
        assert counts == [round(n * 0.2), round(n * 0.3), n - round(n * 0.2) - round(n * 0.3)]
    assert sorted(np.concatenate([first, second, rest]).tolist()) == list(range(35))


def test_base_counts_give_gc_and_n():
    counts = base_counts("acgtNNgg")
    assert (counts.gc, counts.acgt, counts.length, counts.n) == (4, 6, 8, 2)
    assert counts.n_fraction == 0.25 and counts.gc_fraction == gc_content("acgtNNgg") == 4 / 6
    assert base_counts("NNN").gc_fraction == 0.0 and base_counts("NNN").gc_bin(20) == 0
    assert base_counts("GGGG").gc_bin(20) == 19 and base_counts("").n_fraction == 0.0
