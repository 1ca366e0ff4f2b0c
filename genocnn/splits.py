"""Train / validation / test splits, stratified on the first task's label.

Both splits draw through one function, :func:`stratified_draw`: within each
label stratum (unknown, 0, 1, in that order) the rows are permuted with the
split's seed and cut into consecutive pieces of ``round(n * fraction)`` rows.

* :func:`split_indices` (any data): one draw cuts test, then validation; the
  rest trains.
* :func:`chrom_split` (BED data): rows on held-out chromosomes form their
  part; a part given no chromosomes is drawn from the remaining rows, test
  first, then validation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from .errors import GenocnnError

__all__ = ["Split", "chrom_split", "split_indices", "stratified_draw"]


class Split(NamedTuple):
    """Row indices of the train, validation and test parts."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def _strata(y: torch.Tensor) -> np.ndarray:
    """The first task's label of every row, unknown (NaN) as -1."""
    return np.nan_to_num(y[:, 0].numpy(), nan=-1.0)


def stratified_draw(
    index: np.ndarray, labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
) -> list[np.ndarray]:
    """Cut the rows ``index`` into pieces of the given fractions, stratum by stratum.

    For each label value among ``labels[index]`` (ascending), its rows are
    permuted with ``rng`` and cut into consecutive pieces of
    ``round(n * fraction)`` rows, one per fraction, and a last piece with the
    rest.

    Returns
    -------
    list of numpy.ndarray
        ``len(fractions) + 1`` pieces (unsorted; stratum by stratum).

    Examples
    --------
    >>> labels = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    >>> [len(p) for p in stratified_draw(np.arange(6), labels, [0.5], np.random.default_rng(0))]
    [3, 3]
    """
    own = labels[index]
    pieces: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for value in np.unique(own):
        idx = rng.permutation(index[own == value])
        cut = 0
        for piece, fraction in zip(pieces, fractions):
            n = int(round(len(idx) * fraction))
            piece.append(idx[cut : cut + n])
            cut += n
        pieces[-1].append(idx[cut:])
    return [np.concatenate(p) if p else np.zeros(0, dtype=int) for p in pieces]


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

    Examples
    --------
    >>> s = split_indices(torch.tensor([[1.0]] * 10 + [[0.0]] * 10), 0.2, 0.2, seed=0)
    >>> len(s.train), len(s.valid), len(s.test)
    (12, 4, 4)
    """
    labels = _strata(y)
    test, valid, train = (
        np.sort(p)
        for p in stratified_draw(np.arange(len(labels)), labels, [test_fraction, valid_fraction],
                                 np.random.default_rng(seed))
    )
    if min(len(train), len(valid), len(test)) == 0:
        raise GenocnnError(
            f"too few sequences ({len(labels)}) to split into train/validation/test; need at least ~20"
        )
    return Split(train, valid, test)


def check_chroms(known: set[str], valid_chroms: Sequence[str], test_chroms: Sequence[str]) -> None:
    """Refuse held-out chromosome names the genome lacks, or one given for both validation and test."""
    for flag, given in (("`valid_chroms`", valid_chroms), ("`test_chroms`", test_chroms)):
        unknown = [c for c in given if c not in known]
        if unknown:
            shown = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")
            raise GenocnnError(f"{flag}: unknown chromosome(s) {', '.join(unknown)} (the genome has {shown})")
    both = set(valid_chroms) & set(test_chroms)
    if both:
        raise GenocnnError(f"chromosome(s) {', '.join(sorted(both))} in both `valid_chroms` and `test_chroms`")


def _check_parts(split: Split, labels: np.ndarray, valid_chroms: Sequence[str], test_chroms: Sequence[str]) -> None:
    for part, idx, flag, given in (
        ("training", split.train, None, ()),
        ("validation", split.valid, "`valid_chroms`", valid_chroms),
        ("test", split.test, "`test_chroms`", test_chroms),
    ):
        where = f" ({flag} {','.join(given)})" if given else ""
        kinds = set(labels[idx].tolist())
        if not {0.0, 1.0} <= kinds:
            what = "no sequences" if not len(idx) else "no bound sequences" if 1.0 not in kinds else "no unbound sequences"
            raise GenocnnError(f"the {part} split{where} has {what}; choose other chromosomes")


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
    check_chroms(set(known if known is not None else chroms), valid_chroms, test_chroms)
    rng = np.random.default_rng(seed)
    labels = _strata(y)
    row_chroms = np.asarray(chroms, dtype=object)
    valid = np.flatnonzero(np.isin(row_chroms, list(valid_chroms)))
    test = np.flatnonzero(np.isin(row_chroms, list(test_chroms)))
    rest = np.setdiff1d(np.arange(len(row_chroms)), np.concatenate([valid, test]))
    if not len(test_chroms):
        test = stratified_draw(rest, labels, [test_fraction], rng)[0]
        rest = np.setdiff1d(rest, test)
    if not len(valid_chroms):
        valid = stratified_draw(rest, labels, [valid_fraction / (1 - test_fraction)], rng)[0]
        rest = np.setdiff1d(rest, valid)
    split = Split(np.sort(rest), np.sort(valid), np.sort(test))
    _check_parts(split, labels, valid_chroms, test_chroms)
    return split
