"""Motifs as matrices: the :class:`Motif` type, information content, trimming, strands.

The ground floor of everything motif-shaped: motif files, naming, logos and
filter extraction all build on this module, which needs neither torch
training code nor data loading. Rows are bases in :data:`~genocnn.encode.ALPHABET`
order (A, C, G, T).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .encode import ALPHABET

__all__ = [
    "ALPHABET",
    "UNIFORM_BACKGROUND",
    "Motif",
    "column_information",
    "core_span",
    "motif_from_counts",
    "reverse_complement_motif",
    "trim",
]

UNIFORM_BACKGROUND = (0.25, 0.25, 0.25, 0.25)


@dataclass
class Motif:
    """A DNA motif held as a position frequency matrix.

    Parameters
    ----------
    name : str
        Identifier written to motif files (no whitespace), e.g. ``"filter_3"``.
    pfm : np.ndarray, shape (4, w), float64
        Base counts per position in A, C, G, T order. Fractional counts are
        allowed (ambiguous bases contribute fractions).
    sites : int
        Number of sequence windows the counts come from (``nsites``).
    background : tuple of 4 float
        Background base frequencies used for the PWM and information content.
    pseudocount : float
        Total pseudocount added to each column, split by the background
        frequencies, before normalising to probabilities.
    description : str
        Free text (e.g. the best JASPAR match), written where formats allow.
    """

    name: str
    pfm: np.ndarray
    sites: int = 0
    background: tuple[float, float, float, float] = UNIFORM_BACKGROUND
    pseudocount: float = 1.0
    description: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pfm = np.asarray(self.pfm, dtype=np.float64)
        if self.pfm.ndim != 2 or self.pfm.shape[0] != 4:
            raise ValueError(f"pfm must have shape (4, w), got {self.pfm.shape}")

    @property
    def width(self) -> int:
        """Number of positions ``w``."""
        return int(self.pfm.shape[1])

    @property
    def ppm(self) -> np.ndarray:
        """Position probability matrix, shape (4, w); columns sum to 1."""
        counts = self.pfm + self.pseudocount * np.asarray(self.background)[:, None]
        return counts / counts.sum(axis=0, keepdims=True)

    @property
    def pwm(self) -> np.ndarray:
        """Log2-odds position weight matrix against the background, shape (4, w)."""
        return np.log2(self.ppm / np.asarray(self.background)[:, None])

    @property
    def information_content(self) -> float:
        """Total information content in bits (relative entropy to the background)."""
        return float(column_information(self.ppm, self.background).sum())

    @property
    def consensus(self) -> str:
        """Most likely base per position; lowercase where it has under 0.5 probability."""
        ppm = self.ppm
        best = ppm.argmax(axis=0)
        return "".join(
            ALPHABET[b] if ppm[b, j] >= 0.5 else ALPHABET[b].lower() for j, b in enumerate(best)
        )


def column_information(ppm: np.ndarray, background=UNIFORM_BACKGROUND) -> np.ndarray:
    """Information content per column in bits.

    Parameters
    ----------
    ppm : np.ndarray, shape (4, w)
        Probabilities; columns sum to 1.
    background : sequence of 4 float
        Background frequencies.

    Returns
    -------
    np.ndarray, shape (w,)
        Relative entropy of each column to the background.
    """
    bg = np.asarray(background, dtype=np.float64)[:, None]
    p = np.clip(ppm, 1e-12, 1.0)
    return (ppm * np.log2(p / bg)).sum(axis=0)


def trim(motif: Motif, min_ic: float = 0.3, core: bool = False) -> Motif:
    """Drop flanking columns whose information content is below ``min_ic`` bits.

    Filters are wider than most motifs; their uninformative flanks otherwise
    make Tomtom report spurious matches. At least one column is kept.
    ``extra["trim_offset"]`` records how many columns were cut on the left.

    ``core``: keep instead the contiguous columns whose summed ``ic - min_ic``
    is largest (:func:`core_span`), so that a weak tail ending in one column
    just over ``min_ic`` goes too, while weak columns inside the motif stay.

    Examples
    --------
    >>> m = Motif("m", np.array([[5, 20, 0], [5, 0, 0], [5, 0, 20], [5, 0, 0]]), sites=20)
    >>> trim(m).consensus
    'AG'
    """
    ic = column_information(motif.ppm, motif.background)
    if core:
        start, stop = core_span(ic, min_ic)
    else:
        keep = np.flatnonzero(ic >= min_ic)
        start, stop = (int(keep[0]), int(keep[-1]) + 1) if len(keep) else (int(ic.argmax()), int(ic.argmax()) + 1)
    return Motif(
        motif.name,
        motif.pfm[:, start:stop],
        motif.sites,
        motif.background,
        motif.pseudocount,
        motif.description,
        {**motif.extra, "trim_offset": start},
    )


def core_span(ic: np.ndarray, min_ic: float = 0.3) -> tuple[int, int]:
    """The columns ``start:stop`` of greatest summed ``ic - min_ic`` (a maximum-sum run; at least one column).

    Parameters
    ----------
    ic : np.ndarray, shape (W,)
        Information content per column, in bits.

    Examples
    --------
    >>> core_span(np.array([0.0, 1.8, 0.1, 1.9, 0.1, 0.1, 0.35]))
    (1, 4)
    """
    gain = np.asarray(ic, dtype=np.float64) - min_ic
    best, span, run, start = -np.inf, (0, 1), 0.0, 0
    for i, g in enumerate(gain):  # Kadane's scan
        if run <= 0:
            run, start = 0.0, i
        run += g
        if run > best:
            best, span = run, (start, i + 1)
    return span


def reverse_complement_motif(motif: Motif) -> Motif:
    """The motif of the opposite strand: columns reversed, A<->T and C<->G swapped.

    Examples
    --------
    >>> reverse_complement_motif(Motif("m", np.array([[9, 0], [0, 0], [0, 9], [0, 0]]))).consensus
    'CT'
    """
    return Motif(motif.name, motif.pfm[::-1, ::-1], motif.sites, tuple(motif.background[::-1]),
                 motif.pseudocount, motif.description, dict(motif.extra))


def motif_from_counts(counts, name: str, description: str = "") -> Motif:
    """A :class:`Motif` from per-base counts keyed by letter (Biopython's ``motif.counts``).

    ``sites`` is the largest column total, rounded.
    """
    pfm = np.array([counts[b] for b in ALPHABET], dtype=np.float64)
    sites = int(round(pfm.sum(axis=0).max())) if pfm.size else 0
    return Motif(name=name, pfm=pfm, sites=sites, description=description)
