"""Intervals over a genome: BED / narrowPeak peaks -> fixed-length windows -> a Dataset.

The genome is read through its ``.fai`` index with pyfaidx (built beside the
FASTA on first use), one window at a time; it is never loaded whole. A
bgzip-compressed genome works (pyfaidx with Biopython's BGZF reader, ``.gzi``
index); a plain-gzip one cannot be indexed and is refused with a hint.

Rules
-----
* BED lines: ``chrom start end ...`` with 0-based, half-open coordinates,
  tab- (or, failing that, whitespace-) separated; ``track``, ``browser``,
  ``#`` and blank lines are skipped. A line of exactly 10 columns is read as
  narrowPeak: column 10 is the summit offset from ``start`` (``-1`` = none).
* Each interval is re-centred on its summit (when known) or on its midpoint
  ``(start + end) // 2`` and extended to the window length ``L``: the window
  is ``[centre - L // 2, centre - L // 2 + L)``, so the centre base sits at
  index ``L // 2``.
* A window that runs off a chromosome end is padded with ``N`` (encoded as
  0.25 in every channel) and counted in a note; its id keeps the requested
  coordinates, which may then be negative or past the end.
* Bad lines (too few columns, non-integer or negative coordinates,
  ``start > end``, unknown chromosome, ``start`` at or past the chromosome
  end, summit outside the interval) raise :class:`GenocnnError` naming the
  file and line, or with ``skip_bad`` are dropped and counted. An ``end`` past
  the chromosome end is accepted (the window is padded).
* Negatives ``"gc"``: random windows of length ``L`` on the chromosomes that
  hold peaks (drawn in proportion to their length), overlapping no peak
  (neither the interval nor its window), with at most 10% non-ACGT bases,
  accepted so that each of 20 GC-content bins gets as many negatives as it
  has positives (times ``negatives_per_positive``). Bins that random draws
  cannot fill borrow from the nearest bins. ``"shuffle"``: dinucleotide
  shuffles of the positive windows (on the positive's chromosome).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .data import Dataset, Split, dinucleotide_shuffle
from .encode import one_hot
from .errors import GenocnnError
from .fasta import open_text

__all__ = [
    "GenomeData",
    "Interval",
    "centre_window",
    "chrom_split",
    "fetch",
    "gc_content",
    "gc_matched_negatives",
    "load_bed",
    "open_genome",
    "peak_windows",
    "read_bed",
]

NEGATIVES = ("gc", "shuffle")
GC_BINS = 20
MAX_N_FRACTION = 0.1
_SKIP_PREFIXES = ("#", "track", "browser")


class Interval(NamedTuple):
    """One BED line: 0-based half-open ``[start, end)``; ``summit`` offset or None; source line."""

    chrom: str
    start: int
    end: int
    summit: int | None
    line: int


class BedRead(NamedTuple):
    """Valid intervals of a BED file, how many bad lines were skipped, and the first problem."""

    intervals: list[Interval]
    skipped: int
    first_problem: str | None


class Windows(NamedTuple):
    """Fixed-length windows fetched around intervals, in BED order.

    ``ids`` are ``chrom:start-end`` of each window; ``notes`` are lines to show
    the user (skipped intervals, padded windows).
    """

    ids: list[str]
    chroms: list[str]
    starts: list[int]
    sequences: list[str]
    notes: list[str]


class GenomeData(NamedTuple):
    """A training Dataset made from peaks, with each row's chromosome.

    Attributes
    ----------
    data : Dataset
        Positives (task ``bound`` = 1) first, then negatives.
    chroms : list of str, length N
        Chromosome of each row, for :func:`chrom_split`.
    genome_chroms : list of str
        Every sequence name in the genome.
    notes : list of str
        Lines to show the user.
    """

    data: Dataset
    chroms: list[str]
    genome_chroms: list[str]
    notes: list[str]


def open_genome(path: str | os.PathLike):
    """Open an indexed genome FASTA with pyfaidx, building its ``.fai`` if needed.

    Parameters
    ----------
    path : path
        FASTA, plain or bgzip-compressed (not plain gzip). Sequence lines of
        a record must all have the same width, as samtools faidx requires.

    Returns
    -------
    pyfaidx.Fasta
        Raw-string access (``fa[chrom][a:b]`` is a ``str``), case kept. Use it
        as a context manager to close the file.
    """
    import pyfaidx

    path = Path(path)
    if not path.is_file():
        raise GenocnnError(f"{path}: no such genome FASTA")
    try:
        return pyfaidx.Fasta(os.fspath(path), as_raw=True, sequence_always_upper=False, rebuild=True)
    except pyfaidx.UnsupportedCompressionFormat:
        raise GenocnnError(
            f"{path}: gzip-compressed genomes must be bgzip-compressed to be indexed; "
            f"recompress with `gunzip -c {path.name} | bgzip > {path.stem}.bgz` (htslib), "
            "or decompress it"
        ) from None
    except (pyfaidx.FastaIndexingError, ValueError, UnicodeDecodeError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenocnnError(f"{path}: cannot index the genome FASTA ({detail})") from None


def _lines(path: Path) -> Iterator[str]:
    try:
        with open_text(path) as handle:
            yield from handle
    except (UnicodeDecodeError, EOFError, OSError) as exc:
        raise GenocnnError(f"{path}: not a readable BED text file ({type(exc).__name__})") from None


def _parse(fields: list[str], sizes: dict[str, int], genome: str) -> tuple[str, int, int, int | None]:
    """``(chrom, start, end, summit)`` of one BED line, or ValueError saying what is wrong."""
    if len(fields) < 3:
        raise ValueError(f"{len(fields)} column(s), a BED line needs chrom, start and end")
    chrom, start_s, end_s = fields[:3]
    try:
        start, end = int(start_s), int(end_s)
    except ValueError:
        raise ValueError(f"start and end must be integers, got {start_s!r} and {end_s!r}") from None
    if start < 0 or end < 0:
        raise ValueError(f"negative coordinate ({start}-{end})")
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    if chrom not in sizes:
        raise ValueError(f"chromosome {chrom!r} is not in {genome}")
    if start >= sizes[chrom]:
        raise ValueError(f"start {start} is beyond the end of {chrom} ({sizes[chrom]} bp)")
    summit = None
    if len(fields) == 10:  # narrowPeak
        try:
            offset = int(fields[9])
        except ValueError:
            raise ValueError(f"narrowPeak summit (column 10) must be an integer, got {fields[9]!r}") from None
        if offset != -1:
            if not 0 <= offset <= end - start:
                raise ValueError(f"summit offset {offset} is outside the interval ({end - start} bp)")
            summit = offset
    return chrom, start, end, summit


def read_bed(
    path: str | os.PathLike, sizes: dict[str, int], skip_bad: bool = False, genome: str = "the genome"
) -> BedRead:
    """Read and check a BED / narrowPeak file (plain or gzipped) against chromosome sizes.

    Parameters
    ----------
    path : path
    sizes : dict of str to int
        Chromosome lengths of the genome.
    skip_bad : bool, default False
        Drop bad lines and count them instead of raising.
    genome : str
        How to name the genome in messages.

    Returns
    -------
    BedRead

    Raises
    ------
    GenocnnError
        ``"{path}: line {n}: ..."`` for the first bad line (unless ``skip_bad``),
        or when no interval is left.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.bed"
    >>> _ = p.write_text("track name=x\\nchr1\\t10\\t20\\nchr9\\t0\\t5\\n")
    >>> read_bed(p, {"chr1": 100}, skip_bad=True)
    BedRead(intervals=[Interval(chrom='chr1', start=10, end=20, summit=None, line=2)], skipped=1, first_problem="line 3: chromosome 'chr9' is not in the genome")
    """
    path = Path(path)
    if not path.is_file():
        raise GenocnnError(f"{path}: no such BED file")
    intervals: list[Interval] = []
    skipped, first = 0, None
    for number, raw in enumerate(_lines(path), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith(_SKIP_PREFIXES):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        try:
            chrom, start, end, summit = _parse([f.strip() for f in fields], sizes, genome)
        except ValueError as exc:
            if not skip_bad:
                raise GenocnnError(f"{path}: line {number}: {exc} (--skip-bad drops such lines)") from None
            skipped += 1
            first = first or f"line {number}: {exc}"
            continue
        intervals.append(Interval(chrom, start, end, summit, number))
    if not intervals:
        raise GenocnnError(f"{path}: no usable intervals" + (f" ({skipped} bad lines skipped)" if skipped else ""))
    return BedRead(intervals, skipped, first)


def centre_window(start: int, end: int, summit: int | None, length: int) -> tuple[int, int]:
    """The ``length``-bp window centred on the summit (``start + summit``) or the midpoint.

    The centre is ``start + summit`` when ``summit`` is not None, else
    ``(start + end) // 2``; the window is ``[centre - length // 2, ... + length)``.
    Coordinates may fall outside the chromosome (see :func:`fetch`).

    Examples
    --------
    >>> centre_window(100, 200, None, 10)
    (145, 155)
    >>> centre_window(100, 200, 10, 11)
    (105, 116)
    >>> centre_window(0, 4, None, 10)
    (-3, 7)
    """
    centre = start + summit if summit is not None else (start + end) // 2
    left = centre - length // 2
    return left, left + length


def fetch(fa, chrom: str, start: int, end: int) -> str:
    """``fa[chrom][start:end]``, padded with ``N`` where it runs off either chromosome end."""
    size = len(fa[chrom])
    a, b = max(start, 0), min(end, size)
    body = fa[chrom][a:b] if b > a else ""
    left = min(a, end) - start
    return "N" * left + body + "N" * (end - start - left - len(body))


def gc_content(seq: str) -> float:
    """Fraction of G/C among the A/C/G/T bases (either case); 0.0 if there are none.

    Examples
    --------
    >>> gc_content("GGccATNN")
    0.6666666666666666
    """
    s = seq.upper()
    gc = s.count("G") + s.count("C")
    acgt = gc + s.count("A") + s.count("T")
    return gc / acgt if acgt else 0.0


def _gc_bin(seq: str, bins: int) -> int:
    """GC bin ``[k / bins, (k + 1) / bins)`` in exact integer arithmetic (the last bin includes 1)."""
    s = seq.upper()
    gc = s.count("G") + s.count("C")
    acgt = gc + s.count("A") + s.count("T")
    return min(gc * bins // acgt, bins - 1) if acgt else 0


def _too_many_n(seq: str) -> bool:
    s = seq.upper()
    acgt = s.count("A") + s.count("C") + s.count("G") + s.count("T")
    return len(s) - acgt > MAX_N_FRACTION * len(s)


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
        From :func:`open_genome`.
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
    need = np.bincount([_gc_bin(s, bins) for s in positives], minlength=bins) * per_positive
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
            if _too_many_n(seq):
                continue
            k = _gc_bin(seq, bins)
            record = (f"{chrom}:{start}-{start + length}", chrom, seq)
            if len(taken[k]) < need[k]:
                taken[k].append(record)
            elif len(spare[k]) < total:
                spare[k].append(record)
    borrowed = 0
    for k in range(bins):
        for d in sorted(range(bins), key=lambda j: (abs(j - k), j)):
            while len(taken[k]) < need[k] and spare[d]:
                taken[k].append(spare[d].pop())
                borrowed += 1
    out = [r for t in taken for r in t]
    if len(out) < total:
        raise GenocnnError(
            f"found only {len(out)} of {total} negative windows of {length} bp free of peaks and "
            f"with <= {MAX_N_FRACTION:.0%} N; use --negatives shuffle or fewer peaks"
        )
    return out, borrowed


def _windows(fa, bed: Path, intervals: list[Interval], length: int) -> tuple[Windows, int]:
    ids, chroms, starts, seqs = [], [], [], []
    padded = 0
    for iv in intervals:
        a, b = centre_window(iv.start, iv.end, iv.summit, length)
        padded += a < 0 or b > len(fa[iv.chrom])
        ids.append(f"{iv.chrom}:{a}-{b}")
        chroms.append(iv.chrom)
        starts.append(a)
        seqs.append(fetch(fa, iv.chrom, a, b))
    return Windows(ids, chroms, starts, seqs, []), padded


def _notes(bed: Path, read: BedRead, padded: int) -> list[str]:
    notes = []
    if read.skipped:
        notes.append(f"{bed}: skipped {read.skipped} bad interval(s) (first: {read.first_problem})")
    if padded:
        notes.append(f"{bed}: {padded} window(s) run off a chromosome end and were padded with N")
    return notes


def peak_windows(
    bed: str | os.PathLike, genome: str | os.PathLike, length: int, skip_bad: bool = False
) -> Windows:
    """Fetch the ``length``-bp window around every interval of a BED file (for prediction).

    Returns
    -------
    Windows
        One window per usable interval, in file order, ids ``chrom:start-end``.
    """
    with open_genome(genome) as fa:
        sizes = {name: len(fa[name]) for name in fa.keys()}
        read = read_bed(bed, sizes, skip_bad, genome=str(genome))
        windows, padded = _windows(fa, Path(bed), read.intervals, length)
    return windows._replace(notes=_notes(Path(bed), read, padded))


def load_bed(
    bed: str | os.PathLike,
    genome: str | os.PathLike,
    length: int | None = None,
    max_length: int = 1000,
    negatives: str = "gc",
    negatives_per_positive: int = 1,
    seed: int = 0,
    skip_bad: bool = False,
) -> GenomeData:
    """Peaks of a BED file against a genome -> positives and negatives as one Dataset.

    Parameters
    ----------
    bed : path
        BED or narrowPeak (plain or gzipped) of bound regions.
    genome : path
        Genome FASTA (plain or bgzip), indexed on the fly.
    length : int, optional
        Window length L; default the median interval length (rounded down,
        at least 1) capped at ``max_length``.
    negatives : {"gc", "shuffle"}
        GC-matched random genomic windows, or dinucleotide-shuffled positives.
    negatives_per_positive : int
    seed : int
        Seed of the negatives.
    skip_bad : bool
        Drop bad BED lines (counted in ``notes``) instead of raising.

    Returns
    -------
    GenomeData
        Dataset x of shape (N, 4, L), y of shape (N, 1), task ``bound``.
    """
    if negatives not in NEGATIVES:
        raise GenocnnError(f"--negatives must be one of {', '.join(NEGATIVES)}, got {negatives!r}")
    bed = Path(bed)
    with open_genome(genome) as fa:
        sizes = {name: len(fa[name]) for name in fa.keys()}
        read = read_bed(bed, sizes, skip_bad, genome=str(genome))
        if length is None:
            median = int(np.median([iv.end - iv.start for iv in read.intervals]))
            length = min(max(median, 1), max_length)
        pos, padded = _windows(fa, bed, read.intervals, length)
        notes = _notes(bed, read, padded)
        if negatives == "gc":
            blocked = [(iv.chrom, iv.start, iv.end) for iv in read.intervals]
            blocked += [(c, s, s + length) for c, s in zip(pos.chroms, pos.starts)]
            neg, borrowed = gc_matched_negatives(
                fa, sizes, pos.sequences, pos.chroms, blocked, length, negatives_per_positive, seed
            )
            if borrowed:
                notes.append(f"{borrowed} GC-matched negative(s) came from a neighbouring GC bin")
        else:
            rng = np.random.default_rng(seed)
            neg = [
                (f"{name}_shuffled{k}", chrom, dinucleotide_shuffle(seq, rng))
                for k in range(negatives_per_positive)
                for name, chrom, seq in zip(pos.ids, pos.chroms, pos.sequences)
            ]
    ids = pos.ids + [r[0] for r in neg]
    x = one_hot(pos.sequences + [r[2] for r in neg], length=length)
    y = torch.zeros(len(ids), 1)
    y[: len(pos.ids)] = 1.0
    return GenomeData(Dataset(ids, x, y, ["bound"]), pos.chroms + [r[1] for r in neg], list(sizes), notes)


def _stratified(index: np.ndarray, y: torch.Tensor, fraction: float, rng: np.random.Generator) -> np.ndarray:
    labels = np.nan_to_num(y[index, 0].numpy(), nan=-1.0)
    picked = []
    for value in np.unique(labels):
        idx = rng.permutation(index[labels == value])
        picked.append(idx[: int(round(len(idx) * fraction))])
    return np.concatenate(picked) if picked else np.zeros(0, dtype=int)


def chrom_split(
    chroms: Sequence[str],
    y: torch.Tensor,
    valid_chroms: Sequence[str] = (),
    test_chroms: Sequence[str] = (),
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    known: Sequence[str] | None = None,
) -> Split:
    """Hold out whole chromosomes: rows on ``valid_chroms`` / ``test_chroms`` go to validation / test.

    A part given no chromosomes is drawn at random (stratified on the first
    task, with its fraction) from the rows on the other chromosomes.

    Parameters
    ----------
    chroms : sequence of str, length N
        Chromosome of each row.
    y : torch.Tensor, shape (N, T)
    valid_chroms, test_chroms : sequence of str
    valid_fraction, test_fraction : float
    seed : int
    known : sequence of str, optional
        The genome's chromosome names, to tell an unknown name from one
        without data.

    Returns
    -------
    Split

    Raises
    ------
    GenocnnError
        A name not in the genome, a chromosome in both lists, or a part that
        is empty or lacks bound or unbound rows.

    Examples
    --------
    >>> y = torch.tensor([[1.0], [0.0], [1.0], [0.0], [1.0], [0.0]])
    >>> s = chrom_split(["a", "a", "b", "b", "c", "c"], y, ["b"], ["c"])
    >>> s.train.tolist(), s.valid.tolist(), s.test.tolist()
    ([0, 1], [2, 3], [4, 5])
    """
    names = set(known if known is not None else chroms)
    for flag, given in (("--valid-chroms", valid_chroms), ("--test-chroms", test_chroms)):
        unknown = [c for c in given if c not in names]
        if unknown:
            shown = ", ".join(sorted(names)[:10]) + (", ..." if len(names) > 10 else "")
            raise GenocnnError(f"{flag}: unknown chromosome(s) {', '.join(unknown)} (the genome has {shown})")
    both = set(valid_chroms) & set(test_chroms)
    if both:
        raise GenocnnError(f"chromosome(s) {', '.join(sorted(both))} in both --valid-chroms and --test-chroms")
    rng = np.random.default_rng(seed)
    row_chroms = np.asarray(chroms, dtype=object)
    valid = np.flatnonzero(np.isin(row_chroms, list(valid_chroms)))
    test = np.flatnonzero(np.isin(row_chroms, list(test_chroms)))
    rest = np.setdiff1d(np.arange(len(row_chroms)), np.concatenate([valid, test]))
    if not len(test_chroms):
        test = _stratified(rest, y, test_fraction, rng)
        rest = np.setdiff1d(rest, test)
    if not len(valid_chroms):
        valid = _stratified(rest, y, valid_fraction / (1 - test_fraction), rng)
        rest = np.setdiff1d(rest, valid)
    split = Split(np.sort(rest), np.sort(valid), np.sort(test))
    labels = np.nan_to_num(y[:, 0].numpy(), nan=-1.0)
    for part, idx, flag in (("training", split.train, None), ("validation", split.valid, "--valid-chroms"),
                            ("test", split.test, "--test-chroms")):
        given = valid_chroms if part == "validation" else test_chroms if part == "test" else ()
        where = f" ({flag} {','.join(given)})" if given else ""
        kinds = set(labels[idx].tolist())
        if not {0.0, 1.0} <= kinds:
            what = "no sequences" if not len(idx) else "no bound sequences" if 1.0 not in kinds else "no unbound sequences"
            raise GenocnnError(f"the {part} split{where} has {what}; choose other chromosomes")
    return split
