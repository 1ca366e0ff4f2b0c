"""Attribution maps (which bases drive a prediction) and the motifs they form.

Two methods give a contribution map of shape ``(N, 4, L)`` that is zero except
at each sequence's own bases (so ``map.sum(axis=1)`` is the per-position score):

* :func:`ism` — in-silico mutagenesis. Every base is substituted by each other
  base and the model rescored; :func:`ism_deltas` keeps those raw effects
  ``logit(mutant) - logit(reference)``. The contribution of a reference base is
  minus the mean of its substitution effects: a base the model needs (every
  substitution lowers the logit) gets a positive score.
* :func:`gradient_x_input` — the gradient of the logit (captum), corrected by
  subtracting its mean over the 4 channels at each position before multiplying
  by the input (Majdandzic et al. 2023, "Correcting gradient-based
  interpretations of deep neural networks for genomics"): one-hot inputs live
  on a simplex, and the off-simplex gradient component is noise.

Both read the model in eval mode, where :class:`~genocnn.models.ConvNet`
averages the forward and reverse-complement logits, so both maps are strand
symmetric: the map of a reverse-complemented sequence is the reverse
complement of the map.

Seqlets (TF-MoDISco's term) are windows of high summed contribution;
:func:`seqlets` calls them against a shuffled-position null and
:func:`cluster_seqlets` groups them (greedy, cross-correlation alignment on both
strands) into :class:`~genocnn.motifs.Motif` PFMs named ``seqlet_<k>``.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .atomic import atomic_open, atomic_path
from .encode import ALPHABET, one_hot
from .errors import GenocnnError
from .models import task_index
from .motifs import UNIFORM_BACKGROUND, Motif
from .predict import iter_records

METHODS = ("ism", "grad")
NPZ_KEYS = ("ids", "one_hot", "attributions")


class Attributions(NamedTuple):
    """Sequences and their contribution maps, from :func:`attribute`."""

    ids: list[str]
    x: np.ndarray  #: one-hot, shape (N, 4, L), float32
    attr: np.ndarray  #: contributions, shape (N, 4, L), float32


class Seqlet(NamedTuple):
    """A high-contribution window ``x[seq, :, start:end]``; ``score`` is its summed contribution."""

    seq: int
    start: int
    end: int
    score: float


# ----------------------------------------------------------------- attribution


def _as_tensor(x) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() != 3 or x.shape[1] != 4:
        raise GenocnnError(f"expected one-hot DNA of shape (N, 4, L), got {tuple(x.shape)}")
    return x


def _substitutions(x) -> torch.Tensor | np.ndarray:
    """Which (sequence, base, position) are substitutions: not the reference base, not padding."""
    return (x != 1) & (x.sum(1, keepdims=True) > 0)


@torch.no_grad()
def ism_deltas(model, x, task: int | str = 0, batch_size: int = 512) -> np.ndarray:
    """Raw in-silico mutagenesis effects: ``logit(mutant) - logit(reference)``.

    Parameters
    ----------
    model : ConvNet
    x : torch.Tensor or np.ndarray, shape (N, 4, L), float32
        One-hot DNA at the model's input length.
    task : int or str
        Output column (index, or a name from ``model.tasks``).
    batch_size : int
        Mutant sequences per forward pass (results do not depend on it).

    Returns
    -------
    np.ndarray, shape (N, 4, L), float32
        Entry ``[n, b, p]`` is the effect of setting position ``p`` of sequence
        ``n`` to base ``b``. Reference bases and padding (all-zero columns) are
        0; at an ambiguous column (e.g. ``N``) all four bases are scored.

    Examples
    --------
    >>> from genocnn.config import ModelConfig
    >>> from genocnn.models import ConvNet
    >>> net = ConvNet(ModelConfig(), n_tasks=1, length=30).eval()
    >>> ism_deltas(net, one_hot(["ACGT" * 7 + "AC"])).shape
    (1, 4, 30)
    """
    x = _as_tensor(x)
    t = task_index(model, task)
    model.eval()
    device = next(model.parameters()).device
    ref = torch.cat([model(x[i : i + batch_size].to(device))[:, t].float().cpu()
                     for i in range(0, len(x), batch_size)]) if len(x) else torch.zeros(0)
    seq_idx, base_idx, pos_idx = _substitutions(x).nonzero(as_tuple=True)
    deltas = torch.zeros(x.shape)
    for i in range(0, len(seq_idx), batch_size):
        n, b, p = seq_idx[i : i + batch_size], base_idx[i : i + batch_size], pos_idx[i : i + batch_size]
        rows = torch.arange(len(n))
        mutant = x[n]  # advanced indexing copies
        mutant[rows, :, p] = 0.0
        mutant[rows, b, p] = 1.0
        deltas[n, b, p] = model(mutant.to(device))[:, t].float().cpu() - ref[n]
    return deltas.numpy()


def ism_contributions(deltas: np.ndarray, x) -> np.ndarray:
    """Contribution map from ISM effects: ``x * -(mean substitution effect at each position)``.

    Parameters
    ----------
    deltas : np.ndarray, shape (N, 4, L)
        From :func:`ism_deltas`.
    x : array-like, shape (N, 4, L)
        The one-hot sequences the deltas were computed on.

    Returns
    -------
    np.ndarray, shape (N, 4, L), float32
        Non-zero only at the sequence's bases (spread by weight at ambiguous
        columns); positive where substitutions lower the logit.
    """
    x = np.asarray(x, dtype=np.float32)
    n_scored = _substitutions(x).sum(axis=1, keepdims=True)
    mean_effect = deltas.sum(axis=1, keepdims=True) / np.maximum(n_scored, 1)
    return (-mean_effect * x).astype(np.float32)


def ism(model, x, task: int | str = 0, batch_size: int = 512) -> np.ndarray:
    """In-silico mutagenesis contribution map: :func:`ism_contributions` of :func:`ism_deltas`.

    Costs ``3 L`` forward passes per sequence. See :func:`ism_deltas` for the
    parameters; returns np.ndarray, shape (N, 4, L), float32.
    """
    return ism_contributions(ism_deltas(model, x, task, batch_size), x)


def gradient_x_input(model, x, task: int | str = 0, batch_size: int = 256, correct: bool = True) -> np.ndarray:
    """Gradient x input with the mean-gradient correction, via captum.

    Parameters
    ----------
    model : ConvNet
    x : torch.Tensor or np.ndarray, shape (N, 4, L), float32
    task : int or str
    batch_size : int
    correct : bool, default True
        Subtract the mean over the 4 channels from the gradient at each
        position before multiplying by ``x`` (Majdandzic et al. 2023). With
        ``False`` this is captum's ``InputXGradient``.

    Returns
    -------
    np.ndarray, shape (N, 4, L), float32
    """
    from captum.attr import Saliency  # imported here so ``import genocnn`` stays light

    x = _as_tensor(x)
    t = task_index(model, task)
    model.eval()
    device = next(model.parameters()).device
    saliency = Saliency(model)
    out = [torch.zeros(0, *x.shape[1:])]
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device).requires_grad_(True)
        grad = saliency.attribute(xb, target=t, abs=False).detach()
        if correct:
            grad = grad - grad.mean(dim=1, keepdim=True)
        out.append((grad * xb).detach().float().cpu())
    return torch.cat(out).numpy()


def attribute(
    model,
    fasta_or_sequences,
    method: str = "ism",
    task: int | str = 0,
    max_seqs: int | None = None,
    batch_size: int = 512,
) -> Attributions:
    """Contribution maps for sequences, by ISM or corrected gradient x input.

    Parameters
    ----------
    model : ConvNet
    fasta_or_sequences : path, iterable of str or of (id, sequence), or torch.Tensor (N, 4, L)
        Brought to the model's input length as in training.
    method : {"ism", "grad"}
        :func:`ism` or :func:`gradient_x_input`.
    task : int or str
    max_seqs : int or None
        Only the first ``max_seqs`` sequences.
    batch_size : int

    Returns
    -------
    Attributions
        ``ids``, one-hot ``x`` and contributions ``attr``, both (N, 4, L) float32.
    """
    if method not in METHODS:
        raise GenocnnError(f"unknown attribution method {method!r}; use {' or '.join(METHODS)}")
    if isinstance(fasta_or_sequences, torch.Tensor):
        x = _as_tensor(fasta_or_sequences)[:max_seqs]
        ids = [f"seq{i}" for i in range(len(x))]
    else:
        records = list(itertools.islice(iter_records(fasta_or_sequences), max_seqs))
        ids = [name for name, _ in records]
        x = one_hot([s for _, s in records], length=model.length) if records else torch.zeros(0)
    if not len(ids):
        raise GenocnnError(f"{fasta_or_sequences}: no sequences to attribute")
    if method == "ism":
        attr = ism(model, x, task, batch_size)
    else:
        attr = gradient_x_input(model, x, task, batch_size)
    return Attributions(ids, x.numpy(), attr)


def save_attributions(path: str | os.PathLike, ids, x, attr) -> None:
    """Write ``ids``, ``one_hot`` and ``attributions`` to a compressed ``.npz``, atomically.

    Readable with ``np.load(path, allow_pickle=False)``: ids are stored as a
    unicode array, the arrays as float32.
    """
    ids = np.asarray(list(ids), dtype=str)
    x, attr = np.asarray(x, dtype=np.float32), np.asarray(attr, dtype=np.float32)
    if x.shape != attr.shape or len(ids) != len(x):
        raise GenocnnError(f"{path}: {len(ids)} ids, one-hot {x.shape} and attributions {attr.shape} do not match")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a handle: np.savez would append .npz
        np.savez_compressed(fh, ids=ids, one_hot=x, attributions=attr)


def load_attributions(path: str | os.PathLike) -> Attributions:
    """Read a file written by :func:`save_attributions`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return Attributions([str(i) for i in data["ids"]], data["one_hot"], data["attributions"])
    except (OSError, ValueError, KeyError) as exc:
        raise GenocnnError(f"{path}: not a genocnn attributions file ({exc})") from None


def plot_attribution(seq_attr: np.ndarray, path: str | os.PathLike, title: str | None = None) -> None:
    """Draw one sequence's contribution map as a logo (logomaker) or, without it, bars; PNG.

    Parameters
    ----------
    seq_attr : np.ndarray, shape (4, L)
        Contributions (letters scaled by score; negative ones hang below 0).
    path : str or PathLike
        PNG file, written atomically.
    title : str, optional
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    a = np.asarray(seq_attr, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != 4:
        raise GenocnnError(f"expected a (4, L) contribution map, got {a.shape}")
    length = a.shape[1]
    fig = Figure(figsize=(min(max(4.0, 0.12 * length), 40.0), 2.2))
    ax = fig.subplots()
    try:
        import logomaker

        logomaker.Logo(pd.DataFrame(a.T, columns=list(ALPHABET)), ax=ax)
    except ImportError:
        colours = ("tab:green", "tab:blue", "orange", "tab:red")
        for c, base in enumerate(ALPHABET):
            ax.bar(np.arange(length), a[c], width=1.0, color=colours[c], label=base)
        ax.legend(ncol=4, fontsize="small", frameon=False)
    ax.axhline(0.0, color="black", linewidth=0.5)
    ax.set_xlabel("position")
    ax.set_ylabel("contribution")
    if title:
        ax.set_title(title, fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


# --------------------------------------------------------------------- seqlets


def _window_sums(score: np.ndarray, window: int) -> np.ndarray:
    """Sliding sums over the last axis: (N, L) -> (N, L - window + 1)."""
    c = np.concatenate([np.zeros((len(score), 1)), np.cumsum(score, axis=1)], axis=1)
    return c[:, window:] - c[:, :-window]


def seqlet_threshold(contrib: np.ndarray, x, window: int = 10, quantile: float = 0.99, seed: int = 0) -> float:
    """Null cutoff for seqlets: a quantile of |window sums| after shuffling positions.

    Each sequence's per-position scores (padding excluded) are permuted, which
    keeps their distribution but breaks up clusters such as motif sites; the
    cutoff is the ``quantile`` of the absolute window sums of the permuted
    scores (windows inside the sequence only).

    Returns
    -------
    float
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
        Contribution map (``attr`` of :func:`attribute`, i.e. attribution x input).
    x : array-like, shape (N, 4, L)
        The one-hot sequences (padding is left out of the null).
    window : int
        Seqlet width.
    threshold : float or None
        Cutoff on |window sum|; None: :func:`seqlet_threshold` with ``quantile``.

    Returns
    -------
    list of Seqlet
        Per sequence, picked greedily by decreasing |score|, each at least
        ``window`` away from those already picked; ordered by decreasing |score|.
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
    motifs = []
    for k, c in enumerate(kept):
        column = np.abs(c.contrib.sum(axis=0))
        span = np.flatnonzero(column >= trim_fraction * column.max())
        cols = slice(int(span[0]), int(span[-1]) + 1)
        motifs.append(Motif(
            name=f"seqlet_{k}",
            pfm=c.counts[:, cols],
            sites=len(c.members),
            background=UNIFORM_BACKGROUND,
            pseudocount=pseudocount,
            extra={"seqlets": len(c.members), "sign": c.sign, "contribution": c.contrib[:, cols] / len(c.members)},
        ))
    return motifs


def motifs_from_attributions(
    contrib: np.ndarray, x, window: int = 10, threshold: float | None = None, quantile: float = 0.99, **cluster
) -> list[Motif]:
    """:func:`seqlets` then :func:`cluster_seqlets` (keyword arguments go to the latter)."""
    return cluster_seqlets(seqlets(contrib, x, window, threshold, quantile), contrib, x, **cluster)


def attribution_motifs(
    model, sequences, method: str = "ism", task: int | str = 0, max_seqs: int | None = None, **options
) -> list[Motif]:
    """Motifs from a model's contribution maps: :func:`attribute` then :func:`motifs_from_attributions`.

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
        Usually the bound sequences.
    method, task, max_seqs
        As :func:`attribute`.
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


# ---------------------------------------------------------------------- export

SEQLET_COLUMNS = ["motif", "seqlets", "sign", "width", "ic", "consensus",
                  "jaspar_id", "jaspar_name", "p_value", "q_value"]


def _file_names(ids: list[str]) -> list[str]:
    """Safe, distinct file stems for sequence ids."""
    names, seen = [], set()
    for i, name in enumerate(ids):
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or f"seq{i}"
        if stem in seen:
            stem = f"{stem}_{i}"
        seen.add(stem)
        names.append(stem)
    return names


def export_attributions(
    model,
    sequences,
    out_dir: str | os.PathLike,
    method: str = "ism",
    task: int | str = 0,
    max_seqs: int | None = None,
    plot: int = 5,
    db: str | os.PathLike | None = None,
    **options,
) -> pd.DataFrame:
    """Attribute, draw, find seqlet motifs and name them; write everything to ``out_dir``.

    Writes ``attributions.npz`` (:func:`save_attributions`), ``logos/<id>.png``
    for the first ``plot`` sequences, ``seqlet_motifs.meme``, ``.jaspar``,
    ``.transfac`` and ``.motif`` (HOMER) (when any motif is found) and ``seqlets.tsv``
    (the returned table, one row per motif with its best JASPAR match, or
    ``db``'s). Nothing is written if the input is bad. ``**options`` go to
    :func:`motifs_from_attributions`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SEQLET_COLUMNS`.
    """
    from .compare import name_motifs
    from .motif_io import write_motifs

    res = attribute(model, sequences, method, task, max_seqs)
    motifs = motifs_from_attributions(res.attr, res.x, **options)
    matches = name_motifs(motifs, db=db) if motifs else pd.DataFrame()
    best = matches.drop_duplicates("query").set_index("query") if len(matches) else pd.DataFrame()
    rows = []
    for m in motifs:
        hit = best.loc[m.name] if m.name in best.index else None
        if hit is not None:
            m.description = f"{hit['target_id']} {hit['target_name']}"
        rows.append([m.name, m.sites, m.extra["sign"], m.width, round(m.information_content, 3), m.consensus,
                     None if hit is None else hit["target_id"], None if hit is None else hit["target_name"],
                     np.nan if hit is None else float(hit["p_value"]),
                     np.nan if hit is None else float(hit["q_value"])])
    table = pd.DataFrame(rows, columns=SEQLET_COLUMNS)
    out = Path(out_dir)
    save_attributions(out / "attributions.npz", res.ids, res.x, res.attr)
    for i, stem in enumerate(_file_names(res.ids[:plot])):
        plot_attribution(res.attr[i], out / "logos" / f"{stem}.png", title=res.ids[i])
    if motifs:
        for fmt, suffix in (("meme", "meme"), ("jaspar", "jaspar"), ("transfac", "transfac"), ("homer", "motif")):
            write_motifs(motifs, out / f"seqlet_motifs.{suffix}", format=fmt)
    with atomic_open(out / "seqlets.tsv") as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.4g")
    return table
