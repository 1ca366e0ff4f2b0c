"""Intervals over a genome: BED / narrowPeak peaks -> fixed-length windows.

The genome is read through its ``.fai`` index with pyfaidx (built beside the
FASTA on first use), one window at a time; it is never loaded whole. A
bgzip-compressed genome works (pyfaidx with Biopython's BGZF reader, ``.gzi``
index); a plain-gzip one cannot be indexed and is refused with a hint.
Negatives for these windows are drawn in :mod:`genocnn.negatives`, and
:func:`genocnn.data.load_bed` assembles both into a Dataset.

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
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from .errors import GenocnnError
from .fasta import open_text

__all__ = [
    "BedRead",
    "Interval",
    "Windows",
    "centre_window",
    "chrom_sizes",
    "fetch",
    "interval_windows",
    "open_genome",
    "peak_windows",
    "read_bed",
]

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
    fai = Path(f"{path}.fai")
    if not fai.exists() and not os.access(path.parent, os.W_OK):
        raise GenocnnError(f"{path}: not indexed, and its folder is read-only so {fai.name} cannot be built "
                           f"there; index it where you can write (`samtools faidx {path.name}`) or copy it")
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
                raise GenocnnError(f"{path}: line {number}: {exc} (`skip_bad` drops such lines)") from None
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


def chrom_sizes(fa) -> dict[str, int]:
    """Length of every sequence of an open genome, in file order."""
    return {name: len(fa[name]) for name in fa.keys()}


def interval_windows(fa, bed: str | os.PathLike, read: BedRead, length: int) -> Windows:
    """The ``length``-bp window around each interval of ``read``, with notes on skipped lines and padding.

    Parameters
    ----------
    fa : pyfaidx.Fasta
        From :func:`open_genome`.
    bed : path
        The BED file ``read`` came from (named in the notes).
    read : BedRead
        From :func:`read_bed`.
    length : int
        Window length.
    """
    bed = Path(bed)
    ids, chroms, starts, seqs = [], [], [], []
    padded = 0
    for iv in read.intervals:
        a, b = centre_window(iv.start, iv.end, iv.summit, length)
        padded += a < 0 or b > len(fa[iv.chrom])
        ids.append(f"{iv.chrom}:{a}-{b}")
        chroms.append(iv.chrom)
        starts.append(a)
        seqs.append(fetch(fa, iv.chrom, a, b))
    notes = []
    if read.skipped:
        notes.append(f"{bed}: skipped {read.skipped} bad interval(s) (first: {read.first_problem})")
    if padded:
        notes.append(f"{bed}: {padded} window(s) run off a chromosome end and were padded with N")
    return Windows(ids, chroms, starts, seqs, notes)


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
        read = read_bed(bed, chrom_sizes(fa), skip_bad, genome=str(genome))
        return interval_windows(fa, bed, read, length)
