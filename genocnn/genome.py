"""Intervals over a genome: BED / narrowPeak peaks -> fixed-length windows.

The genome is read through its ``.fai`` index with pyfaidx (built beside the
FASTA on first use), one window at a time. A bgzip-compressed genome works
(pyfaidx with Biopython's BGZF reader, ``.gzi`` index); a plain-gzip one
cannot be indexed and is refused with a hint. A FASTA that samtools faidx
cannot index because of its layout (a byte-order mark, blank lines between
records, sequence lines of unequal width, CR-only line endings) is read whole
into memory with :func:`~genocnn.fasta.read_fasta` instead, with one warning
saying why (:class:`MemoryGenome`).
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
  ``start >= end`` (an empty interval), unknown chromosome, ``start`` at or
  past the chromosome end, summit outside the interval) raise
  :class:`GenocnnError` naming the file and line, or with ``skip_bad`` are
  dropped and counted. An ``end`` past the chromosome end is accepted (the
  window is padded where it runs off) and counted in a note.
* Two intervals that give the same window (a repeated line, or two
  intervals with the same centre) would give two rows with the same id: the
  second is refused naming both lines, or with ``skip_bad`` dropped and
  counted.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, KeysView
from pathlib import Path
from typing import NamedTuple

from .errors import GenocnnError
from .fasta import open_text, read_fasta

__all__ = [
    "BedRead",
    "Interval",
    "MemoryGenome",
    "UnindexedGenome",
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
#: Bytes read from the start of a genome to spot a byte-order mark or CR-only line endings.
_HEAD_BYTES = 1 << 16
_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"


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


class MemoryGenome:
    """A genome FASTA read whole into memory, with the part of ``pyfaidx.Fasta`` genocnn uses.

    ``genome[name]`` is the sequence, a ``str`` (so ``genome[name][a:b]`` is a
    ``str`` and ``len(genome[name])`` its length, case kept), ``genome.keys()``
    the names in file order; a context manager whose exit frees the sequences.

    Examples
    --------
    >>> with MemoryGenome({"chr1": "ACGTac", "chr2": "NN"}) as fa:
    ...     list(fa.keys()), fa["chr1"][2:5], len(fa["chr2"])
    (['chr1', 'chr2'], 'GTa', 2)
    """

    def __init__(self, records: dict[str, str]) -> None:
        self.records = records

    def keys(self) -> KeysView[str]:
        """Sequence names, in file order."""
        return self.records.keys()

    def __getitem__(self, name: str) -> str:
        return self.records[name]

    def __contains__(self, name: object) -> bool:
        return name in self.records

    def close(self) -> None:
        """Free the sequences."""
        self.records = {}

    def __enter__(self) -> MemoryGenome:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class UnindexedGenome(GenocnnError):
    """A readable genome FASTA that :func:`open_genome` cannot index: plain gzip, or no ``.fai`` in a read-only folder.

    Commands that read a genome from start to end (``scan``) read it whole
    instead; the others report it.
    """


def open_genome(path: str | os.PathLike):
    """Open a genome FASTA through its ``.fai`` with pyfaidx (building it if needed), or in memory.

    Parameters
    ----------
    path : path
        FASTA, plain or bgzip-compressed (not plain gzip).

    Raises
    ------
    GenocnnError
        Missing file, plain gzip, an index that cannot be written (a read-only
        folder without ``.fai``: the message says to run ``samtools faidx`` or
        to use a writable copy; these two as :class:`UnindexedGenome`), or, for a genome read into memory, what
        :func:`~genocnn.fasta.read_fasta` refuses (naming the record).

    Warns
    -----
    UserWarning
        Once, when the FASTA cannot be indexed as samtools faidx would (a
        byte-order mark, blank lines between records, sequence lines of
        unequal width, CR-only line endings, an empty record) and is read
        whole into memory instead: the message names the file and the reason.

    Returns
    -------
    pyfaidx.Fasta or MemoryGenome
        Raw-string access (``fa[chrom][a:b]`` is a ``str``), case kept. Use it
        as a context manager to close the file.
    """
    import pyfaidx

    path = Path(path)
    if path.is_dir():
        raise GenocnnError(f"{path}: is a directory, not a genome FASTA")
    if not path.is_file():
        raise GenocnnError(f"{path}: no such genome FASTA")
    problem = _layout_problem(_head(path))
    if problem is None:
        try:
            fa = pyfaidx.Fasta(os.fspath(path), as_raw=True, sequence_always_upper=False, rebuild=True)
        except pyfaidx.UnsupportedCompressionFormat:
            raise UnindexedGenome(
                f"{path}: gzip-compressed genomes must be bgzip-compressed to be indexed; "
                f"recompress with `gunzip -c {path.name} | bgzip > {path.stem}.bgz` (htslib), "
                "or decompress it"
            ) from None
        except OSError as exc:
            if "writable" in str(exc):  # pyfaidx: "... may not be writable. Please use ..."
                raise UnindexedGenome(
                    f"{path}: cannot write its index ({path.name}.fai) in a read-only folder: index it once with "
                    f"`samtools faidx {path}` as a user who may write there, or use a copy in a writable folder"
                ) from None
            raise GenocnnError(f"{path}: cannot read the genome FASTA ({exc.strerror or exc})") from None
        except (pyfaidx.FastaIndexingError, RuntimeError, ValueError, IndexError) as exc:
            problem = _index_problem(exc)  # RuntimeError: pyfaidx on blank lines between records
        else:
            empty = next((name for name in fa.keys() if not len(fa[name])), None)
            if empty is None:
                return fa
            fa.close()
            problem = f"record {empty!r} reads as 0 bp through its index (CR-only line endings?)"
    genome = MemoryGenome(dict(read_fasta(path)))  # raises, naming the record, on what is not DNA FASTA
    warnings.warn(f"{path}: not indexable by samtools faidx ({problem}); read whole into memory instead",
                  UserWarning, stacklevel=2)
    return genome


def _head(path: Path) -> bytes:
    """The first bytes of an uncompressed file; ``b""`` for a gzip or bgzip one (pyfaidx judges those)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return b""  # pyfaidx says why
    return b"" if head.startswith(_GZIP_MAGIC) else head


def _layout_problem(head: bytes) -> str | None:
    """What in the first bytes of a FASTA stops samtools faidx from indexing it, or None.

    Examples
    --------
    >>> _layout_problem(b">a\\nACGT\\n") is None
    True
    >>> _layout_problem(b"\\xef\\xbb\\xbf>a\\nACGT\\n")
    'a UTF-8 byte-order mark at the start'
    >>> _layout_problem(b">a\\rACGT\\rAC\\r").split(";")[0]
    'CR-only (old Mac) line endings'
    """
    if head.startswith(_BOM):
        return "a UTF-8 byte-order mark at the start"
    if re.search(rb"\r(?!\n)", head[:-1]):
        return "CR-only (old Mac) line endings; convert them with `tr '\\r' '\\n' < in.fa > out.fa`"
    return None


def _index_problem(exc: Exception) -> str:
    """pyfaidx's reason for not indexing a FASTA, in a few words.

    Examples
    --------
    >>> _index_problem(ValueError("... not consistent! Inconsistent line found in >a at line 3."))
    "blank lines or sequence lines of unequal width in record 'a', line 3"
    >>> _index_problem(RuntimeError("Unhandled exception during fasta indexing at entry aPlease report this"))
    'blank lines between records'
    """
    text = str(exc).strip()
    found = re.search(r"Inconsistent line found in >(\S+) at line ([\d,]+)", text)
    if found:
        return f"blank lines or sequence lines of unequal width in record {found[1]!r}, line {found[2]}"
    if isinstance(exc, RuntimeError):
        return "blank lines between records"
    if text.startswith("Unexpected text before the first sequence"):
        return "text before the first '>' header (a byte-order mark?)"
    return text.splitlines()[0] if text else type(exc).__name__


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
    if start == end:
        raise ValueError(f"empty interval (start = end = {start}; BED intervals are half-open)")
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


def _past_end(intervals: list[Interval], sizes: dict[str, int]) -> tuple[int, str] | None:
    """How many intervals end past their chromosome's end, and the first one, or None.

    Examples
    --------
    >>> _past_end([Interval("chr1", 90, 120, None, 4), Interval("chr1", 0, 10, None, 5)], {"chr1": 100})
    (1, 'line 4: chr1 90-120, chr1 is 100 bp')
    """
    over = [iv for iv in intervals if iv.end > sizes[iv.chrom]]
    if not over:
        return None
    first = over[0]
    return len(over), f"line {first.line}: {first.chrom} {first.start}-{first.end}, {first.chrom} is {sizes[first.chrom]} bp"


def interval_windows(fa, bed: str | os.PathLike, read: BedRead, length: int, skip_bad: bool = False) -> Windows:
    """The ``length``-bp window around each interval of ``read``, with notes on skipped lines and padding.

    Parameters
    ----------
    fa : pyfaidx.Fasta or MemoryGenome
        From :func:`open_genome`.
    bed : path
        The BED file ``read`` came from (named in the notes).
    read : BedRead
        From :func:`read_bed`.
    length : int
        Window length.
    skip_bad : bool, default False
        Drop an interval whose window repeats an earlier one (counted in the
        notes) instead of raising.
    """
    bed = Path(bed)
    ids, chroms, starts, seqs = [], [], [], []
    padded = repeated = 0
    lines: dict[str, int] = {}
    for iv in read.intervals:
        size = len(fa[iv.chrom])  # an interval past the chromosome's end is centred on its part inside
        summit = iv.summit if iv.summit is None or iv.start + iv.summit < size else size - 1 - iv.start
        a, b = centre_window(iv.start, min(iv.end, size), summit, length)
        name = f"{iv.chrom}:{max(a, 0)}-{min(b, size)}"  # the window's bases in the chromosome
        first = lines.setdefault(name, iv.line)
        if first != iv.line:
            if not skip_bad:
                raise GenocnnError(f"{bed}: line {iv.line}: duplicate window {name} of line {first} "
                                   "(same interval or same centre; `skip_bad` drops such lines)")
            repeated += 1
            continue
        padded += a < 0 or b > size
        ids.append(name)
        chroms.append(iv.chrom)
        starts.append(a)
        seqs.append(fetch(fa, iv.chrom, a, b))
    notes = []
    if read.skipped:
        notes.append(f"{bed}: skipped {read.skipped} bad interval(s) (first: {read.first_problem})")
    beyond = _past_end(read.intervals, {c: len(fa[c]) for c in {iv.chrom for iv in read.intervals}})
    if beyond:
        notes.append(f"{bed}: {beyond[0]} interval(s) end past their chromosome's end (first: {beyond[1]}); "
                     "kept, their windows centred on the part inside the chromosome")
    if padded:
        notes.append(f"{bed}: {padded} window(s) run off a chromosome end and were padded with N")
    if repeated:
        notes.append(f"{bed}: skipped {repeated} interval(s) whose window repeats an earlier line's")
    return Windows(ids, chroms, starts, seqs, notes)


def peak_windows(
    bed: str | os.PathLike, genome: str | os.PathLike, length: int, skip_bad: bool = False
) -> Windows:
    """Fetch the ``length``-bp window around every interval of a BED file (for prediction).

    Returns
    -------
    Windows
        One window per usable interval, in file order, ids ``chrom:start-end``
        (the window's bases within the chromosome: shorter than ``length``
        where the window runs off an end and is padded with N).
    """
    with open_genome(genome) as fa:
        read = read_bed(bed, chrom_sizes(fa), skip_bad, genome=str(genome))
        return interval_windows(fa, bed, read, length, skip_bad)
