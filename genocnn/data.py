"""Datasets: bound (--pos) against unbound (--neg) sequences, shuffled negatives, splits.

If no negative FASTA is given, negatives are dinucleotide-shuffled copies of
the positives (Altschul & Erickson 1985; DeepBind and HOMER practice): they keep
each positive's base and dinucleotide composition but lose its motifs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .encode import one_hot
from .errors import GenocnnError
from .fasta import read_fasta


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
    edges: dict[str, list[str]] = {}
    for a, b in zip(seq, seq[1:]):
        edges.setdefault(a, []).append(b)
    last = seq[-1]
    # Random spanning arborescence towards the last base: each other base's
    # final exit edge must lead (eventually) to `last`.
    while True:
        final = {v: int(rng.integers(len(out))) for v, out in edges.items() if v != last}
        if all(_reaches(v, last, edges, final) for v in final):
            break
    order: dict[str, list[str]] = {}
    for v, out in edges.items():
        out = list(out)
        tail = [out.pop(final[v])] if v in final else []
        rng.shuffle(out)
        order[v] = out + tail
    position = dict.fromkeys(order, 0)
    result = [seq[0]]
    v = seq[0]
    for _ in range(len(seq) - 1):
        nxt = order[v][position[v]]
        position[v] += 1
        result.append(nxt)
        v = nxt
    return "".join(result)


def _reaches(v: str, last: str, edges: dict[str, list[str]], final: dict[str, int]) -> bool:
    seen = set()
    while v != last:
        if v in seen:
            return False
        seen.add(v)
        v = edges[v][final[v]]
    return True


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
    """The model input length: ``length`` if given, else the longest up to ``max_length``."""
    if length is not None:
        return length
    return min(max(lengths), max_length)


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
        rng = np.random.default_rng(seed)
        negatives = [
            (f"{name}_shuffled{k}", dinucleotide_shuffle(seq, rng))
            for k in range(negatives_per_positive)
            for name, seq in positives
        ]
    if not negatives:
        raise GenocnnError(f"{neg}: no negative sequences")
    records = positives + negatives
    L = choose_length([len(s) for _, s in records], length, max_length)
    x = one_hot([s for _, s in records], length=L)
    y = torch.zeros(len(records), 1)
    y[: len(positives)] = 1.0
    return Dataset([name for name, _ in records], x, y, ["bound"])


class Split(NamedTuple):
    """Row indices of the train, validation and test parts."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def split_indices(y: torch.Tensor, valid_fraction: float, test_fraction: float, seed: int) -> Split:
    """Reproducible split, stratified on the first task's label (unknown = its own stratum).

    Parameters
    ----------
    y : torch.Tensor, shape (N, T)
    valid_fraction, test_fraction : float
    seed : int

    Returns
    -------
    Split
        Disjoint sorted index arrays covering ``range(N)``.
    """
    rng = np.random.default_rng(seed)
    labels = np.nan_to_num(y[:, 0].numpy(), nan=-1.0)
    parts: list[list[np.ndarray]] = [[], [], []]
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        n_test = int(round(len(idx) * test_fraction))
        n_valid = int(round(len(idx) * valid_fraction))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_valid])
        parts[0].append(idx[n_test + n_valid :])
    train, valid, test = (np.sort(np.concatenate(p)) for p in parts)
    if min(len(train), len(valid), len(test)) == 0:
        raise GenocnnError(
            f"too few sequences ({len(labels)}) to split into train/validation/test; need at least ~20"
        )
    return Split(train, valid, test)


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labels TSV: first column sequence id, every other column one task.

    Values are 0, 1, or unknown (empty / ``NA``), kept as NaN.

    Raises
    ------
    GenocnnError
        Unreadable file, no task column, duplicate ids, or values other than
        0/1/NA (naming the line, column and count).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenocnnError(f"{path}: no such labels file")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenocnnError(f"{path}: not a readable tab-separated labels file: {detail}") from None
    if table.shape[1] < 2:
        raise GenocnnError(f"{path}: needs an id column and at least one task column (tab-separated)")
    ids = table.iloc[:, 0]
    dup = ids[ids.duplicated()]
    if len(dup):
        line = int(dup.index[0]) + 2
        raise GenocnnError(f"{path}: line {line}: duplicate id {dup.iloc[0]!r} ({len(dup)} duplicate ids)")
    values = table.iloc[:, 1:].apply(lambda c: c.str.strip())
    known = values.isin(["0", "1"])
    unknown = values.isin(["", "NA", "NaN", "nan", "na"])
    bad = ~(known | unknown)
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        raise GenocnnError(
            f"{path}: line {row + 2}, column {values.columns[col]!r}: value {values.iat[row, col]!r} "
            f"is not 0, 1 or NA ({int(bad.to_numpy().sum())} such values)"
        )
    numeric = values.where(known).astype(float)
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
    records = list(read_fasta(fasta))
    names = [name for name, _ in records]
    seen: set[str] = set()
    dups = [n for n in names if n in seen or seen.add(n)]
    if dups:
        raise GenocnnError(f"{fasta}: duplicate record id {dups[0]!r} ({len(dups)} duplicates)")
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
