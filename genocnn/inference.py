"""The one inference primitive: run a model in eval mode on a device, and leave it as it was.

Every analysis (prediction, motifs, attribution, scanning, variant effects)
runs the network through :func:`evaluating` or :func:`predict_logits`, so no
caller repeats the device lookup or forgets to undo ``.eval()``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from .devices import resolve_device
from .encode import MIN_BASE_FRACTION, base_fraction, one_hot
from .fasta import iter_records

__all__ = ["encode_for", "evaluating", "model_device", "predict_logits"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters (CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@contextlib.contextmanager
def evaluating(
    model: nn.Module, device: str | torch.device | None = None, grad: bool = False
) -> Iterator[torch.device]:
    """Put ``model`` in eval mode on ``device`` for the block; restore its mode and device after.

    Parameters
    ----------
    model : nn.Module
    device : str or torch.device, optional
        Where to run (``"auto"``, ``"cpu"``, ``"cuda:0"``, ...); default: where the model is.
    grad : bool
        Keep autograd on (for gradients with respect to the input); off by default.

    Yields
    ------
    torch.device
        The device the model runs on inside the block.

    Examples
    --------
    >>> net = nn.Linear(2, 1).train()
    >>> with evaluating(net) as dev:
    ...     net.training, dev.type
    (False, 'cpu')
    >>> net.training
    True
    """
    before, was_training = model_device(model), model.training
    target = before if device is None else resolve_device(device)
    model.to(target).eval()
    try:
        with torch.set_grad_enabled(grad):
            yield target
    finally:
        model.to(before).train(was_training)


def predict_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int = 256, device: str | torch.device | None = None,
    on_device: bool = False,
) -> torch.Tensor:
    """Eval-mode logits for an encoded batch, computed in chunks on ``device``.

    Parameters
    ----------
    model : nn.Module
        Maps (B, 4, L) to (B, T).
    x : torch.Tensor, shape (N, 4, L)
    batch_size : int
    device : optional
        Default: where the model is.
    on_device : bool
        Leave the logits where they were computed (one tensor, no copy per
        chunk, no wait for the device); by default they come back to the CPU.

    Returns
    -------
    torch.Tensor, shape (N, T), float32, on the CPU (or on ``device`` with ``on_device``)
    """
    with evaluating(model, device) as dev:
        out = []
        for i in range(0, len(x), batch_size):
            logits = model(x[i : i + batch_size].to(dev, non_blocking=True)).float()
            out.append(logits if on_device else logits.cpu())
    n_tasks = getattr(model, "n_tasks", 1)
    return torch.cat(out) if out else torch.zeros(0, n_tasks, device=dev if on_device else "cpu")


def encode_for(model, sequences) -> torch.Tensor:
    """Sequences (path, strings, (id, seq) pairs or a tensor) -> (N, 4, L) at the model's length."""
    if isinstance(sequences, torch.Tensor):
        return sequences
    seqs = [s for _, s in iter_records(sequences)]
    thin = sum(base_fraction(s, model.length) < MIN_BASE_FRACTION for s in seqs)
    if thin:
        warnings.warn(f"{thin} of {len(seqs)} sequences are less than half A/C/G/T at the model length "
                      f"{model.length} (N runs, or shorter than it and padded): what they give is mostly padding",
                      stacklevel=2)
    return one_hot(seqs, length=model.length)
