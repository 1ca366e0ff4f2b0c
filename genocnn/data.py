"""Datasets: encoded, labelled sequences from FASTA, FASTA + labels TSV, or BED peaks + genome.

* :func:`load_pos_neg`: bound (``--pos``) against unbound (``--neg``)
  sequences; without ``--neg``, dinucleotide shuffles of the positives.
* :func:`load_labelled`: one FASTA and a labels TSV, one task per column.
* :func:`load_bed`: windows around BED peaks (:mod:`genocnn.genome`) against
  GC-matched genomic windows or shuffles (:mod:`genocnn.negatives`).

Splits of a Dataset are in :mod:`genocnn.splits`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .encode import one_hot
from .errors import GenocnnError
from .fasta import read_fasta
from .genome import chrom_sizes, interval_windows, open_genome, read_bed
from .negatives import gc_matched_negatives, shuffled_negatives

__all__ = ["Dataset", "GenomeData", "choose_length", "load_bed", "load_labelled", "load_pos_neg", "read_labels"]

NEGATIVES = ("gc", "shuffle")
#: Label spellings (lower-cased) and their values: 0/1, pandas' floats, R's logicals.
_LABEL_VALUES = {"0": "0", "1": "1", "0.0": "0", "1.0": "1", "false": "0", "true": "1"}


@dataclass
class Dataset:
    """Encoded, labelled sequences.

    Attributes
    ----------
    ids : list of str, length N
    x : torch.Tensor, shape (N, 4, L), float32
    y : torch.Tensor, shape (N, T), float32
        1 bound, 0 unbound.
    tasks : list of str, length T
    """

    ids: list[str]
    x: torch.Tensor
    y: torch.Tensor
    tasks: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> Dataset:
        """The rows in ``index`` as a new Dataset."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return Dataset([self.ids[i] for i in index], self.x[idx], self.y[idx], self.tasks)

    def class_balance(self) -> dict[str, tuple[int, int]]:
        """Per task: (positives, negatives); unknown labels are not counted."""
        pos = torch.nansum(self.y, 0).long().tolist()
        known = (~torch.isnan(self.y)).sum(0).tolist()
        return {t: (p, k - p) for t, p, k in zip(self.tasks, pos, known)}


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
    x = one_hot([s for _, s in records], length=L)
    y = torch.zeros(len(records), 1)
    y[: len(positives)] = 1.0
    return Dataset([name for name, _ in records], x, y, ["bound"])


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labels TSV: first column sequence id, every other column one task.

    Values are 0, 1, or unknown (empty / ``NA``), kept as NaN. ``0.0`` / ``1.0``
    (as pandas writes them) and ``FALSE`` / ``TRUE`` in any case (as R
    writes logicals) are read as 0 / 1. A UTF-8 byte-order mark is dropped.

    Raises
    ------
    GenocnnError
        Unreadable file, no task column, duplicate ids (naming both lines), or
        values other than 0/1/NA (naming the line, column and count).

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
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenocnnError(f"{path}: no such labels file")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenocnnError(f"{path}: not a readable tab-separated labels file: {detail}") from None
    if table.shape[1] < 2:
        raise GenocnnError(f"{path}: needs an id column and at least one task column (tab-separated)")
    ids = table.iloc[:, 0]
    dup = ids[ids.duplicated()]
    if len(dup):
        line = int(dup.index[0]) + 2
        first = int(ids[ids == dup.iloc[0]].index[0]) + 2
        raise GenocnnError(f"{path}: line {line}: duplicate id {dup.iloc[0]!r}, also on line {first} "
                           f"({len(dup)} duplicate ids; ids must be unique)")
    values = table.iloc[:, 1:].apply(lambda c: c.str.strip().str.lower())
    known = values.isin(list(_LABEL_VALUES))
    unknown = values.isin(["", "na", "nan"])
    bad = ~(known | unknown)
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise GenocnnError(
            f"{path}: line {row + 2}, column {values.columns[col]!r}: value {table.iat[row, col + 1]!r} "
            f"is not 0, 1 or NA (nor 0.0/1.0, FALSE/TRUE) ({int(bad.to_numpy().sum())} such values)"
        )
    numeric = values.where(known).replace(_LABEL_VALUES).astype(float)
    numeric.index = ids.to_numpy()
    return numeric


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
    table = read_labels(labels)
    records = list(read_fasta(fasta))  # refuses duplicate ids
    names = [name for name, _ in records]
    seen = set(names)
    missing = [i for i in table.index if i not in seen]
    if missing:
        raise GenocnnError(
            f"{labels}: {len(missing)} id(s) not in {fasta}, e.g. {', '.join(map(repr, missing[:3]))}"
        )
    unlabelled = [n for n in names if n not in table.index]
    if unlabelled:
        raise GenocnnError(
            f"{fasta}: {len(unlabelled)} record(s) without a row in {labels}, "
            f"e.g. {', '.join(map(repr, unlabelled[:3]))}"
        )
    L = choose_length([len(s) for _, s in records], length, max_length)
    x = one_hot([s for _, s in records], length=L)
    y = torch.tensor(table.loc[names].to_numpy(), dtype=torch.float32)
    return Dataset(names, x, y, [str(c) for c in table.columns])


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
    x = one_hot(pos.sequences + [r[2] for r in neg], length=length)
    y = torch.zeros(len(ids), 1)
    y[: len(pos.ids)] = 1.0
    return GenomeData(Dataset(ids, x, y, ["bound"]), pos.chroms + [r[1] for r in neg], list(sizes), notes)
