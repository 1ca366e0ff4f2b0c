"""Refine a distinct motif on the sequences that rely on it: its best site in each, counted again.

A distinct motif counted from the windows where the first layer fires
strongest (:mod:`genocnn.clusters`, steps 1-5) keeps the consensus-like
sites and comes out sharper than the TF's sites. Koo & Eddy's Arid3a motif
came out as ``TTTAAT`` with four columns at 0.97-1.0, where JASPAR's matrix
has ``T/C`` and ``A/T`` columns; so sharp a 6-mer matched MA0151.1 at only
p 4e-5, column-shuffled copies of it matched homeobox matrices better, and
the naming rule left it unnamed. :func:`refine_motifs` counts instead the
best window of the motif's log-odds in every sequence that relies on the
motif (predicted bound for its task, and predicted lower without its
filters), three rounds over, as MEME's and HOMER's refinement steps do:
Arid3a's motif then matches MA0151.1 at p 8e-9 and is named, and the Koo &
Eddy runs name 12 of 12 planted TFs, 8-9 of them at TF level (before: 11
and 12, 4-5). See ``bench/RESULTS.md``, "Refined distinct motifs".
"""

from __future__ import annotations

import numpy as np
import torch

from .pwm import Motif, trim

__all__ = ["best_sites", "count_sites", "refine_counts", "refine_motifs"]

#: A motif is refined on at least this many sequences that rely on it (:func:`refine_motifs`).
MIN_REFINE_SEQUENCES = 10
#: A sequence relies on a motif when nullifying the motif's filters lowers its prediction by at least this much.
MIN_REFINE_DROP = 0.1

#: Log-odds floor: each column's probabilities are mixed with this much of the uniform distribution.
MIX = 0.1


def count_sites(x: np.ndarray, sites: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Base counts (4, hi - lo) of frame columns ``lo .. hi - 1`` over ``sites`` (rows ``seq, origin, strand, .``).

    Column ``u`` is position ``origin + u`` (strand +1) or the complement of
    ``origin - u`` (strand -1); positions outside the sequence count nothing.
    """
    u = np.arange(lo, hi)
    n, origin, strand = sites[:, 0].astype(np.int64), sites[:, 1].astype(np.int64), sites[:, 2].astype(np.int64)
    pos = origin[:, None] + strand[:, None] * u[None, :]  # (S, W)
    inside = (pos >= 0) & (pos < x.shape[2])
    windows = x[n[:, None], :, np.clip(pos, 0, x.shape[2] - 1)] * inside[..., None]  # (S, W, 4)
    windows = np.where((strand == -1)[:, None, None], windows[..., ::-1], windows)  # complement
    return windows.sum(axis=0, dtype=np.float64).T


def best_sites(x: torch.Tensor, ppm: np.ndarray, overhang: int = 0, batch_size: int = 1024) -> np.ndarray:
    """Each sequence's best window under the motif's log-odds, on either strand.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L)
        One-hot sequences (N = 0.25 in each channel).
    ppm : np.ndarray, shape (4, w)
        The motif's probabilities (``w <= L + 2 overhang``).
    overhang : int
        Columns a window may reach past either end of a sequence (they score 0).
    batch_size : int

    Returns
    -------
    np.ndarray, shape (N, 3), int64
        Rows ``seq, origin, strand``: motif column ``u`` faces position
        ``origin + u`` (strand +1) or the complement of ``origin - u``
        (strand -1), as :func:`count_sites` reads them.

    Examples
    --------
    >>> x = torch.zeros(1, 4, 8); x[0, [0, 1, 2, 3, 0, 0, 0, 0], range(8)] = 1  # ACGTAAAA
    >>> best_sites(x, np.eye(4)[:, [0, 1, 2]] * 0.97 + 0.01).tolist()  # ACG at 0, + strand
    [[0, 0, 1]]
    >>> best_sites(x, np.eye(4)[:, [3, 3, 3]] * 0.97 + 0.01).tolist()  # TTT: AAA at 4-6 on the - strand
    [[0, 6, -1]]
    """
    w = ppm.shape[1]
    logodds = np.log2((1 - MIX) * np.asarray(ppm, dtype=np.float64) + MIX / 4) + 2.0  # over a uniform background
    kernel = torch.from_numpy(np.stack([logodds, logodds[::-1, ::-1]]).astype(np.float32))  # (2, 4, w): + and -
    rows = []
    for i in range(0, len(x), batch_size):
        scores = torch.nn.functional.conv1d(x[i : i + batch_size].float(), kernel, padding=overhang)  # (B, 2, .)
        best = scores.flatten(1).argmax(dim=1)
        strand, start = best // scores.shape[2], best % scores.shape[2] - overhang
        rows.append(torch.stack([torch.arange(i, i + len(best)), torch.where(strand == 0, start, start + w - 1),
                                 1 - 2 * strand], dim=1))
    return torch.cat(rows).numpy().astype(np.int64) if rows else np.zeros((0, 3), dtype=np.int64)


def refine_counts(x: torch.Tensor, ppm: np.ndarray, iterations: int = 3, flank: int = 0) -> np.ndarray:
    """Counts (4, w + 2 flank) of each sequence's best site, re-found ``iterations`` times from ``ppm``.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L)
        The sequences, each assumed to hold one site (those the model calls bound).
    ppm : np.ndarray, shape (4, w)
        Starting motif.
    iterations : int
        Rounds of finding the best sites and counting them (at least 1).
    flank : int
        Uniform columns added each side first, so that the sites can show
        informative columns the starting motif did not reach (trim them
        after); they may reach past the ends of a sequence.

    Returns
    -------
    np.ndarray, shape (4, w + 2 flank), float64
        Base counts of the last round's sites (one per sequence whose window
        fits; positions outside a sequence count nothing).
    """
    ppm = np.concatenate([np.full((4, flank), 0.25), np.asarray(ppm, dtype=np.float64), np.full((4, flank), 0.25)],
                         axis=1)
    w = ppm.shape[1]
    if w > x.shape[2] + 2 * flank or not len(x):
        return np.zeros((4, w))
    xs = x.float().numpy()
    for _ in range(max(iterations, 1)):
        counts = count_sites(xs, best_sites(x, ppm, flank), 0, w)
        ppm = (counts + 0.25) / (counts.sum(axis=0, keepdims=True) + 1.0)
    return counts


def refine_motifs(x: torch.Tensor, found: list[Motif], relying: np.ndarray, iterations: int = 3, flank: int = 5,
                  min_ic: float = 0.3, pseudocount: float = 1.0) -> list[Motif]:
    """Each distinct motif re-counted from the best site of every sequence that relies on it.

    :func:`~genocnn.clusters.distinct_motifs` says that a sequence relies on
    a motif when the model predicts it bound for the motif's task
    (probability >= 0.5) and predicts it at least :data:`MIN_REFINE_DROP`
    lower with the motif's filters nullified together. The
    counts of :func:`refine_counts` are cut to their core
    (:func:`~genocnn.pwm.trim`, ``core=True``); ``extra`` is kept, with
    ``placements`` and ``trim_offset`` moved to the new columns, ``sites``
    the sequences counted and ``refined`` True. A motif with fewer than
    :data:`MIN_REFINE_SEQUENCES` such sequences is returned as it was.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L)
    found : list of Motif, length G
        Distinct motifs (``extra["placements"]`` set), as steps 1-5 of
        :mod:`genocnn.clusters` build them.
    relying : np.ndarray of bool, shape (G, N)
        Which sequences rely on each motif.
    iterations, flank : int
        As :func:`refine_counts`.
    min_ic, pseudocount : float
        Core trimming threshold (bits) and the pseudocount of the new motifs.

    Returns
    -------
    list of Motif, in the order of ``found``
    """
    out = []
    for m, rows in zip(found, relying):
        seqs = x[torch.from_numpy(np.asarray(rows, dtype=bool))]
        if len(seqs) < MIN_REFINE_SEQUENCES:
            out.append(m)
            continue
        counts = refine_counts(seqs, m.ppm, iterations, flank)
        new = trim(Motif(m.name, counts, len(seqs), pseudocount=pseudocount), min_ic, core=True)
        shift = new.extra["trim_offset"] - flank  # new column 0 is old column ``shift``
        new.extra = {**m.extra, "sites": len(seqs), "refined": True,
                     "trim_offset": m.extra.get("trim_offset", 0) + shift,
                     "placements": {k: (a - shift, st) for k, (a, st) in m.extra["placements"].items()}}
        out.append(new)
    return out
