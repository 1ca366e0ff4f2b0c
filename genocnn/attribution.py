"""Attribution maps: which bases drive a prediction.

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

The motifs these maps form are in :mod:`genocnn.seqlets`; the ``.npz`` file,
the plots and the files of ``genocnn attribute`` in
:mod:`genocnn.attribution_files`.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import torch

from .encode import one_hot
from .errors import GenocnnError, check_count
from .fasta import iter_records
from .inference import evaluating, predict_logits
from .models import task_index

METHODS = ("ism", "grad")


class Attributions(NamedTuple):
    """Sequences and their contribution maps, from :func:`attribute`."""

    ids: list[str]
    x: np.ndarray  #: one-hot, shape (N, 4, L), float32
    attr: np.ndarray  #: contributions, shape (N, 4, L), float32


def _as_tensor(x) -> torch.Tensor:
    """``x`` as a float32 tensor, checked to be of shape (N, 4, L)."""
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.dim() != 3 or x.shape[1] != 4:
        raise GenocnnError(f"expected one-hot DNA of shape (N, 4, L), got {tuple(x.shape)}")
    return x


def _substitutions(x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Which (sequence, base, position) are substitutions: not the reference base, not padding.

    Parameters
    ----------
    x : torch.Tensor or np.ndarray, shape (N, 4, L)

    Returns
    -------
    bool tensor or array, shape (N, 4, L)
    """
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
    ref = predict_logits(model, x, batch_size)[:, t] if len(x) else torch.zeros(0)
    seq_idx, base_idx, pos_idx = _substitutions(x).nonzero(as_tuple=True)
    deltas = torch.zeros(x.shape)
    with evaluating(model) as device:
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

    Examples
    --------
    >>> x = one_hot(["AC"]).numpy()
    >>> deltas = np.zeros_like(x); deltas[0, 1:, 0] = -1.0  # every substitution of the A costs 1
    >>> ism_contributions(deltas, x).sum(axis=1).tolist()
    [[1.0, 0.0]]
    """
    x = np.asarray(x, dtype=np.float32)
    n_scored = _substitutions(x).sum(axis=1, keepdims=True)
    mean_effect = deltas.sum(axis=1, keepdims=True) / np.maximum(n_scored, 1)
    return (-mean_effect * x).astype(np.float32)


def ism(model, x, task: int | str = 0, batch_size: int = 512) -> np.ndarray:
    """In-silico mutagenesis contribution map: :func:`ism_contributions` of :func:`ism_deltas`.

    Costs ``3 L`` forward passes per sequence.

    Parameters
    ----------
    model : ConvNet
    x : torch.Tensor or np.ndarray, shape (N, 4, L), float32
    task : int or str
    batch_size : int

    Returns
    -------
    np.ndarray, shape (N, 4, L), float32
    """
    check_count("batch_size", batch_size)
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
    check_count("batch_size", batch_size)
    from captum.attr import Saliency  # imported here so ``import genocnn`` stays light

    x = _as_tensor(x)
    t = task_index(model, task)
    saliency = Saliency(model)
    out = [torch.zeros(0, *x.shape[1:])]
    with evaluating(model, grad=True) as device:
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
    check_count("batch_size", batch_size)
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
