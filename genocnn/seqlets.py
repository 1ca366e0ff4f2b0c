"""Seqlets: the high-contribution windows of attribution maps, and the motifs they form.

Seqlets (TF-MoDISco's term) are windows of high summed contribution in a
contribution map of shape ``(N, 4, L)`` (from :func:`genocnn.attribution.attribute`);
:func:`seqlets` calls them against a shuffled-position null and
:func:`cluster_seqlets` groups them (greedy, cross-correlation alignment on both
strands) into :class:`~genocnn.pwm.Motif` PFMs named ``seqlet_<k>``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .attribution import attribute
from .errors import GenocnnError
from .pwm import UNIFORM_BACKGROUND, Motif


class Seqlet(NamedTuple):
    """A high-contribution window ``x[seq, :, start:end]``; ``score`` is its summed contribution."""

    seq: int
    start: int
    end: int
    score: float


def _window_sums(score: np.ndarray, window: int) -> np.ndarray:
    """Sliding sums over the last axis: (N, L) -> (N, L - window + 1).

    Examples
    --------
    >>> _window_sums(np.array([[1.0, 2.0, 3.0]]), 2).tolist()
    [[3.0, 5.0]]
    """
    c = np.concatenate([np.zeros((len(score), 1)), np.cumsum(score, axis=1)], axis=1)
    return c[:, window:] - c[:, :-window]


def seqlet_threshold(contrib: np.ndarray, x, window: int = 10, quantile: float = 0.99, seed: int = 0) -> float:
    """Null cutoff for seqlets: a quantile of |window sums| after shuffling positions.

    Each sequence's per-position scores (padding excluded) are permuted, which
    keeps their distribution but breaks up clusters such as motif sites; the
    cutoff is the ``quantile`` of the absolute window sums of the permuted
    scores (windows inside the sequence only).

    Parameters
    ----------
    contrib : np.ndarray, shape (N, 4, L)
        Contribution map.
    x : array-like, shape (N, 4, L)
        The one-hot sequences (all-zero columns are padding).
    window : int
    quantile : float
    seed : int
        Seed of the permutations.

    Returns
    -------
    float
        ``inf`` when no window fits inside any sequence.
    """
    score = np.asarray(contrib, dtype=np.float64).sum(axis=1)
    valid = np.asarray(x).sum(axis=1) > 0
    keys = np.random.default_rng(seed).random(score.shape)
    order = np.argsort(np.where(valid, keys, np.inf), axis=1)  # real positions first, shuffled
    shuffled = np.take_along_axis(score, order, axis=1)
    sums = np.abs(_window_sums(shuffled, window))
    inside = np.arange(sums.shape[1])[None, :] + window <= valid.sum(axis=1)[:, None]
    return float(np.quantile(sums[inside], quantile)) if inside.any() else float("inf")


def seqlets(
    contrib: np.ndarray, x, window: int = 10, threshold: float | None = None, quantile: float = 0.99, seed: int = 0
) -> list[Seqlet]:
    """Non-overlapping windows whose |summed contribution| exceeds a threshold.

    Parameters
    ----------
    contrib : np.ndarray, shape (N, 4, L)
        Contribution map (``attr`` of :func:`~genocnn.attribution.attribute`,
        i.e. attribution x input).
    x : array-like, shape (N, 4, L)
        The one-hot sequences (padding is left out of the null).
    window : int
        Seqlet width.
    threshold : float or None
        Cutoff on |window sum|; None: :func:`seqlet_threshold` with ``quantile``.
    quantile, seed
        As :func:`seqlet_threshold`.

    Returns
    -------
    list of Seqlet
        Per sequence, picked greedily by decreasing |score|, each at least
        ``window`` away from those already picked; ordered by decreasing |score|.

    Examples
    --------
    >>> contrib = np.zeros((1, 4, 20)); contrib[0, 0, 5:8] = 1.0
    >>> seqlets(contrib, np.ones((1, 4, 20)) / 4, window=3, threshold=2.0)
    [Seqlet(seq=0, start=5, end=8, score=3.0)]
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    if contrib.ndim != 3 or contrib.shape[1] != 4:
        raise GenocnnError(f"expected contributions of shape (N, 4, L), got {contrib.shape}")
    if not 1 <= window <= contrib.shape[2]:
        raise GenocnnError(f"seqlet window {window} must be between 1 and the sequence length {contrib.shape[2]}")
    if threshold is None:
        threshold = seqlet_threshold(contrib, x, window, quantile, seed)
    sums = _window_sums(contrib.sum(axis=1), window)
    found = []
    for n, row in enumerate(sums):
        taken = np.zeros(len(row), dtype=bool)
        for start in np.argsort(-np.abs(row), kind="stable"):
            if abs(row[start]) <= threshold:
                break
            if not taken[start]:
                found.append(Seqlet(n, int(start), int(start) + window, float(row[start])))
                taken[max(0, start - window + 1) : start + window] = True
    return sorted(found, key=lambda s: -abs(s.score))


class _Cluster:
    """Aligned seqlets: summed contribution and one-hot windows of width ``window + 2 * flank``."""

    def __init__(self, sign: int, width: int) -> None:
        self.sign = sign
        self.contrib = np.zeros((4, width))
        self.counts = np.zeros((4, width))
        self.members: list[tuple[Seqlet, int, str]] = []

    def match(self, core: np.ndarray) -> tuple[float, int, str]:
        """Best cosine similarity of ``core`` (4, w), either strand, over all offsets in the cluster frame."""
        w = core.shape[1]
        frames = np.lib.stride_tricks.sliding_window_view(self.contrib, w, axis=1)  # (4, O, w)
        frames = frames.transpose(1, 0, 2).reshape(frames.shape[1], -1)
        frames = frames / np.maximum(np.linalg.norm(frames, axis=1, keepdims=True), 1e-12)
        best = (-np.inf, 0, "+")
        for strand, q in (("+", core), ("-", core[::-1, ::-1])):
            sims = frames @ (q.ravel() / max(np.linalg.norm(q), 1e-12))
            o = int(sims.argmax())
            best = max(best, (float(sims[o]), o, strand), key=lambda t: t[0])
        return best

    def add(self, s: Seqlet, offset: int, strand: str, cpad: np.ndarray, xpad: np.ndarray, pad: int) -> None:
        """Add seqlet ``s`` at ``offset`` on ``strand``; ``cpad``, ``xpad`` (N, 4, L + 2 pad) are padded maps."""
        width = self.contrib.shape[1]
        core = s.end - s.start
        # cluster column j holds sequence position start - offset + j ('+'), or the
        # reverse complement of [start + offset + core - width, ... + width) ('-')
        left = s.start - offset if strand == "+" else s.start + offset + core - width
        c, o = cpad[s.seq, :, pad + left : pad + left + width], xpad[s.seq, :, pad + left : pad + left + width]
        if strand == "-":
            c, o = c[::-1, ::-1], o[::-1, ::-1]
        self.contrib += c
        self.counts += o
        self.members.append((s, offset, strand))

    def motif(self, name: str, trim_fraction: float, pseudocount: float) -> Motif:
        """The cluster's PFM, trimmed to the columns holding ``trim_fraction`` of the top |contribution|."""
        column = np.abs(self.contrib.sum(axis=0))
        span = np.flatnonzero(column >= trim_fraction * column.max())
        cols = slice(int(span[0]), int(span[-1]) + 1)
        n = len(self.members)
        return Motif(
            name=name,
            pfm=self.counts[:, cols],
            sites=n,
            background=UNIFORM_BACKGROUND,
            pseudocount=pseudocount,
            extra={"seqlets": n, "sign": self.sign, "contribution": self.contrib[:, cols] / n},
        )


def cluster_seqlets(
    found: list[Seqlet],
    contrib: np.ndarray,
    x,
    flank: int | None = None,
    min_similarity: float = 0.7,
    min_seqlets: int = 5,
    trim_fraction: float = 0.3,
    pseudocount: float = 1.0,
) -> list[Motif]:
    """Group seqlets greedily into motifs, aligning them on both strands.

    Seqlets are taken by decreasing |score|, positive and negative ones
    separately. Each joins the cluster whose summed contribution it matches best
    (cosine similarity of its contribution window, shifted by up to
    ``2 * flank`` and reverse-complemented) if that reaches ``min_similarity``,
    otherwise it starts a new cluster. A cluster's one-hot windows, aligned the
    same way with ``flank`` extra columns each side, are summed into a PFM,
    trimmed to the span of columns holding at least ``trim_fraction`` of the
    largest column's |contribution|.

    Parameters
    ----------
    found : list of Seqlet
        From :func:`seqlets` (all of one width).
    contrib, x : np.ndarray, shape (N, 4, L)
    flank : int or None
        Default: the seqlet width.
    min_similarity : float
    min_seqlets : int
        Smaller clusters are dropped.
    trim_fraction : float
    pseudocount : float
        Of the returned motifs.

    Returns
    -------
    list of Motif
        Named ``seqlet_<k>``, largest cluster first; ``sites`` is the number of
        seqlets and ``extra`` holds ``seqlets``, ``sign`` (+1 or -1) and
        ``contribution`` (mean aligned contribution, shape (4, w)).
    """
    if not found:
        return []
    core = found[0].end - found[0].start
    flank = core if flank is None else flank
    width, pad = core + 2 * flank, 2 * flank
    cpad = np.pad(np.asarray(contrib, dtype=np.float64), ((0, 0), (0, 0), (pad, pad)))
    xpad = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, 0), (pad, pad)))
    clusters: list[_Cluster] = []
    for s in sorted(found, key=lambda s: -abs(s.score)):
        sign = 1 if s.score > 0 else -1
        window = cpad[s.seq, :, pad + s.start : pad + s.end]
        scored = [(c.match(window), c) for c in clusters if c.sign == sign]
        (sim, offset, strand), best = max(scored, key=lambda t: t[0][0], default=((-1.0, 0, "+"), None))
        if best is None or sim < min_similarity:
            best, offset, strand = _Cluster(sign, width), flank, "+"
            clusters.append(best)
        best.add(s, offset, strand, cpad, xpad, pad)
    kept = sorted((c for c in clusters if len(c.members) >= min_seqlets), key=lambda c: -len(c.members))
    return [c.motif(f"seqlet_{k}", trim_fraction, pseudocount) for k, c in enumerate(kept)]


def motifs_from_attributions(
    contrib: np.ndarray, x, window: int = 10, threshold: float | None = None, quantile: float = 0.99, **cluster
) -> list[Motif]:
    """:func:`seqlets` then :func:`cluster_seqlets` (keyword arguments go to the latter).

    Parameters
    ----------
    contrib, x : np.ndarray, shape (N, 4, L)
        Contribution map and one-hot sequences.
    window, threshold, quantile
        As :func:`seqlets`.
    **cluster
        As :func:`cluster_seqlets`.

    Returns
    -------
    list of Motif
    """
    return cluster_seqlets(seqlets(contrib, x, window, threshold, quantile), contrib, x, **cluster)


def attribution_motifs(
    model, sequences, method: str = "ism", task: int | str = 0, max_seqs: int | None = None, **options
) -> list[Motif]:
    """Motifs from a model's contribution maps: ``attribute`` then :func:`motifs_from_attributions`.

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
        Usually the bound sequences.
    method, task, max_seqs
        As :func:`~genocnn.attribution.attribute`.
    **options
        ``window``, ``threshold``, ``quantile`` (seqlet calling) and
        ``flank``, ``min_similarity``, ``min_seqlets``, ``trim_fraction``,
        ``pseudocount`` (clustering).

    Returns
    -------
    list of Motif
        ``seqlet_<k>``, writable with :func:`~genocnn.motif_io.write_motifs` and
        nameable with :func:`~genocnn.compare.name_motifs` like filter motifs.
    """
    res = attribute(model, sequences, method, task, max_seqs)
    return motifs_from_attributions(res.attr, res.x, **options)
