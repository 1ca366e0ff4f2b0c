"""Tests for genocnn.encode: against a slow per-base reference, and invariants."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from Bio.Seq import Seq

from genocnn.encode import (
    ALPHABET,
    PAD,
    decode,
    fit_length,
    one_hot,
    reverse_complement,
    reverse_complement_sequence,
)

IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}  # fmt: skip
LETTERS = "".join(IUPAC) + "".join(IUPAC).lower()


def naive_one_hot(seq: str) -> np.ndarray:
    """Slow reference: one column per base, written out by hand."""
    out = np.zeros((4, len(seq)), dtype=np.float32)
    for j, char in enumerate(seq):
        bases = IUPAC.get(char.upper(), "")
        for base in bases:
            out["ACGT".index(base), j] = 1 / len(bases)
    return out


def random_seqs(n: int, length: int, letters: str = LETTERS, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(letters, k=length)) for _ in range(n)]


def test_alphabet():
    assert ALPHABET == "ACGT"


def test_matches_naive_reference():
    seqs = random_seqs(64, 37)
    x = one_hot(seqs)
    assert x.dtype == torch.float32
    assert x.shape == (64, 4, 37)
    expected = np.stack([naive_one_hot(s) for s in seqs])
    np.testing.assert_allclose(x.numpy(), expected, rtol=0, atol=1e-7)


def test_column_sums():
    x = one_hot("ACGTUacgtu" + "RYSWKMBDHVNryswkmbdhvn" + "-?xZ.*é")[0]
    sums = x.sum(dim=0)
    exact, ambiguous, zero = x[:, :10], x[:, 10:32], x[:, 32:]
    assert torch.equal(sums[:10], torch.ones(10))
    assert set(exact.max(dim=0).values.tolist()) == {1.0}
    torch.testing.assert_close(sums[10:32], torch.ones(22))  # spread evenly
    assert (ambiguous.max(dim=0).values < 1).all()
    assert torch.equal(zero, torch.zeros_like(zero))


def test_ambiguity_weights():
    x = one_hot("NRBu")[0]
    torch.testing.assert_close(x[:, 0], torch.full((4,), 0.25))
    torch.testing.assert_close(x[:, 1], torch.tensor([0.5, 0.0, 0.5, 0.0]))
    torch.testing.assert_close(x[:, 2], torch.tensor([0.0, 1 / 3, 1 / 3, 1 / 3]))
    torch.testing.assert_close(x[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]))


def test_case_insensitive():
    seqs = random_seqs(8, 50, "".join(IUPAC))
    assert torch.equal(one_hot(seqs), one_hot([s.lower() for s in seqs]))


def test_single_string_and_iterables():
    assert one_hot("ACGT").shape == (1, 4, 4)
    seqs = random_seqs(5, 12)
    batch = one_hot(seqs)
    assert torch.equal(one_hot(iter(seqs)), batch)
    assert torch.equal(one_hot(tuple(seqs)), batch)


def test_batch_equals_single():
    seqs = random_seqs(70, 31) + random_seqs(10, 17, seed=1)
    batch = one_hot(seqs, length=25)
    singles = torch.cat([one_hot(s, length=25) for s in seqs])
    assert torch.equal(batch, singles)


def test_large_batch_crosses_chunks():
    seqs = random_seqs(9000, 8, "ACGT")
    x = one_hot(seqs)
    assert decode(x) == seqs


@pytest.mark.parametrize(
    ("seq", "length", "expected"),
    [
        ("ACGTACGT", 8, "ACGTACGT"),
        ("AACCGGT", 3, "CCG"),  # start = (7 - 3) // 2 = 2
        ("AACCGGTT", 3, "CCG"),  # start = (8 - 3) // 2 = 2
        ("ACGTAC", 4, "CGTA"),  # start = 1
        ("AC", 4, "-AC-"),
        ("AC", 5, "-AC--"),  # extra pad on the right
        ("A", 4, "-A--"),
        ("", 3, "---"),
    ],
)
def test_fit_length(seq, length, expected):
    assert PAD == "-"
    assert fit_length(seq, length) == expected


def test_fit_length_rejects_bad_length():
    with pytest.raises(ValueError):
        fit_length("ACGT", 0)


def test_crop_and_pad_in_tensor():
    x = one_hot(["AC", "AACCGGT", "ACGTA"])  # L = 7
    assert x.shape == (3, 4, 7)
    assert decode(x[:2]) == ["NNACNNN", "AACCGGT"]
    pad_columns = x[0][:, [0, 1, 4, 5, 6]]
    assert torch.equal(pad_columns, torch.zeros_like(pad_columns))  # not N = 0.25
    assert torch.equal(x[2], one_hot("-ACGTA-")[0])
    cropped = one_hot(["AACCGGT", "ACG"], length=3)
    assert decode(cropped) == ["CCG", "ACG"]


def test_pad_versus_n():
    x = one_hot(["A", "NNN"])
    assert x[0, :, 0].sum() == 0  # left pad
    torch.testing.assert_close(x[1].sum(dim=0), torch.ones(3))


def test_empty_input_needs_length():
    with pytest.raises(ValueError):
        one_hot([])
    assert one_hot([], length=5).shape == (0, 4, 5)


def test_reverse_complement_twice_is_identity():
    x = one_hot(random_seqs(16, 21))
    assert torch.equal(reverse_complement(reverse_complement(x)), x)
    assert torch.equal(reverse_complement(reverse_complement(x[0])), x[0])


def test_reverse_complement_matches_sequence():
    seqs = random_seqs(32, 40)
    rc = one_hot([reverse_complement_sequence(s) for s in seqs])
    assert torch.equal(reverse_complement(one_hot(seqs)), rc)
    assert torch.equal(reverse_complement(one_hot(seqs[0])[0]), rc[0])


def test_reverse_complement_shape_check():
    with pytest.raises(ValueError):
        reverse_complement(torch.zeros(2, 5, 10))


def test_reverse_complement_sequence_against_biopython():
    for seq in random_seqs(50, 30, LETTERS.replace("U", "").replace("u", "")):
        assert reverse_complement_sequence(seq) == str(Seq(seq).reverse_complement())


def test_reverse_complement_sequence_examples():
    assert reverse_complement_sequence("AACGt") == "aCGTT"
    assert reverse_complement_sequence("UuRN") == "NYaA"
    assert reverse_complement_sequence("") == ""


def test_decode_round_trip():
    seqs = random_seqs(10, 15, "ACGT")
    assert decode(one_hot(seqs)) == seqs
    assert decode(one_hot("ACGTUNR")[0]) == ["ACGTTNN"]
