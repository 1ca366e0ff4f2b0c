"""Per-position score tracks of a scan: bedGraph text and bigWig (pyBigWig), streamed.

Place in the data flow::

    FASTA -> scanning.scan -> ScanBlock stream -> sites (BED6)
                                               -> tracks (bedGraph / bigWig)

Every window of a :class:`~genocnn.sites.ScanBlock` becomes one track interval
(:func:`track_intervals`): ``[centre, centre + stride)`` with
``centre = start + min(L, chrom_length) // 2``, clipped to the record, valued
with the window's probability for one task. Blocks are written as they come,
so a track of a whole genome never sits in memory. :class:`BedGraphTrack` and
:class:`BigWigTrack` share one interface (``add(block, task)``, ``close()``)
so :func:`genocnn.scanning.scan_genome` can feed both from one scan;
:func:`write_bedgraph` writes a bedGraph from any stream of blocks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sized
from typing import TextIO

import numpy as np
import pandas as pd

from .atomic import atomic_open
from .errors import GenocnnError
from .sites import ScanBlock

__all__ = ["BedGraphTrack", "BigWigTrack", "chrom_sizes", "track_intervals", "write_bedgraph"]


def track_intervals(block: ScanBlock) -> tuple[np.ndarray, np.ndarray]:
    """Track interval of each window: ``[centre, centre + stride)``, clipped to the record.

    Parameters
    ----------
    block : ScanBlock
        ``n`` windows.

    Returns
    -------
    start, end : np.ndarray, shape (n,), int64
        ``start = position + min(window, chrom_length) // 2``,
        ``end = min(start + stride, chrom_length)``.

    Examples
    --------
    >>> probs, strand = np.zeros((3, 1), np.float32), np.zeros((3, 1), np.int8)
    >>> track_intervals(ScanBlock("c", np.array([0, 5, 10]), probs, strand, 10, 5, 22))
    (array([ 5, 10, 15]), array([10, 15, 20]))
    """
    centre = block.positions + min(block.window, block.chrom_length) // 2
    return centre, np.minimum(centre + block.stride, block.chrom_length)


class BedGraphTrack:
    """Per-position track written as bedGraph text to an open file, block by block.

    Parameters
    ----------
    fh : text file
        Open for writing; the ``track type=bedGraph`` header is written at
        once. The caller owns (and closes) the file.
    """

    def __init__(self, fh: TextIO) -> None:
        self.fh = fh
        fh.write("track type=bedGraph\n")

    def add(self, block: ScanBlock, task: int) -> None:
        """Write one line ``chrom start end prob`` per scored window of ``block`` (``probs[:, task]``, not NaN)."""
        centre, end = track_intervals(block)
        value = block.probs[:, task]
        keep = ~np.isnan(value)
        table = pd.DataFrame({"chrom": block.chrom, "start": centre[keep], "end": end[keep], "value": value[keep]})
        table.to_csv(self.fh, sep="\t", header=False, index=False, float_format="%.5g")

    def close(self) -> None:
        """Nothing to finish: lines are complete as written and the file is the caller's."""


class BigWigTrack:
    """Per-position track written as bigWig (pyBigWig), entries streamed in record order.

    Parameters
    ----------
    path : str or PathLike
        Output file, written in place (wrap it in :func:`~genocnn.atomic.atomic_path`).
    sizes : list of (str, int)
        ``(chrom, length)`` of every record, in scan order, for the header.
    """

    def __init__(self, path: str | os.PathLike, sizes: list[tuple[str, int]]) -> None:
        try:
            import pyBigWig
        except ImportError:
            raise GenocnnError("`bigwig` needs pyBigWig: pip install pyBigWig") from None
        self.handle = pyBigWig.open(os.fspath(path), "w")
        self.handle.addHeader(sizes, maxZooms=10)

    def add(self, block: ScanBlock, task: int) -> None:
        """Add one entry per scored window of ``block`` (``probs[:, task]``, not NaN)."""
        centre, end = track_intervals(block)
        value = block.probs[:, task]
        keep = ~np.isnan(value)
        if keep.any():
            self.handle.addEntries(
                [block.chrom] * int(keep.sum()), centre[keep].tolist(), ends=end[keep].tolist(),
                values=value[keep].astype(float).tolist(),
            )

    def close(self) -> None:
        """Finish the file (zoom levels, index)."""
        self.handle.close()


def write_bedgraph(blocks: Iterable[ScanBlock], path: str | os.PathLike, task: int = 0) -> None:
    """Write the per-position track, atomically, streaming.

    Each scored window gives one line ``chrom centre centre+stride prob`` with
    ``centre = start + L // 2`` (clipped to the record); see :func:`track_intervals`.

    Parameters
    ----------
    blocks : iterable of ScanBlock
        From :func:`~genocnn.scanning.scan`, in scan order.
    path : str or PathLike
        Output file.
    task : int, default 0
        Which column of ``probs``.
    """
    with atomic_open(path) as fh:
        track = BedGraphTrack(fh)
        for block in blocks:
            track.add(block, task)


def chrom_sizes(records: Iterable[tuple[str, Sized]]) -> list[tuple[str, int]]:
    """``(name, length)`` of every record, for the bigWig header.

    Parameters
    ----------
    records : iterable of (str, sequence)
        Anything with a length; the scan's record source measures an indexed
        FASTA through its ``.fai`` without reading the sequences.

    Examples
    --------
    >>> chrom_sizes([("chr1", "ACGT"), ("chr2", "AC")])
    [('chr1', 4), ('chr2', 2)]
    """
    return [(name, len(seq)) for name, seq in records]
