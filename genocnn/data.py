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

from .encode import codes_to_one_hot, encode_codes
from .errors import GenocnnError
from .fasta import read_fasta
from .genome import chrom_sizes, interval_windows, open_genome, read_bed
from .negatives import gc_matched_negatives, shuffled_negatives

__all__ = ["Dataset", "GenomeData", "LabelTable", "bound_rows", "choose_length", "drop_pages", "gather_rows", "is_mapped", "label_counts", "labels_to_float", "load_bed", "load_labelled",
           "load_pos_neg", "read_label_codes", "read_labels"]

NEGATIVES = ("gc", "shuffle")
#: Label spellings (lower-cased) and their values: 0/1, pandas' floats, R's logicals.
_LABEL_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1, "": -1, "na": -1, "nan": -1}
#: Exact spellings looked up before stripping and lower-casing (the common case, fast).
_EXACT = {**_LABEL_VALUES, "FALSE": 0, "TRUE": 1, "False": 0, "True": 1, "NA": -1, "NaN": -1}
#: Rows read, or scanned, at a time.
_ROWS = 65_536
#: Rows of a memory-mapped file read between two drops of its mapped pages.
_GATHER_ROWS = 1024
#: Label cells parsed at a time (bounds the strings pandas holds).
_CELLS = 2_000_000


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
    records = positives + negatives
    L = choose_length([len(s) for _, s in records], length, max_length)
    codes = encode_codes([s for _, s in records], L)
    labels = np.zeros((len(records), 1), dtype=np.int8)
    labels[: len(positives)] = 1
    return Dataset([name for name, _ in records], codes, labels, ["bound"])


class LabelTable(NamedTuple):
    """A labels TSV as compact arrays.

    Attributes
    ----------
    ids : list of str, length N
        The first column, in file order.
    tasks : list of str, length T
    labels : numpy.ndarray, shape (N, T), int8
        1, 0, or -1 for unknown.
    """

    ids: list[str]
    tasks: list[str]
    labels: np.ndarray


def _label_block(chunk: pd.DataFrame, first_line: int) -> tuple[np.ndarray, tuple | None, int]:
    """int8 codes of one chunk's task columns, the first bad cell (line, column, value) or None, and the bad count."""
    cells = chunk.iloc[:, 1:]
    flat = pd.Series(cells.to_numpy().ravel())
    coded = flat.map(_EXACT)
    miss = coded.isna()
    if miss.any():
        coded[miss] = flat[miss].str.strip().str.lower().map(_LABEL_VALUES)
    bad = coded.isna().to_numpy()
    block = coded.fillna(-1).to_numpy(dtype=np.int8).reshape(cells.shape)
    if not bad.any():
        return block, None, 0
    row, col = divmod(int(np.flatnonzero(bad)[0]), cells.shape[1])
    return block, (first_line + row, cells.columns[col], cells.iat[row, col]), int(bad.sum())


def read_label_codes(path: str | os.PathLike) -> LabelTable:
    """Read a labels TSV into int8 codes, a bounded number of cells at a time.

    Values are 0, 1, or unknown (empty / ``NA``, code -1). ``0.0`` / ``1.0``
    (as pandas writes them) and ``FALSE`` / ``TRUE`` in any case (as R
    writes logicals) are read as 0 / 1. A UTF-8 byte-order mark is dropped.
    Memory: the (N, T) int8 codes, the ids, and one chunk of strings.

    Raises
    ------
    GenocnnError
        Unreadable file, no task column, duplicate ids (naming both lines), or
        values other than 0/1/NA (naming the line, column and count).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenocnnError(f"{path}: no such labels file")
    ids: list[str] = []
    blocks: list[np.ndarray] = []
    first_bad, n_bad, tasks, columns = None, 0, None, []
    try:
        with pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8-sig",
                         chunksize=1024) as reader:  # then _CELLS cells a chunk
            for chunk in reader:
                columns = columns or list(chunk.columns)
                if chunk.shape[1] < 2:
                    break
                if tasks is None:
                    tasks = [str(c) for c in chunk.columns[1:]]
                    reader.chunksize = max(1, _CELLS // len(tasks))
                block, bad, count = _label_block(chunk, len(ids) + 2)
                first_bad, n_bad = first_bad or bad, n_bad + count
                ids.extend(chunk.iloc[:, 0].tolist())
                blocks.append(block)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenocnnError(f"{path}: not a readable tab-separated labels file: {detail}") from None
    if len(columns) < 2:
        raise GenocnnError(f"{path}: needs an id column and at least one task column (tab-separated)")
    index = pd.Index(ids)
    dup = index.duplicated()
    if dup.any():
        line = int(np.flatnonzero(dup)[0])
        first = ids.index(ids[line])
        raise GenocnnError(f"{path}: line {line + 2}: duplicate id {ids[line]!r}, also on line {first + 2} "
                           f"({int(dup.sum())} duplicate ids; ids must be unique)")
    if first_bad is not None:
        line, column, value = first_bad
        raise GenocnnError(f"{path}: line {line}, column {column!r}: value {value!r} "
                           f"is not 0, 1 or NA (nor 0.0/1.0, FALSE/TRUE) ({n_bad} such values)")
    tasks = tasks or [str(c) for c in columns[1:]]
    labels = np.concatenate(blocks) if blocks else np.zeros((0, len(tasks)), dtype=np.int8)
    return LabelTable(ids, tasks, labels)


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labels TSV as a table of floats indexed by id (NaN unknown); see :func:`read_label_codes`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.tsv"
    >>> _ = p.write_text("id\\tA\\tB\\ns1\\t1.0\\tTRUE\\ns2\\t0\\tNA\\n")
    >>> read_labels(p)
          A    B
    s1  1.0  1.0
    s2  0.0  NaN
    """
    table = read_label_codes(path)
    return pd.DataFrame(labels_to_float(table.labels).numpy().astype(float), index=table.ids, columns=table.tasks)


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
            neg, borrowed = gc_matched_negatives(
                fa, sizes, pos.sequences, pos.chroms, blocked, length, negatives_per_positive, seed
            )
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
