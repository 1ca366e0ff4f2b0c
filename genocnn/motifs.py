"""First-layer filters -> motifs, and each filter's influence on the predictions.

For each first-layer filter, the input windows where its activation exceeds a
fraction (default 0.5) of its maximum over the given sequences are stacked and
their bases counted (the Basset / Koo & Eddy procedure). Counts form the PFM;
pseudocounts give the PPM and the log-odds PWM against the background.
A filter's influence is the drop of the predictions when its activation is
replaced by its mean (:func:`nullification_effects`), or that of a set of
filters replaced together (:func:`group_nullification`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from .encode import reverse_complement
from .errors import check_count
from .inference import encode_for, evaluating
from .pwm import UNIFORM_BACKGROUND, Motif

class MotifList(list):
    """A list of :class:`Motif` with ``skipped``: {filter index: sites} for filters left out."""

    skipped: dict[int, int]

    def __init__(self, motifs=(), skipped: dict[int, int] | None = None) -> None:
        super().__init__(motifs)
        self.skipped = dict(skipped or {})


def filter_site_counts(
    model, x, threshold: float = 0.5, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Count bases of the windows that activate each first-layer filter.

    A window counts for filter ``f`` when its activation exceeds ``threshold``
    times the filter's maximum activation over all of ``x``; windows more than
    half padding (a sequence shorter than the model) neither count nor set
    the maximum.

    Parameters
    ----------
    model : ConvNet
    x : torch.Tensor, shape (N, 4, L), float32
    threshold : float
    batch_size : int

    Returns
    -------
    counts : np.ndarray, shape (F, 4, k), float64
        Summed one-hot windows (ambiguous bases add fractions, padding nothing).
    sites : np.ndarray, shape (F,), int64
        Number of windows counted per filter.
    """
    k = model.first_conv.kernel_size[0]
    n_filters = model.first_conv.out_channels
    with evaluating(model) as device:
        peak = torch.full((n_filters,), -float("inf"))
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            act = model.first_layer_activations(xb.to(device)).float().cpu()
            act = act.masked_fill(~_in_sequence(xb, k, act.shape[2])[:, None, :], -float("inf"))
            peak = torch.maximum(peak, act.amax(dim=(0, 2)))
        cutoff = threshold * peak
        counts = torch.zeros(n_filters, 4, k, dtype=torch.float64)
        sites = torch.zeros(n_filters, dtype=torch.int64)
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            act = model.first_layer_activations(xb.to(device)).float().cpu()
            hits = (act > cutoff[None, :, None]) & (peak[None, :, None] > 0)
            hits &= _in_sequence(xb, k, act.shape[2])[:, None, :]
            windows = xb.unfold(2, k, 1)  # (B, 4, P, k)
            counts += torch.einsum("bfp,bcpk->fck", hits.double(), windows.double())
            sites += hits.sum(dim=(0, 2))
    return counts.numpy(), sites.numpy()


def _in_sequence(x: torch.Tensor, k: int, positions: int) -> torch.Tensor:
    """Windows (B, P) of ``k`` columns at least half inside the sequence (padding columns are all zero)."""
    inside = x.sum(dim=1).unfold(1, k, 1).sum(dim=2) >= k / 2  # a base or ambiguity code sums to 1
    return inside[:, :positions]


def extract_motifs(
    model,
    sequences,
    threshold: float = 0.5,
    min_sites: int = 10,
    pseudocount: float = 1.0,
    background=UNIFORM_BACKGROUND,
    batch_size: int = 256,
) -> MotifList:
    """Turn each first-layer filter of ``model`` into a motif.

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
        Sequences whose windows are counted (usually the bound ones).
    threshold : float
        Fraction of each filter's maximum activation a window must exceed.
    min_sites : int
        Filters with fewer windows are skipped (listed in ``.skipped``).
    pseudocount : float
        Total pseudocount per column, split by ``background``.
    background : 4 floats

    Returns
    -------
    MotifList
        Motifs named ``filter_<i>`` in filter order; ``extra["filter"]`` is the
        filter index.
    """
    check_count("batch_size", batch_size)
    x = encode_for(model, sequences)
    counts, sites = filter_site_counts(model, x, threshold, batch_size)
    motifs, skipped = [], {}
    for f in range(len(sites)):
        if sites[f] < min_sites:
            skipped[f] = int(sites[f])
            continue
        motifs.append(
            Motif(
                name=f"filter_{f}",
                pfm=counts[f],
                sites=int(sites[f]),
                background=tuple(background),
                pseudocount=pseudocount,
                extra={"filter": f},
            )
        )
    return MotifList(motifs, skipped)


class NullificationEffects(NamedTuple):
    """What nullifying each first-layer filter does to a model's output.

    Attributes
    ----------
    influence : np.ndarray, shape (F, T), float64
        Mean decrease of the predicted probability per filter and task.
    loss_change : np.ndarray, shape (F,), float64
        Mean increase of the binary cross-entropy (averaged over tasks) against
        the labels; positive = the model does worse without the filter.
    """

    influence: np.ndarray
    loss_change: np.ndarray


def nullification_effects(model, sequences, labels=None, batch_size: int = 256) -> NullificationEffects:
    """Nullify each first-layer filter in turn and measure predictions and loss.

    Each filter's activation is replaced by its mean over all sequences and
    positions (Basset-style nullification).

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
    labels : array-like, shape (N, T) or (N,), optional
        0/1 labels for the loss change. None treats every sequence as bound
        (label 1 for every task), e.g. for the peaks given to ``genocnn motifs``.
    batch_size : int

    Returns
    -------
    NullificationEffects
    """
    check_count("batch_size", batch_size)
    x = encode_for(model, sequences)
    n_filters = model.first_conv.out_channels
    y = None if labels is None else torch.as_tensor(np.asarray(labels, dtype=np.float32))
    if y is not None and y.ndim == 1:
        y = y[:, None]
    if y is not None and len(y) != len(x):
        raise ValueError(f"labels has {len(y)} rows for {len(x)} sequences")
    influence = np.zeros((n_filters, model.n_tasks))
    loss_change = np.zeros(n_filters)
    with evaluating(model) as device:
        means = _filter_means(model, x, batch_size, device)
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device)
            replay = _first_layer_replay(model, xb)
            logits = replay()
            yb = torch.ones_like(logits) if y is None else y[i : i + batch_size].to(device).expand_as(logits)
            base, base_loss = torch.sigmoid(logits), _bce(logits, yb)
            for f in range(n_filters):
                nulled = replay(f, means[f])
                influence[f] += (base - torch.sigmoid(nulled)).sum(dim=0).double().cpu().numpy()
                loss_change[f] += float((_bce(nulled, yb) - base_loss).sum())
    n = max(len(x), 1)
    return NullificationEffects(influence / n, loss_change / n)


def group_nullification(model, sequences, groups, batch_size: int = 256,
                        per_sequence_in: Sequence[int] | None = None) -> np.ndarray:
    """Nullify each group of first-layer filters at once and measure the drop of the predictions.

    Every filter of a group has its activation replaced by its own mean over
    all sequences and positions at the same time (Basset-style nullification
    of a set of filters); filters outside the group are left alone. A group
    of one filter gives that filter's ``nullification_effects`` influence.

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
    groups : sequence of sequences of int
        Filter indices of each group (G groups).
    batch_size : int
    per_sequence_in : sequence of int, optional
        One task index per group: return every sequence's decrease in its
        group's task instead of the means.

    Returns
    -------
    np.ndarray, shape (G, T), float64, or (G, N) float32 with ``per_sequence_in``
        Mean decrease of the predicted probability per group and task.
    """
    x = encode_for(model, sequences)
    groups = [torch.as_tensor(list(g), dtype=torch.long) for g in groups]
    influence = np.zeros((len(groups), model.n_tasks))
    drops = None if per_sequence_in is None else np.zeros((len(groups), len(x)), dtype=np.float32)
    with evaluating(model) as device:
        means = _filter_means(model, x, batch_size, device)
        for i in range(0, len(x), batch_size):
            replay = _first_layer_replay(model, x[i : i + batch_size].to(device))
            base = torch.sigmoid(replay())
            for g, members in enumerate(groups):
                nulled = torch.sigmoid(replay(members.to(device), means[members.to(device)]))
                if drops is None:  # sum on the device: one (T,) copy per group and batch
                    influence[g] += (base - nulled).sum(dim=0).double().cpu().numpy()
                else:
                    drops[g, i : i + len(base)] = (base - nulled)[:, per_sequence_in[g]].float().cpu().numpy()
    return influence / max(len(x), 1) if drops is None else drops


def _filter_means(model, x: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    """Mean first-layer activation per filter over all sequences and positions: shape (F,), on ``device``."""
    total = torch.zeros(model.first_conv.out_channels, dtype=torch.float64)
    positions = 0
    for i in range(0, len(x), batch_size):
        act = model.first_layer_activations(x[i : i + batch_size].to(device)).float()
        total += act.sum(dim=(0, 2)).double().cpu()
        positions += act.shape[0] * act.shape[2]
    return (total / max(positions, 1)).float().to(device)


def _first_layer_replay(model, xb: torch.Tensor):
    """Logits with first-layer filters set to values, without recomputing the first layer.

    The first layer's activations of ``xb`` (and of its reverse complement
    when the model averages strands) are computed once; each call replays
    only :meth:`~genocnn.models.ConvNet.after_first_layer`, about 10x faster
    than a full forward pass.

    Returns
    -------
    callable (filters=None, values=None) -> torch.Tensor (B, T)
        ``filters``: one filter index, or a sequence / long tensor of indices
        set together; ``values``: a scalar, or one value per filter. With no
        filter: the model's own logits of ``xb``.
    """
    acts = [model.first_layer_activations(xb)]
    if model.averages_strands:
        acts.append(model.first_layer_activations(reverse_complement(xb)))

    def replay(f=None, value=None) -> torch.Tensor:
        out = []
        for a in acts:
            if f is not None:
                a = a.clone()
                if isinstance(f, (int, np.integer)):
                    a[:, f, :] = value
                else:
                    a[:, f, :] = torch.as_tensor(value, dtype=a.dtype, device=a.device).reshape(-1, 1)
            out.append(model.after_first_layer(a).float())
        return out[0] if len(out) == 1 else 0.5 * (out[0] + out[1])

    return replay


def _bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per sequence, averaged over tasks: shape (B,)."""
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return loss.mean(dim=1).double()


def filter_influence(model, sequences, batch_size: int = 256, per_task: bool = False) -> np.ndarray:
    """Per-filter influence: how much predictions drop when a filter is nullified.

    Each first-layer filter's activation is replaced by its mean over all
    sequences and positions (Basset-style nullification); the influence is the
    mean decrease of the predicted probability, averaged over tasks unless
    ``per_task``. See :func:`nullification_effects` for the loss change too.

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
    batch_size : int
    per_task : bool
        Return one column per task instead of the mean over tasks.

    Returns
    -------
    np.ndarray, shape (F,), or (F, T) when ``per_task``
        Larger = the model relies more on that filter for binding calls.
    """
    influence = nullification_effects(model, sequences, batch_size=batch_size).influence
    return influence if per_task else influence.mean(axis=1)
