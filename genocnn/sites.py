"""Binding sites called from a scan's per-window scores, and the BED6 file they are written to.

Place in the data flow::

    FASTA -> scanning.scan -> ScanBlock stream -> sites (BED6)
                                               -> tracks (bedGraph / bigWig)

:func:`genocnn.scanning.scan` yields :class:`ScanBlock` s, one chunk of window
starts of one record at a time. :class:`SiteCaller` consumes them in scan
order and merges runs of consecutive windows whose probability is at least a
threshold into one site each; runs continue across the chunks of a record, so
the sites do not depend on the chunk size. Runs whose windows overlap are one
site too, so no two sites overlap. Each site reports its summit: the centre of
its run of windows (of the stronger run when runs merge). Over a site the scores
form a plateau about as wide as the model's window, and on a plateau of
near-saturated probabilities the single best window falls anywhere: on the
simulated chromosome of ``bench/sites.py`` (CTCF) the best window's centre
lay a median 62.5 bp from the planted site, the run's centre 6 bp.
Windows without a score (NaN: mostly N or padding, see
:func:`~genocnn.scanning.scan`) are never part of a site.
:func:`call_sites` does the same for a whole stream, :func:`write_bed` writes
the table (BED6, or narrowPeak with the summit).

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

__all__ = ["BED_COLUMNS", "Runs", "ScanBlock", "SiteCaller", "call_sites", "mask_counts", "write_bed"]

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


class Runs(NamedTuple):
    """Runs of consecutive windows at or above a threshold in one chunk, as indices into its windows.

    Attributes
    ----------
    begin, end : np.ndarray, shape (k,), int64
        First window of each run and one past its last.
    best : np.ndarray, shape (k,), float32
        The run's largest probability.
    best_at : np.ndarray, shape (k,), int64
        The first window with it.
    strand : np.ndarray, shape (k,), int8
        The strand at that window (see :class:`ScanBlock`).
    """

    begin: np.ndarray
    end: np.ndarray
    best: np.ndarray
    best_at: np.ndarray
    strand: np.ndarray


class SiteCaller:
    """Merge runs of consecutive window starts scoring at least ``threshold`` into BED6 sites.

    Feed :class:`ScanBlock` s in scan order with :meth:`add` (or chunks' :class:`Runs`
    with :meth:`add_runs`); runs continue
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
        self._rows: list[list] = []
        self._record = 0  # records seen: a block at position 0 starts the next one

    def _close(self) -> None:
        if self._open is not None:
            chrom, start, last, best, strand, window, n = self._open
            row = [chrom, start, min(last + window, n), best, strand, (start + last) // 2 + min(window, n) // 2,
                   self._record]
            prev = self._rows[-1] if self._rows else None
            if prev is not None and prev[6] == self._record and start < prev[2]:  # windows overlap: one site
                prev[2] = max(prev[2], row[2])
                if row[3] > prev[3]:
                    prev[3:6] = row[3:6]
            else:
                self._rows.append(row)
            self._open = None

    def add(self, block: ScanBlock) -> None:
        """Take the next block of scores."""
        p = block.probs[:, self.task]
        mask = p >= self.threshold
        edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        begins, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        best, best_at = _run_maxima(p, mask, begins) if len(begins) else (p[:0], begins)
        runs = Runs(begins, ends, best, best_at, block.strand[best_at, self.task])
        first = int(block.positions[0])
        stride = int(block.positions[1] - first) if len(block.positions) > 1 else block.stride
        self.add_runs(block.chrom, first, stride, len(p), runs, block.window, block.chrom_length)

    def add_runs(self, chrom: str, first: int, stride: int, count: int, runs: Runs, window: int,
                 chrom_length: int) -> None:
        """Take the next chunk as its runs of windows at or above the threshold (found on a device).

        The chunk's windows start at ``first + stride * i`` for ``i < count``; ``runs``
        index them (see :class:`Runs`). Same result as :meth:`add` on the chunk's scores.
        """
        if self._open is not None and (first == 0 or chrom != self._open[0]):
            self._close()
        if first == 0:
            self._record += 1
        if len(runs.begin) == 0:
            self._close()
            return
        for i, (b, e) in enumerate(zip(runs.begin.tolist(), runs.end.tolist())):
            start, last = first + stride * b, first + stride * (e - 1)
            run = [chrom, start, last, float(runs.best[i]), int(runs.strand[i]), window, chrom_length]
            if i == 0 and b == 0 and self._open is not None:  # continues the open run
                run[1] = self._open[1]
                if self._open[3] >= run[3]:
                    run[3], run[4] = self._open[3], self._open[4]
            elif i == 0:
                self._close()
            self._open = run
            if e < count:
                self._close()

    def finish(self) -> pd.DataFrame:
        """Close the last run; return the sites: BED6 columns, then ``prob`` and ``summit``."""
        self._close()
        rows = self._rows
        table = pd.DataFrame(rows, columns=["chrom", "start", "end", "prob", "strand", "summit", "record"])
        table["score"] = np.clip(np.rint(table["prob"].to_numpy(float) * 1000), 0, 1000).astype(int)
        table["strand"] = table["strand"].map({1: "+", -1: "-", 0: "."}).astype(object)
        table["name"] = [f"site_{k}" for k in range(1, len(table) + 1)]
        return table[[*BED_COLUMNS, "prob", "summit"]].astype({"start": np.int64, "end": np.int64, "summit": np.int64})


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
        record), ``name`` ``site_<k>``, ``score`` the site's best probability
        x 1000 (int), ``strand`` the strand whose logit is larger at the best
        window (``.`` without reverse-complement averaging); then ``prob``
        (the best probability) and ``summit`` (0-based: the centre of the
        run's windows, see the module). Runs of windows that overlap form one
        site, with the stronger run's summit.

    Examples
    --------
    >>> probs = np.array([[.1], [.7], [.9], [.2], [.6]], dtype=np.float32)
    >>> block = ScanBlock("chr1", np.arange(5), probs, np.ones((5, 1), np.int8), 10, 1, 100)
    >>> call_sites([block])[["chrom", "start", "end", "score", "summit"]].values.tolist()
    [['chr1', 1, 14, 900, 6]]
    """
    caller = SiteCaller(threshold, task)
    for block in blocks:
        caller.add(block)
    return caller.finish()


def write_bed(sites: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write sites (no header), atomically: BED6, or narrowPeak (BED6+4) for a ``.narrowPeak`` path.

    Parameters
    ----------
    sites : pandas.DataFrame
        As :func:`call_sites` returns; BED6 writes the :data:`BED_COLUMNS`.
    path : str or PathLike
        Output file. narrowPeak adds ``signalValue`` (the best probability),
        ``pValue`` and ``qValue`` (-1: not computed) and ``peak`` (the
        summit's offset from ``start``).
    """
    table = sites[BED_COLUMNS]
    if str(path).endswith(".narrowPeak"):
        table = table.assign(signal=sites["prob"].round(6), p=-1, q=-1, peak=sites["summit"] - sites["start"])
    with atomic_open(path) as fh:
        table.to_csv(fh, sep="\t", header=False, index=False)


def mask_counts(mask: np.ndarray, window: int) -> int:
    """Number of sites :class:`SiteCaller` makes from one record's above-threshold mask (stride 1).

    Parameters
    ----------
    mask : np.ndarray, shape (n,), bool
        Window ``i`` scores at least the threshold.
    window : int
        Window length; runs closer than this overlap and make one site.

    Examples
    --------
    >>> int(mask_counts(np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1], bool), window=4))
    2
    """
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    begins, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if len(begins) == 0:
        return 0
    gaps = begins[1:] - (ends[:-1] - 1)  # distance between the last window of a run and the next run's first
    return int(len(begins) - np.count_nonzero(gaps < window))
