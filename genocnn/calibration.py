"""Thresholds with a meaning: false calls per Mbp of background, measured when a model is trained.

At the end of training, :func:`calibrate` scans dinucleotide shuffles of the
held-out sequences (background that keeps the data's base and dinucleotide
composition but no motif arrangement) and counts the sites
:class:`~genocnn.sites.SiteCaller` would call there at a grid of thresholds.
The curve is stored in ``model.pt``; ``genocnn scan --fpr RATE`` turns a
wanted rate of false calls per Mbp into a threshold with
:func:`genocnn.thresholds.threshold_for_rate`.
"""

from __future__ import annotations

import numpy as np
import torch

from .encode import CODES, decode
from .negatives import dinucleotide_shuffle
from .scanengine import sliding_max
from .scanning import scan

__all__ = ["calibrate", "background_sequences", "calls_per_mbp", "previous_max"]

#: Default size of the shuffled background scanned at the end of training.
BACKGROUND_BP = 2_000_000
#: Background records are cut into pieces of this length before shuffling.
PIECE_BP = 50_000
#: Thresholds in the stored curve.
GRID = 48
#: Window scores (windows x tasks) kept at once; many-task models are calibrated a group of tasks per scan.
MAX_SCORES = 50_000_000


def _bases(x: torch.Tensor | np.ndarray) -> str:
    """The A/C/G/T of one-hot ``x`` (N, 4, L) or of 1-byte codes (N, L) uint8, row after row (padding, N and
    other ambiguity codes dropped)."""
    if x.dtype in (np.uint8, torch.uint8):
        codes = np.asarray(x).ravel()
        return np.frombuffer(CODES.encode(), dtype=np.uint8)[codes[(codes >= 1) & (codes <= 4)]].tobytes().decode()
    return "".join(s.replace("-", "").replace("N", "") for s in decode(x))


def background_sequences(x: torch.Tensor | np.ndarray, total_bp: int, seed: int = 0) -> list[str]:
    """Dinucleotide-shuffled background pieces built from encoded sequences.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L), or numpy.ndarray, shape (N, L), uint8
        Held-out sequences, one-hot or as 1-byte codes (their padding and N are dropped).
    total_bp : int
        Background length to produce.
    seed : int

    Returns
    -------
    list of str
        Pieces of at most :data:`PIECE_BP` bases, ``total_bp`` in all.
    """
    rng = np.random.default_rng(seed)
    text = _bases(x)  # no padding, no N runs
    if not text:
        return []
    pieces, made = [], 0
    while made < total_bp:
        start = int(rng.integers(0, len(text)))
        piece = (text[start:] + text[:start])[: min(PIECE_BP, total_bp - made)]
        while len(piece) < min(PIECE_BP, total_bp - made):  # short data: repeat (the shuffle mixes it)
            piece += text[: min(PIECE_BP, total_bp - made) - len(piece)]
        pieces.append(dinucleotide_shuffle(piece, rng))
        made += len(piece)
    return pieces


def calls_per_mbp(probs: list[np.ndarray], window: int, thresholds: np.ndarray) -> np.ndarray:
    """Sites per Mbp that :class:`~genocnn.sites.SiteCaller` calls at each threshold.

    A site starts at window ``i`` at threshold ``t`` when ``probs[i] >= t``
    and none of the ``window - 1`` windows before it (at least one) reaches
    ``t`` (closer runs merge into one site, as in
    :func:`~genocnn.sites.mask_counts`): so
    window ``i`` starts a site at every threshold in ``(prev_i, probs[i]]``,
    ``prev_i`` being the best of those windows. One pass per record counts
    every threshold at once.

    Parameters
    ----------
    probs : list of np.ndarray, each shape (n_r,)
        One task's window scores of each background record, stride 1 (NaN: no score).
    window : int
        Model length ``L`` (windows closer than this merge into one site).
    thresholds : np.ndarray, shape (G,)

    Returns
    -------
    np.ndarray, shape (G,), float64
    """
    order = np.argsort(np.asarray(thresholds, dtype=np.float64), kind="stable")
    grid = np.asarray(thresholds, dtype=np.float64)[order]
    starts = np.zeros(len(grid) + 1, dtype=np.int64)
    for p in probs:
        p = np.nan_to_num(np.asarray(p, dtype=np.float64), nan=-np.inf)
        lo = np.searchsorted(grid, previous_max(p, max(window - 1, 1)), side="right")  # first threshold above prev_i
        hi = np.searchsorted(grid, p, side="right")  # first threshold above probs[i]
        keep = lo < hi
        starts += np.bincount(lo[keep], minlength=len(grid) + 1) - np.bincount(hi[keep], minlength=len(grid) + 1)
    bases = sum(len(p) + window - 1 for p in probs)
    rates = np.empty(len(grid))
    rates[order] = np.cumsum(starts)[: len(grid)] / max(bases, 1) * 1e6
    return rates


def previous_max(p: np.ndarray, width: int) -> np.ndarray:
    """Best of the ``width`` values before each position (``-inf`` where there are none): (n,) -> (n,).

    :func:`~genocnn.scanengine.sliding_max` (log-doubling) over ``p`` shifted right by ``width``.

    Examples
    --------
    >>> previous_max(np.array([3., 1, 2, 0]), 2).tolist()
    [-inf, 3.0, 3.0, 2.0]
    """
    if width < 1 or len(p) == 0:
        return np.full(len(p), -np.inf)
    x = np.concatenate([np.full(width, -np.inf), p[:-1]])  # x[i + j] = p[i - width + j], j < width
    return sliding_max(torch.from_numpy(x)[None], width)[0].numpy()


def calibrate(model, x: torch.Tensor | np.ndarray, background_bp: int = BACKGROUND_BP, seed: int = 0) -> dict:
    """Measure false calls per Mbp against threshold on shuffled background, for every task.

    Parameters
    ----------
    model : ConvNet
    x : torch.Tensor, shape (N, 4, L), or numpy.ndarray, shape (N, L), uint8
        Held-out sequences to shuffle into background, one-hot or as 1-byte codes.
    background_bp : int
    seed : int

    Returns
    -------
    dict
        ``thresholds`` (T, G) float64 probabilities, increasing; ``calls_per_mbp``
        (T, G) float64; ``background_bp`` int. Plain tensors, so it is stored
        in ``model.pt`` and loads with ``weights_only=True``.
    """
    pieces = background_sequences(x, background_bp, seed)
    window = model.length
    bases = sum(len(p) for p in pieces)
    per_scan = max(1, MAX_SCORES // max(bases, 1))  # tasks whose scores fit in MAX_SCORES at once
    thresholds, rates = [], []
    for first in range(0, model.n_tasks, per_scan):
        tasks = slice(first, min(first + per_scan, model.n_tasks))
        kept = [b.probs[:, tasks].copy() for b in scan(model, pieces, progress=False)]  # one block alive at a time
        for t in range(tasks.stop - tasks.start):
            grid, rate = _task_curve([k[:, t] for k in kept], window)
            thresholds.append(grid)
            rates.append(rate)
        del kept
    return {
        "thresholds": torch.tensor(np.array(thresholds), dtype=torch.float64),
        "calls_per_mbp": torch.tensor(np.array(rates), dtype=torch.float64),
        "background_bp": int(bases),
    }


def _task_curve(probs: list[np.ndarray], window: int) -> tuple[np.ndarray, np.ndarray]:
    """One task's threshold grid (G,) and calls per Mbp (G,) from its window scores of each background record."""
    flat = np.sort(np.concatenate(probs)) if probs else np.zeros(1)
    flat = flat[np.isfinite(flat)]
    # thresholds from the median up to the top few windows, denser in the tail
    tail = np.unique(np.geomspace(0.5, 1.0 / max(len(flat), 2), GRID))
    grid = np.unique(np.quantile(flat, 1.0 - tail)) if len(flat) else np.array([0.5])
    grid = np.pad(grid, (0, GRID - len(grid)), mode="edge")
    return grid, calls_per_mbp(probs, window, grid)
