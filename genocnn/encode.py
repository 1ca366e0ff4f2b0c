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

Stored form: one byte per base. :func:`encode_codes` turns sequences into
``uint8`` codes (the index in :data:`CODES`; 0 for the pad and any other
character), 4 times smaller than a base's 4 float32 weights and 16 times
smaller than they would be held on the host; :func:`codes_to_one_hot` expands
them, on their own device, to exactly the numbers of :func:`one_hot`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import torch

__all__ = [
    "ALPHABET",
    "CODES",
    "MIN_BASE_FRACTION",
    "PAD",
    "base_fraction",
    "codes_to_one_hot",
    "decode",
    "encode_codes",
    "fit_length",
    "is_base_code",
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

#: The 1-byte codes: a base's code is its index here (0: the pad and any other character).
CODES = "-ACGTRYSWKMBDHVN"


def _code_tables() -> tuple[bytes, np.ndarray]:
    """The 256-byte translation table (byte -> code) and the (16, 4) float32 weights of each code."""
    table = np.zeros(256, dtype=np.uint8)
    for code, char in enumerate(CODES[1:], start=1):
        table[ord(char)] = table[ord(char.lower())] = code
    table[ord("U")] = table[ord("u")] = CODES.index("T")
    weights = _LUT[:, [ord(c) for c in CODES]].T.copy()  # the pad's column of _LUT is zero
    return table.tobytes(), weights


_CODE_OF_BYTE, _CODE_WEIGHTS = _code_tables()
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


def encode_codes(sequences: str | Iterable[str], length: int) -> np.ndarray:
    """Encode DNA sequences as 1-byte codes, the stored form of :func:`one_hot`.

    Parameters
    ----------
    sequences : str or iterable of str
        One sequence or many; as for :func:`one_hot` (case ignored, ``U`` is
        ``T``, other characters are code 0).
    length : int
        The output length ``L``; other lengths are brought to it by
        :func:`fit_length` (centre-crop or symmetric padding).

    Returns
    -------
    numpy.ndarray, shape (N, L), uint8
        Each base's index in :data:`CODES`.

    Examples
    --------
    >>> encode_codes(["ACGTN", "rU"], 5)
    array([[ 1,  2,  3,  4, 15],
           [ 0,  5,  4,  0,  0]], dtype=uint8)
    """
    seqs = [sequences] if isinstance(sequences, str) else list(sequences)
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    if any(len(s) != length for s in seqs):
        seqs = [fit_length(s, length) for s in seqs]
    joined = "".join(seqs).encode("ascii", errors="replace").translate(_CODE_OF_BYTE)
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(seqs), length).copy()


def codes_to_one_hot(codes: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Expand 1-byte codes to one-hot DNA on the codes' own device.

    Parameters
    ----------
    codes : torch.Tensor or numpy.ndarray, shape (N, L), uint8
        Codes from :func:`encode_codes`.

    Returns
    -------
    torch.Tensor, shape (N, 4, L), float32
        Exactly ``one_hot`` of the sequences the codes stand for.

    Examples
    --------
    >>> bool(torch.equal(codes_to_one_hot(encode_codes(["ACgtNr-"], 7)), one_hot("ACgtNr-")))
    True
    """
    codes = torch.as_tensor(codes)
    n, length = codes.shape
    # one gather of table columns into (4, N * L), then channels second: 4-6x a gather of (N, L, 4) rows
    # permuted afterwards (measured on the CPU)
    x = _weights_on(codes.device).index_select(1, codes.reshape(-1).int()).view(4, n, length)
    return x.view(1, 4, length) if n == 1 else x.transpose(0, 1).contiguous()


def is_base_code(codes: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Where 1-byte codes (a tensor or an array) are A, C, G or T (``U`` included), same shape and kind, bool.

    Examples
    --------
    >>> is_base_code(torch.from_numpy(encode_codes("AuNr-", 5)[0])).tolist()
    [True, True, False, False, False]
    """
    return (codes >= 1) & (codes <= len(ALPHABET))


@functools.lru_cache(maxsize=8)
def _weights_on(device: torch.device) -> torch.Tensor:
    """The weights of the codes on ``device``, (4, 16): column ``c`` is code ``c``'s one-hot column; copied once."""
    return torch.from_numpy(np.ascontiguousarray(_CODE_WEIGHTS.T)).to(device)


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
