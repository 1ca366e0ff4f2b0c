"""Negatives: dinucleotide-shuffled positives, or random genomic windows matched on GC content.

* Shuffles (Altschul & Erickson 1985; DeepBind and HOMER practice) keep each
  positive's base and dinucleotide composition but lose its motifs. Used when
  FASTA training data has no ``--neg`` and for BED data with
  ``--negatives shuffle``; shuffle ``k`` of positive ``name`` is
  ``{name}_shuffled{k}``.
* GC-matched windows (BED data, ``--negatives gc``): random windows of length
  ``L`` on the chromosomes that hold peaks (drawn in proportion to their
  length), overlapping no peak (neither the interval nor its window), with at
  most 10% non-ACGT bases, accepted so that each of 20 GC-content bins gets as
  many negatives as it has positives (times ``negatives_per_positive``). Bins
  that random draws cannot fill borrow from the nearest bins.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .errors import GenocnnError

__all__ = [
    "BaseCounts",
    "base_counts",
    "dinucleotide_shuffle",
    "gc_content",
    "gc_matched_negatives",
    "shuffled_negatives",
]

GC_BINS = 20
MAX_N_FRACTION = 0.1


def dinucleotide_shuffle(seq: str, rng: np.random.Generator) -> str:
    """Shuffle a sequence keeping its exact dinucleotide counts (Altschul–Erickson).

    Parameters
    ----------
    seq : str
        Sequence; compared case-insensitively (the result is uppercase).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    str
        Same length, same first and last base, same count of every
        dinucleotide.

    Examples
    --------
    >>> s = dinucleotide_shuffle("ACGTTGCAACGT", np.random.default_rng(0))
    >>> len(s), s[0], s[-1]
    (12, 'A', 'T')
    """
    seq = seq.upper()
    if len(seq) < 3:
        return seq
    codes = np.frombuffer(seq.encode("latin-1"), dtype=np.uint8)
    sources, targets = codes[:-1], codes[1:]
    _, first_seen = np.unique(sources, return_index=True)
    edges = {int(v): targets[sources == v].tolist() for v in sources[np.sort(first_seen)]}  # in order of appearance
    last = int(codes[-1])
    # Random spanning arborescence towards the last base: each other base's
    # final exit edge must lead (eventually) to `last`.
    while True:
        final = {v: int(rng.integers(len(out))) for v, out in edges.items() if v != last}
        if all(_reaches(v, last, edges, final) for v in final):
            break
    exits: list = [None] * 256  # byte -> iterator over its exits in walk order
    for v, out in edges.items():
        tail = [out.pop(final[v])] if v in final else []
        rng.shuffle(out)
        exits[v] = iter(out + tail)
    result = bytearray(len(codes))
    result[0] = v = int(codes[0])
    for k in range(1, len(codes)):  # the walk is sequential; a plain byte loop is ~5x the dict-of-str version
        result[k] = v = next(exits[v])
    return result.decode("latin-1")


def _reaches(v: int, last: int, edges: dict[int, list[int]], final: dict[int, int]) -> bool:
    seen = set()
    while v != last:
        if v in seen:
            return False
        seen.add(v)
        v = edges[v][final[v]]
    return True


def shuffled_negatives(
    positives: Sequence[tuple[str, str]], per_positive: int = 1, seed: int = 0
) -> list[tuple[str, str]]:
    """``per_positive`` dinucleotide shuffles of every positive, as ``(id, sequence)``.

    All positives' shuffle 0 come first, then all shuffle 1, and so on; the
    ids are ``{name}_shuffled{k}``. The same seed gives the same shuffles.

    Examples
    --------
    >>> [name for name, _ in shuffled_negatives([("a", "ACGTTGCA"), ("b", "GGCCAATT")], 2)]
    ['a_shuffled0', 'b_shuffled0', 'a_shuffled1', 'b_shuffled1']
    """
    rng = np.random.default_rng(seed)
    return [
        (f"{name}_shuffled{k}", dinucleotide_shuffle(seq, rng))
        for k in range(per_positive)
        for name, seq in positives
    ]


class BaseCounts(NamedTuple):
    """Base counts of a sequence (either case): G+C, A+C+G+T, and its length."""

    gc: int
    acgt: int
    length: int

    @property
    def n(self) -> int:
        """Bases that are not A/C/G/T (``N`` and any other letter)."""
        return self.length - self.acgt

    @property
    def gc_fraction(self) -> float:
        """Fraction of G/C among the A/C/G/T bases; 0.0 if there are none."""
        return self.gc / self.acgt if self.acgt else 0.0

    @property
    def n_fraction(self) -> float:
        """Fraction of non-ACGT bases; 0.0 for an empty sequence."""
        return self.n / self.length if self.length else 0.0

    def gc_bin(self, bins: int) -> int:
        """GC bin ``[k / bins, (k + 1) / bins)`` in exact integer arithmetic (the last bin includes 1)."""
        return min(self.gc * bins // self.acgt, bins - 1) if self.acgt else 0


def base_counts(seq: str) -> BaseCounts:
    """Count A, C, G and T (either case) once.

    Examples
    --------
    >>> c = base_counts("GGccATNN")
    >>> c, c.n, c.n_fraction, c.gc_bin(20)
    (BaseCounts(gc=4, acgt=6, length=8), 2, 0.25, 13)
    """
    s = seq.upper()
    gc = s.count("G") + s.count("C")
    return BaseCounts(gc, gc + s.count("A") + s.count("T"), len(s))


def gc_content(seq: str) -> float:
    """Fraction of G/C among the A/C/G/T bases (either case); 0.0 if there are none.

    Examples
    --------
    >>> gc_content("GGccATNN")
    0.6666666666666666
    """
    return base_counts(seq).gc_fraction


class _Blocked:
    """Merged, sorted forbidden regions per chromosome; ``overlaps(chrom, a, b)`` in O(log n)."""

    def __init__(self, regions: Sequence[tuple[str, int, int]]) -> None:
        by_chrom: dict[str, list[tuple[int, int]]] = {}
        for chrom, a, b in regions:
            by_chrom.setdefault(chrom, []).append((a, b))
        self.starts: dict[str, list[int]] = {}
        self.ends: dict[str, list[int]] = {}
        for chrom, spans in by_chrom.items():
            merged: list[list[int]] = []
            for a, b in sorted(spans):
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            self.starts[chrom] = [a for a, _ in merged]
            self.ends[chrom] = [b for _, b in merged]

    def overlaps(self, chrom: str, a: int, b: int) -> bool:
        starts = self.starts.get(chrom)
        if not starts:
            return False
        i = bisect.bisect_left(starts, b) - 1
        return i >= 0 and self.ends[chrom][i] > a


def _borrow(taken: list[list], spare: list[list], need: np.ndarray) -> int:
    """Fill short bins from the nearest bins' spares (ties: the lower bin); how many were moved."""
    bins = len(taken)
    borrowed = 0
    for k in range(bins):
        for d in sorted(range(bins), key=lambda j: (abs(j - k), j)):
            while len(taken[k]) < need[k] and spare[d]:
                taken[k].append(spare[d].pop())
                borrowed += 1
    return borrowed


def gc_matched_negatives(
    fa,
    sizes: dict[str, int],
    positives: Sequence[str],
    chroms: Sequence[str],
    blocked: Sequence[tuple[str, int, int]],
    length: int,
    per_positive: int = 1,
    seed: int = 0,
    bins: int = GC_BINS,
) -> tuple[list[tuple[str, str, str]], int]:
    """Random genomic windows whose GC histogram matches the positives'.

    Parameters
    ----------
    fa : pyfaidx.Fasta
        From :func:`genocnn.genome.open_genome`.
    sizes : dict of str to int
        Chromosome lengths.
    positives : sequence of str
        Positive window sequences (their GC content sets the per-bin quotas).
    chroms : sequence of str
        Chromosomes to draw from (in proportion to their usable length).
    blocked : sequence of (chrom, start, end)
        Regions no negative may overlap (peaks and their windows).
    length : int
        Window length.
    per_positive : int, default 1
        Negatives per positive.
    seed : int
        Seed of the draws; the same seed gives the same windows.
    bins : int, default 20
        GC-content bins over [0, 1].

    Returns
    -------
    negatives : list of (id, chrom, sequence)
        ``len(positives) * per_positive`` windows, ids ``chrom:start-end``.
    borrowed : int
        How many were taken from a neighbouring GC bin because random draws
        did not fill a bin within the draw budget.
    """
    rng = np.random.default_rng(seed)
    need = np.bincount([base_counts(s).gc_bin(bins) for s in positives], minlength=bins) * per_positive
    total = int(need.sum())
    names = sorted(set(chroms))
    span = np.array([max(sizes[c] - length + 1, 0) for c in names], dtype=float)
    if span.sum() == 0:
        raise GenocnnError(f"no chromosome with peaks is at least {length} bp long; cannot draw negatives")
    weights = span / span.sum()
    wall = _Blocked(blocked)
    taken: list[list[tuple[str, str, str]]] = [[] for _ in range(bins)]
    spare: list[list[tuple[str, str, str]]] = [[] for _ in range(bins)]
    seen: set[tuple[str, int]] = set()
    drawn, budget = 0, 200 * total + 20_000
    while drawn < budget and any(len(t) < n for t, n in zip(taken, need)):
        batch = max(1000, 4 * (total - sum(map(len, taken))))
        picks = rng.choice(len(names), size=batch, p=weights)
        offsets = rng.random(batch)
        drawn += batch
        for c, u in zip(picks, offsets):
            chrom = names[c]
            start = int(u * span[c])
            if (chrom, start) in seen or wall.overlaps(chrom, start, start + length):
                continue
            seen.add((chrom, start))
            seq = fa[chrom][start : start + length]
            counts = base_counts(seq)
            if counts.n > MAX_N_FRACTION * counts.length:
                continue
            k = counts.gc_bin(bins)
            record = (f"{chrom}:{start}-{start + length}", chrom, seq)
            if len(taken[k]) < need[k]:
                taken[k].append(record)
            elif len(spare[k]) < total:
                spare[k].append(record)
    borrowed = _borrow(taken, spare, need)
    out = [r for t in taken for r in t]
    if len(out) < total:
        raise GenocnnError(
            f"found only {len(out)} of {total} negative windows of {length} bp free of peaks and "
            f"with <= {MAX_N_FRACTION:.0%} N; use `negatives` shuffle or fewer peaks"
        )
    return out, borrowed
