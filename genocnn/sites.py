"""Binding sites called from a scan's per-window scores, and the BED6 file they are written to.

Place in the data flow::

    FASTA -> scanning.scan -> ScanBlock stream -> sites (BED6)
                                               -> tracks (bedGraph / bigWig)

:func:`genocnn.scanning.scan` yields :class:`ScanBlock` s, one chunk of window
starts of one record at a time. :class:`SiteCaller` consumes them in scan
order and merges runs of consecutive windows whose probability is at least a
threshold into one site each; runs continue across the chunks of a record, so
the sites do not depend on the chunk size. :func:`call_sites` does the same for
a whole stream, :func:`write_bed` writes the table.

:class:`ScanBlock` is defined here, the lowest module that reads it, so that
this module and :mod:`genocnn.tracks` need nothing from the scan engine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd

from .atomic import atomic_open

__all__ = ["BED_COLUMNS", "ScanBlock", "SiteCaller", "call_sites", "write_bed"]

BED_COLUMNS = ["chrom", "start", "end", "name", "score", "strand"]


class ScanBlock(NamedTuple):
    """Scores for a run of window starts of one record (one chunk).

    Attributes
    ----------
    chrom : str
        Record id.
    positions : np.ndarray, shape (n,), int64
        Window starts (0-based); the window is ``[s, s + window)``.
    probs : np.ndarray, shape (n, T), float32
        The model's probability per window and task.
    strand : np.ndarray, shape (n, T), int8
        ``+1`` where the forward-strand logit is at least the reverse one,
        ``-1`` where it is smaller, ``0`` when the model has no
        reverse-complement averaging.
    window : int
        The model input length ``L``.
    stride : int
        Distance between consecutive window starts.
    chrom_length : int
        Length of the record; a record shorter than ``window`` has one
        (padded) window at position 0.
    """

    chrom: str
    positions: np.ndarray
    probs: np.ndarray
    strand: np.ndarray
    window: int
    stride: int
    chrom_length: int


class SiteCaller:
    """Merge runs of consecutive window starts scoring at least ``threshold`` into BED6 sites.

    Feed :class:`ScanBlock` s in scan order with :meth:`add`; runs continue
    across the chunks of a record. :meth:`finish` returns the sites.

    Parameters
    ----------
    threshold : float
        Probability a window needs to be part of a site.
    task : int
        Column of ``probs`` to call sites on.
    """

    def __init__(self, threshold: float = 0.5, task: int = 0) -> None:
        self.threshold, self.task = threshold, task
        self._open: list | None = None  # [chrom, start, last, best, strand, window, chrom_length]
        self._rows: list[tuple] = []

    def _close(self) -> None:
        if self._open is not None:
            chrom, start, last, best, strand, window, n = self._open
            self._rows.append((chrom, start, min(last + window, n), best, strand))
            self._open = None

    def add(self, block: ScanBlock) -> None:
        """Take the next block of scores."""
        if self._open is not None and (block.positions[0] == 0 or block.chrom != self._open[0]):
            self._close()
        p = block.probs[:, self.task]
        mask = p >= self.threshold
        if not mask.any():
            self._close()
            return
        edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        begins, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        best, best_at = _run_maxima(p, mask, begins)
        strands = block.strand[best_at, self.task]
        for i, (b, e) in enumerate(zip(begins, ends)):
            start, last = int(block.positions[b]), int(block.positions[e - 1])
            run = [block.chrom, start, last, float(best[i]), int(strands[i]), block.window, block.chrom_length]
            if i == 0 and b == 0 and self._open is not None:  # continues the open run
                run[1] = self._open[1]
                if self._open[3] >= run[3]:
                    run[3], run[4] = self._open[3], self._open[4]
            elif i == 0:
                self._close()
            self._open = run
            if e < len(p):
                self._close()

    def finish(self) -> pd.DataFrame:
        """Close the last run; return the BED6 sites (``chrom start end name score strand``)."""
        self._close()
        rows = self._rows
        table = pd.DataFrame(rows, columns=["chrom", "start", "end", "prob", "strand"])
        table["score"] = np.clip(np.rint(table["prob"].to_numpy(float) * 1000), 0, 1000).astype(int)
        table["strand"] = table["strand"].map({1: "+", -1: "-", 0: "."}).astype(object)
        table["name"] = [f"site_{k}" for k in range(1, len(table) + 1)]
        return table[BED_COLUMNS].astype({"start": np.int64, "end": np.int64})


def _run_maxima(p: np.ndarray, mask: np.ndarray, begins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best score of each run of ``mask`` and where it first occurs.

    Parameters
    ----------
    p : np.ndarray, shape (n,)
        Scores.
    mask : np.ndarray, shape (n,), bool
        Windows in a run.
    begins : np.ndarray, shape (k,), int
        First index of each run.

    Returns
    -------
    best : np.ndarray, shape (k,)
        The run's largest score.
    best_at : np.ndarray, shape (k,), int
        Index of its first occurrence within the run.
    """
    masked = np.where(mask, p, -np.inf)
    best = np.maximum.reduceat(masked, begins)
    segment = np.cumsum(np.isin(np.arange(len(p)), begins)) - 1
    hits = np.flatnonzero(masked == best[segment])  # positions equal to their run's max
    _, first = np.unique(segment[hits], return_index=True)
    return best, hits[first]


def call_sites(blocks: Iterable[ScanBlock], threshold: float = 0.5, task: int = 0) -> pd.DataFrame:
    """BED6 sites from a stream of scores: runs of windows with ``prob >= threshold``, merged.

    Parameters
    ----------
    blocks : iterable of ScanBlock
        From :func:`~genocnn.scanning.scan` (or hand-made, in scan order).
    threshold : float
    task : int
        Which column of ``probs``.

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom, start, end, name, score, strand``: ``start`` is the
        first window's start, ``end`` the last window's end (clipped to the
        record), ``name`` ``site_<k>``, ``score`` the run's best probability
        x 1000 (int), ``strand`` the strand whose logit is larger at the best
        window (``.`` without reverse-complement averaging).

    Examples
    --------
    >>> probs = np.array([[.1], [.7], [.9], [.2], [.6]], dtype=np.float32)
    >>> block = ScanBlock("chr1", np.arange(5), probs, np.ones((5, 1), np.int8), 10, 1, 100)
    >>> call_sites([block]).values.tolist()
    [['chr1', 1, 12, 'site_1', 900, '+'], ['chr1', 4, 14, 'site_2', 600, '+']]
    """
    caller = SiteCaller(threshold, task)
    for block in blocks:
        caller.add(block)
    return caller.finish()


def write_bed(sites: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write BED6 sites (no header), atomically.

    Parameters
    ----------
    sites : pandas.DataFrame
        With the :data:`BED_COLUMNS` (as :func:`call_sites` returns); other columns are ignored.
    path : str or PathLike
        Output file.
    """
    with atomic_open(path) as fh:
        sites[BED_COLUMNS].to_csv(fh, sep="\t", header=False, index=False)
