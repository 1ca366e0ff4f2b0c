"""One-hot encoding of DNA, reverse complements, and the fixed-length rule.

Channels are ``A, C, G, T`` in that order (:data:`ALPHABET`). Upper and
lower case encode the same; ``U`` encodes as ``T``. IUPAC ambiguity codes
spread their weight evenly over the bases they stand for:

=====  ========  =====  ========  =====  ==========
code   bases     code   bases     code   bases
=====  ========  =====  ========  =====  ==========
R      A G       K      G T       B      C G T
Y      C T       M      A C       D      A G T
S      C G       N      A C G T   H      A C T
W      A T                        V      A C G
=====  ========  =====  ========  =====  ==========

so ``N`` is 0.25 in every channel and ``R`` is 0.5 A + 0.5 G. Any other
character (including the pad character ``-``) encodes as an all-zero column.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

__all__ = [
    "ALPHABET",
    "MIN_BASE_FRACTION",
    "PAD",
    "base_fraction",
    "decode",
    "fit_length",
    "one_hot",
    "reverse_complement",
    "reverse_complement_sequence",
]

#: Channel order of every one-hot tensor.
ALPHABET = "ACGT"
#: Pad character added by :func:`fit_length`; encodes as an all-zero column.
PAD = "-"
#: A window (or sequence) at least this fraction A/C/G/T is scored; below it is "mostly N or padding".
MIN_BASE_FRACTION = 0.5

_IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}  # fmt: skip
_COMPLEMENT = str.maketrans(
    "ACGTURYSWKMBDHVN" + "acgturyswkmbdhvn",
    "TGCAAYRSWMKVHDBN" + "tgcaayrswmkvhdbn",
)


def _lookup_table() -> np.ndarray:
    """Return the (4, 256) float32 table: channel weights for each byte."""
    table = np.zeros((4, 256), dtype=np.float32)
    for code, bases in _IUPAC.items():
        for byte in (ord(code), ord(code.lower())):
            for base in bases:
                table[ALPHABET.index(base), byte] = 1.0 / len(bases)
    return table


_LUT = _lookup_table()
_CHUNK = 8192  # rows per gather: keeps the index block in cache


def base_fraction(seq: str, length: int) -> float:
    """Fraction of the model-length window of ``seq`` (see :func:`fit_length`) that is A, C, G or T.

    Examples
    --------
    >>> base_fraction("ACGTNNNN", 8), base_fraction("acg", 6)
    (0.5, 0.5)
    """
    window = fit_length(seq, length)
    return sum(window.upper().count(b) for b in ALPHABET) / length


def fit_length(seq: str, length: int) -> str:
    """Centre-crop or pad ``seq`` to exactly ``length`` characters.

    A longer sequence keeps ``seq[start : start + length]`` with
    ``start = (len(seq) - length) // 2``. A shorter one gets :data:`PAD`
    on both sides, ``(length - len(seq)) // 2`` on the left and the rest
    (one more when the difference is odd) on the right; pads encode as
    all-zero columns.

    Parameters
    ----------
    seq : str
        The sequence.
    length : int
        The wanted length, at least 1.

    Returns
    -------
    str
        A string of exactly ``length`` characters.

    Examples
    --------
    >>> fit_length("AACCGGT", 3)
    'CCG'
    >>> fit_length("AC", 5)
    '-AC--'
    """
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    diff = len(seq) - length
    if diff >= 0:
        start = diff // 2
        return seq[start : start + length]
    left = -diff // 2
    return PAD * left + seq + PAD * (-diff - left)


def one_hot(sequences: str | Iterable[str], length: int | None = None) -> torch.Tensor:
    """One-hot encode DNA sequences.

    Parameters
    ----------
    sequences : str or iterable of str
        One sequence (giving ``N = 1``) or many. Case is ignored, ``U`` is
        ``T``, IUPAC codes are spread evenly (see the module docstring) and
        any other character is an all-zero column.
    length : int or None, default None
        The output length ``L``. ``None`` takes the longest sequence. Other
        lengths are brought to ``L`` by :func:`fit_length` (centre-crop or
        symmetric zero padding).

    Returns
    -------
    torch.Tensor, shape (N, 4, L), float32
        Channels in :data:`ALPHABET` order (A, C, G, T).

    Examples
    --------
    >>> one_hot("ACGTN")[0]
    tensor([[1.0000, 0.0000, 0.0000, 0.0000, 0.2500],
            [0.0000, 1.0000, 0.0000, 0.0000, 0.2500],
            [0.0000, 0.0000, 1.0000, 0.0000, 0.2500],
            [0.0000, 0.0000, 0.0000, 1.0000, 0.2500]])
    >>> one_hot(["AC", "GTTA"]).shape
    torch.Size([2, 4, 4])
    """
    seqs = [sequences] if isinstance(sequences, str) else list(sequences)
    lengths = set(map(len, seqs))
    if length is None:
        length = max(lengths, default=0)
        if length == 0:
            raise ValueError("one_hot needs at least one non-empty sequence or a length")
    if lengths != {length}:
        seqs = [fit_length(s, length) for s in seqs]
    joined = "".join(seqs).encode("ascii", errors="replace")  # '?' encodes as zeros
    codes = np.frombuffer(joined, dtype=np.uint8).reshape(len(seqs), length)
    out = np.empty((len(seqs), 4, length), dtype=np.float32)
    for i in range(0, len(seqs), _CHUNK):
        block = codes[i : i + _CHUNK]
        for c in range(4):
            np.take(_LUT[c], block, out=out[i : i + _CHUNK, c, :], mode="clip")
    return torch.from_numpy(out)


def reverse_complement(x: torch.Tensor) -> torch.Tensor:
    """Reverse-complement one-hot DNA.

    With channels A, C, G, T, the complement is the channel order reversed,
    so this flips both the channel and the position axis.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L) or (4, L)
        One-hot (or any per-base) DNA.

    Returns
    -------
    torch.Tensor
        Same shape and dtype, a new tensor.

    Examples
    --------
    >>> decode(reverse_complement(one_hot("AACG")))
    ['CGTT']
    """
    if x.dim() not in (2, 3) or x.shape[-2] != 4:
        raise ValueError(f"expected shape (N, 4, L) or (4, L), got {tuple(x.shape)}")
    return x.flip(dims=(-2, -1))


def reverse_complement_sequence(seq: str) -> str:
    """Reverse-complement a DNA string, IUPAC-aware, keeping case.

    ``U`` complements to ``A``; characters that are not IUPAC codes are
    kept as they are.

    Examples
    --------
    >>> reverse_complement_sequence("AAcgRN-")
    '-NYcgTT'
    """
    return seq.translate(_COMPLEMENT)[::-1]


def decode(x: torch.Tensor) -> list[str]:
    """Turn one-hot DNA back into strings.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L) or (4, L)
        One-hot DNA in :data:`ALPHABET` order.

    Returns
    -------
    list of str
        One string per sequence; a column that is not exactly one-hot
        (ambiguity codes, pads, zeros) decodes as ``N``.

    Examples
    --------
    >>> decode(one_hot(["ACGT", "aRn-"]))
    ['ACGT', 'ANNN']
    """
    arr = x.detach().cpu().numpy()
    if arr.ndim == 2:
        arr = arr[None]
    exact = (arr.max(axis=1) == 1) & (arr.sum(axis=1) == 1)
    index = np.where(exact, arr.argmax(axis=1), 4).astype(np.uint8)
    letters = np.frombuffer(b"ACGTN", dtype=np.uint8)[index]
    return [row.tobytes().decode("ascii") for row in letters]
