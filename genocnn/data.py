"""Datasets: encoded, labelled sequences from FASTA, FASTA + labels TSV, or BED peaks + genome.

* :func:`load_pos_neg`: bound (``--pos``) against unbound (``--neg``)
  sequences; without ``--neg``, dinucleotide shuffles of the positives.
* :func:`load_labelled`: one FASTA and a labels TSV, one task per column.
* :func:`load_bed`: windows around BED peaks (:mod:`genocnn.genome`) against
  GC-matched genomic windows or shuffles (:mod:`genocnn.negatives`).

Splits of a Dataset are in :mod:`genocnn.splits`.
"""

from __future__ import annotations

import mmap
import os
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .encode import MIN_BASE_FRACTION, codes_to_one_hot, encode_codes, is_base_code
from .errors import GenocnnError
from .fasta import read_fasta
from .genome import chrom_sizes, interval_windows, open_genome, read_bed
from .labels import LabelTable, read_label_codes, read_labels
from .negatives import gc_matched_negatives, shuffled_negatives

__all__ = ["Dataset", "GenomeData", "LabelTable", "bound_rows", "choose_length", "drop_pages", "gather_rows", "is_mapped", "label_counts", "labels_to_float", "load_bed", "load_labelled",
           "load_pos_neg", "read_label_codes", "read_labels"]

NEGATIVES = ("gc", "shuffle")
#: Rows read, or scanned, at a time.
_ROWS = 65_536
#: Rows of a memory-mapped file read between two drops of its mapped pages.
_GATHER_ROWS = 1024


@dataclass
class Dataset:
    """Encoded, labelled sequences, held as 1-byte codes and int8 labels.

    ``codes`` and ``labels`` may be in memory or memory-mapped from a store
    (:mod:`genocnn.store`); nothing here expands all of them at once except
    the :attr:`x` / :attr:`y` properties, meant for small sets and tests.

    Attributes
    ----------
    ids : list of str, length N
    codes : numpy.ndarray, shape (N, L), uint8
        :func:`~genocnn.encode.encode_codes` of the sequences.
    labels : numpy.ndarray, shape (N, T), int8
        1 bound, 0 unbound, -1 unknown.
    tasks : list of str, length T
    """

    ids: list[str]
    codes: np.ndarray
    labels: np.ndarray
    tasks: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def length(self) -> int:
        """The sequence length L."""
        return int(self.codes.shape[1])

    @property
    def x(self) -> torch.Tensor:
        """All sequences one-hot, shape (N, 4, L), float32 (16 bytes a base: small sets only)."""
        return codes_to_one_hot(torch.from_numpy(np.array(self.codes)))

    @property
    def y(self) -> torch.Tensor:
        """All labels, shape (N, T), float32: 1 bound, 0 unbound, NaN unknown."""
        return labels_to_float(self.labels)

    def subset(self, index: np.ndarray) -> Dataset:
        """The rows in ``index`` as a new in-memory Dataset."""
        index = np.asarray(index, dtype=np.int64)
        return Dataset([self.ids[i] for i in index], np.asarray(self.codes[index]),
                       np.asarray(self.labels[index]), self.tasks)

    def class_balance(self) -> dict[str, tuple[int, int]]:
        """Per task: (positives, negatives); unknown labels are not counted."""
        pos, known = label_counts(self.labels)
        return {t: (int(p), int(k - p)) for t, p, k in zip(self.tasks, pos, known)}


def labels_to_float(labels: np.ndarray) -> torch.Tensor:
    """int8 labels (1, 0, -1 unknown) -> float32 tensor with NaN for unknown, same shape."""
    y = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    y[y < 0] = float("nan")
    return y


def _mmap_of(array: np.ndarray) -> mmap.mmap | None:
    """The memory map behind ``array`` (a store's file), or None for an array in memory."""
    base = array
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


def is_mapped(array: np.ndarray) -> bool:
    """Whether ``array`` is backed by a memory-mapped file (a store) rather than memory."""
    return _mmap_of(array) is not None


def drop_pages(array: np.ndarray) -> None:
    """Let the kernel drop the resident pages of a memory-mapped array (they stay in the page cache).

    After a scan over a whole mapped file (class balance, a label column)
    its pages would otherwise count in the process's resident memory.
    """
    base = _mmap_of(array)
    if base is not None and hasattr(mmap, "MADV_DONTNEED"):
        base.madvise(mmap.MADV_DONTNEED)


def gather_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]``, reading a memory-mapped file in ascending row order, its pages dropped as it goes.

    Without the drops, evenly spread rows (a validation subset) would map
    most of the file into this process's resident memory.
    """
    if not is_mapped(array):
        return np.asarray(array[rows])
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    for start in range(0, len(order), _GATHER_ROWS):
        part = order[start : start + _GATHER_ROWS]
        out[part] = array[rows[part]]
        drop_pages(array)  # a fault maps up to 64 kB of cached file around each row: keep them out of RSS
    return out


def label_counts(labels: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per task, bound (1) and known (0 or 1) labels among ``rows`` (None: all), each shape (T,), int64.

    The labels are read a block of rows at a time, so a store's are never all in memory.
    """
    pos = np.zeros(labels.shape[1], dtype=np.int64)
    known = np.zeros(labels.shape[1], dtype=np.int64)
    n = len(labels) if rows is None else len(rows)
    for start in range(0, n, _ROWS):
        block = (np.asarray(labels[start : start + _ROWS]) if rows is None
                 else gather_rows(labels, rows[start : start + _ROWS]))
        pos += (block == 1).sum(0)
        known += (block >= 0).sum(0)
    drop_pages(labels)
    return pos, known


def bound_rows(data: Dataset, max_rows: int | None = None) -> np.ndarray:
    """Rows bound (label 1) in any task, in order; evenly spaced ones when there are more than ``max_rows``.

    The labels are read a block at a time, so a store's labels are never all in memory.
    """
    parts = [start + np.flatnonzero((np.asarray(data.labels[start : start + _ROWS]) == 1).any(axis=1))
             for start in range(0, len(data), _ROWS)]
    drop_pages(data.labels)
    rows = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if max_rows is not None and len(rows) > max_rows:
        rows = rows[np.linspace(0, len(rows) - 1, max_rows).round().astype(np.int64)]
    return rows


def choose_length(lengths: list[int], length: int | None, max_length: int) -> int:
    """The model input length: ``length`` if given, else the longest up to ``max_length``.

    When it is chosen here and the lengths vary by more than a factor of 2
    (one long record among short ones would make every window that long), a
    ``UserWarning`` says which length was chosen and how many sequences are
    cropped or padded to it.

    Examples
    --------
    >>> choose_length([100, 120, 110], None, 1000)
    120
    >>> choose_length([100, 5000], 200, 1000)
    200
    """
    if length is not None:
        return length
    chosen = min(max(lengths), max_length)
    shortest, longest = min(lengths), max(lengths)
    if longest > 2 * shortest:
        median = int(np.median(lengths))
        long_ones = sum(n > 2 * median for n in lengths)
        cropped, padded = sum(n > chosen for n in lengths), sum(n < chosen for n in lengths)
        why = f"the longest, capped at data.max_length {max_length}" if longest > max_length else "the longest"
        warnings.warn(
            f"sequence lengths vary from {shortest} to {longest} bp ({long_ones} of {len(lengths)} over twice "
            f"the median {median} bp); model length {chosen} bp ({why}): {cropped} sequences centre-cropped, "
            f"{padded} zero-padded to it; choose another with --set data.length=N",
            UserWarning, stacklevel=2,
        )
    return chosen


def load_pos_neg(
    pos: str | os.PathLike,
    neg: str | os.PathLike | None = None,
    length: int | None = None,
    max_length: int = 1000,
    negatives_per_positive: int = 1,
    seed: int = 0,
) -> Dataset:
    """Read bound and unbound FASTA files into one encoded Dataset with task ``bound``.

    Parameters
    ----------
    pos, neg : path
        FASTA (plain or gzipped) of bound / unbound sequences. Without ``neg``,
        ``negatives_per_positive`` dinucleotide shuffles of each positive are used.
    length : int, optional
        Input length L; default the longest sequence, capped at ``max_length``.
    seed : int
        Seed of the shuffles.

    Returns
    -------
    Dataset
        Positives first, then negatives.
    """
    positives = list(read_fasta(pos))
    if neg is not None:
        negatives = list(read_fasta(neg))
    else:
        negatives = shuffled_negatives(positives, negatives_per_positive, seed)
    if not negatives:
        raise GenocnnError(f"{neg}: no negative sequences")
    if neg is not None:
        shared = {name for name, _ in positives} & {name for name, _ in negatives}
        if shared:
            first = next(name for name, _ in negatives if name in shared)
            raise GenocnnError(f"{neg}: record {first!r} is also in {pos} ({len(shared)} ids in both; a sequence "
                               "is bound or unbound, and ids must be unique)")
    records = positives + negatives
    L = choose_length([len(s) for _, s in records], length, max_length)
    codes = encode_codes([s for _, s in records], L)
    check_bases([name for name, _ in positives], codes[: len(positives)], pos)
    labels = np.zeros((len(records), 1), dtype=np.int8)
    labels[: len(positives)] = 1
    return Dataset([name for name, _ in records], codes, labels, ["bound"])


def check_bases(names: list[str], codes: np.ndarray, source) -> None:
    """Refuse sequences that are all mostly N (nothing to learn from); warn, with the count, when some are.

    ``codes`` (N, L) uint8. "Mostly N": less than :data:`~genocnn.encode.MIN_BASE_FRACTION`
    A/C/G/T at the model length (N runs, or padding of a short sequence).
    """
    fraction = is_base_code(codes).mean(axis=1) if codes.size else np.ones(len(names))
    thin = np.flatnonzero(fraction < MIN_BASE_FRACTION)
    if len(thin) and len(thin) == len(names):
        raise GenocnnError(f"{source}: every sequence is less than half A/C/G/T at length {codes.shape[1]} (N runs "
                           f"or padding), e.g. {names[thin[0]]!r}: there is nothing to learn from")
    if len(thin):
        warnings.warn(f"{source}: {len(thin)} of {len(names)} sequences are less than half A/C/G/T at length "
                      f"{codes.shape[1]} (N runs or padding), e.g. {names[thin[0]]!r}", stacklevel=3)


def load_labelled(
    fasta: str | os.PathLike,
    labels: str | os.PathLike,
    length: int | None = None,
    max_length: int = 1000,
) -> Dataset:
    """Read a FASTA and a labels TSV into a multi-task Dataset (NaN = unknown label).

    Raises
    ------
    GenocnnError
        Duplicate FASTA ids, label ids missing from the FASTA, or FASTA records
        without a label row (with the count and the first few ids).
    """
    table = read_label_codes(labels)
    records = list(read_fasta(fasta))  # refuses duplicate ids
    names = [name for name, _ in records]
    seen = set(names)
    missing = [i for i in table.ids if i not in seen]
    if missing:
        raise GenocnnError(
            f"{labels}: {len(missing)} id(s) not in {fasta}, e.g. {', '.join(map(repr, missing[:3]))}"
        )
    rows = pd.Index(table.ids).get_indexer(names)
    unlabelled = [n for n, r in zip(names, rows) if r < 0]
    if unlabelled:
        raise GenocnnError(
            f"{fasta}: {len(unlabelled)} record(s) without a row in {labels}, "
            f"e.g. {', '.join(map(repr, unlabelled[:3]))}"
        )
    L = choose_length([len(s) for _, s in records], length, max_length)
    codes = encode_codes([s for _, s in records], L)
    check_bases(names, codes, fasta)
    return Dataset(names, codes, table.labels[rows], table.tasks)


class GenomeData(NamedTuple):
    """A training Dataset made from peaks, with each row's chromosome.

    Attributes
    ----------
    data : Dataset
        Positives (task ``bound`` = 1) first, then negatives.
    chroms : list of str, length N
        Chromosome of each row, for :func:`genocnn.splits.chrom_split`.
    genome_chroms : list of str
        Every sequence name in the genome.
    notes : list of str
        Lines to show the user.
    """

    data: Dataset
    chroms: list[str]
    genome_chroms: list[str]
    notes: list[str]


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
        GC-matched random genomic windows, or dinucleotide-shuffled positives
        (on the positive's chromosome); see :mod:`genocnn.negatives`.
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
        raise GenocnnError(f"`negatives` must be one of {', '.join(NEGATIVES)}, got {negatives!r}")
    with open_genome(genome) as fa:
        sizes = chrom_sizes(fa)
        read = read_bed(bed, sizes, skip_bad, genome=str(genome))
        if length is None:
            median = int(np.median([iv.end - iv.start for iv in read.intervals]))
            length = min(max(median, 1), max_length)
        pos = interval_windows(fa, bed, read, length, skip_bad)
        notes = list(pos.notes)
        if negatives == "gc":
            blocked = [(iv.chrom, iv.start, iv.end) for iv in read.intervals]
            blocked += [(c, s, s + length) for c, s in zip(pos.chroms, pos.starts)]
            try:
                neg, borrowed = gc_matched_negatives(
                    fa, sizes, pos.sequences, pos.chroms, blocked, length, negatives_per_positive, seed
                )
            except GenocnnError as exc:
                raise GenocnnError(f"{bed}: {exc}") from None
            if borrowed:
                notes.append(f"{borrowed} GC-matched negative(s) came from a neighbouring GC bin")
        else:
            shuffles = shuffled_negatives(list(zip(pos.ids, pos.sequences)), negatives_per_positive, seed)
            neg = [(name, chrom, seq) for (name, seq), chrom in zip(shuffles, pos.chroms * negatives_per_positive)]
    ids = pos.ids + [r[0] for r in neg]
    codes = encode_codes(pos.sequences + [r[2] for r in neg], length)
    labels = np.zeros((len(ids), 1), dtype=np.int8)
    labels[: len(pos.ids)] = 1
    return GenomeData(Dataset(ids, codes, labels, ["bound"]), pos.chroms + [r[1] for r in neg], list(sizes), notes)
