"""Calls on the device: runs of windows at or above a threshold, found where the scores are.

A genome scan (:func:`genocnn.scanning.scan_genome`) thresholds each chunk's
window probabilities from :class:`~genocnn.scanengine.Engine` where they are,
and only the runs (first and last window, best score, its window and strand)
come back to :class:`~genocnn.sites.SiteCaller`. :func:`runs_on_device` finds
them at once; :class:`PendingRuns` finds them on CUDA without waiting for the
device, so the host reads them back while the device scores the next chunk.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .sites import Runs

__all__ = ["MAX_RUNS", "PendingRuns", "running", "runs_on_device"]


def runs_on_device(p: torch.Tensor, strand: torch.Tensor, threshold: float) -> Runs:
    """Runs of ``p >= threshold`` (NaN never is), found on ``p``'s device; only the runs are copied back.

    Parameters
    ----------
    p : torch.Tensor, shape (n,)
        One task's probabilities.
    strand : torch.Tensor, shape (n,), int8
    threshold : float

    Examples
    --------
    >>> p = torch.tensor([.1, .7, .9, .2, .6])
    >>> r = runs_on_device(p, torch.ones(5, dtype=torch.int8), 0.5)
    >>> r.begin.tolist(), r.end.tolist(), r.best_at.tolist()
    ([1, 4], [3, 5], [2, 4])
    """
    return Runs(*(t.cpu().numpy() for t in _run_tensors(p, strand, threshold)[1:]))


#: Runs per chunk found without waiting for the device (:class:`PendingRuns`); a chunk with more
#: (a threshold that calls a large share of its windows) is redone by :func:`runs_on_device`.
MAX_RUNS = 2**16


class PendingRuns:
    """A chunk's runs of ``p >= threshold``, found on the device and copied back while it goes on working.

    On CUDA nothing here waits for the device: the runs are found with fixed-size outputs (at most
    :data:`MAX_RUNS`) and copied into pinned host memory behind the chunk's own work; :meth:`result`
    waits for that copy only, so the device can already be scoring the next chunk. Elsewhere the
    runs are found at once (:func:`runs_on_device`). Both give the same :class:`~genocnn.sites.Runs`.

    Parameters
    ----------
    p : torch.Tensor, shape (n,)
        One task's probabilities (NaN: not scored).
    strand : torch.Tensor, shape (n,), int8
    threshold : float
    values : bool
        Also copy ``p`` back (for a track): :attr:`values` after :meth:`result`.
    defer : bool, optional
        Find the runs with fixed-size outputs, read at :meth:`result` (default: on CUDA).

    Examples
    --------
    >>> p = torch.tensor([.1, .7, .9, .2, .6])
    >>> r = PendingRuns(p, torch.ones(5, dtype=torch.int8), 0.5).result()
    >>> r.begin.tolist(), r.end.tolist(), r.best_at.tolist()
    ([1, 4], [3, 5], [2, 4])
    """

    def __init__(self, p: torch.Tensor, strand: torch.Tensor, threshold: float, values: bool = False,
                 defer: bool | None = None) -> None:
        self.p, self.strand, self.threshold = p, strand, threshold
        self.values: np.ndarray | None = None
        self._runs = self._event = None
        cuda = p.device.type == "cuda"
        if not (cuda if defer is None else defer):
            self._runs = runs_on_device(p, strand, threshold)
            self.values = p.cpu().numpy() if values else None
            return
        found = _run_tensors(p, strand, threshold, MAX_RUNS)
        self._host = [torch.empty(t.shape, dtype=t.dtype, pin_memory=cuda).copy_(t, non_blocking=cuda)
                      for t in (*found, *([p] if values else []))]
        if cuda:
            self._event = torch.cuda.Event()
            self._event.record()

    def result(self) -> Runs:
        """The runs (waiting for this chunk's copy only); :attr:`values` is filled too when asked for."""
        if self._runs is None:
            if self._event is not None:
                self._event.synchronize()
            count, begin, end, best, best_at, strand, *values = self._host
            k = int(count)
            if k > MAX_RUNS:
                self._runs = runs_on_device(self.p, self.strand, self.threshold)
            else:
                self._runs = Runs(begin[:k].numpy(), end[:k].numpy(), best[:k].numpy(), best_at[:k].numpy(),
                                  strand[:k].numpy())
            self.values = values[0].numpy() if values else None
            self.p = self.strand = self._host = None
        return self._runs


def running(op, x: torch.Tensor, width: int = 1024) -> torch.Tensor:
    """Running ``op`` (``torch.maximum`` or ``torch.minimum``) of a 1-D tensor: ``out[i] = op(x[0], ..., x[i])``.

    As rows of ``width``, each row's own running values in parallel, then each row combined with the
    running value of the rows before it: a 1-D ``torch.cummax`` of millions of values runs as one
    sequential scan on a GPU (tens of ms per 4M windows).

    Examples
    --------
    >>> running(torch.maximum, torch.tensor([3, 1, 4, 1, 5, 9, 2, 6]), width=3).tolist()
    [3, 3, 4, 4, 5, 9, 9, 9]
    """
    scan = torch.cummax if op is torch.maximum else torch.cummin
    n = x.shape[0]
    rows = max(1, -(-n // width))
    part = scan(F.pad(x, (0, rows * width - n)).view(rows, width), 1).values
    if rows > 1:
        before = scan(part[:, -1], 0).values[:-1]  # running value up to the end of each earlier row
        part[1:] = op(part[1:], before[:, None])
    return part.reshape(-1)[:n]


def _run_tensors(p: torch.Tensor, strand: torch.Tensor, threshold: float, size: int | None = None
                 ) -> tuple[torch.Tensor, ...]:
    """The run count (1,) and ``begin, end, best, best_at, strand`` of the runs of ``p >= threshold``, on
    ``p``'s device.

    ``size`` None: as many as there are (finding them waits for the device). Otherwise each is
    (``size``,), with no host sync: entries past the count are padding, and all are wrong when the
    count exceeds ``size``.
    """
    n = p.shape[0]
    mask = p >= threshold
    edges = torch.diff(F.pad(mask.to(torch.int8), (1, 1)))
    count = (edges == 1).sum().reshape(1)
    if size is None:
        begin, end = torch.nonzero(edges == 1)[:, 0], torch.nonzero(edges == -1)[:, 0]
        if not len(begin):
            return count, begin, end, p.new_zeros(0), begin, strand[:0]
        size = len(begin)
    else:
        begin = torch.nonzero_static(edges == 1, size=size, fill_value=n)[:, 0]
        end = torch.nonzero_static(edges == -1, size=size, fill_value=n)[:, 0]
    run = (torch.cumsum(edges[:-1] == 1, 0) - 1).clamp_(0, size - 1)  # each window's run (or the one before)
    # each run's best without atomics (one run can hold millions of windows): a running max of
    # (run, value) keys read at its last window; windows outside runs count as 0, below any
    # probability (bits of probabilities >= 0 sort as they do)
    bits = torch.where(mask, p.float().view(torch.int32).long(), 0)
    top = running(torch.maximum, (run << 32) | bits)
    best_bits = top[(end - 1).clamp_(0, max(n - 1, 0))] & 0xFFFFFFFF
    best = best_bits.to(torch.int32).view(torch.float32)
    hit = mask & (bits == best_bits[run])
    # the first hit at or after each window: a running min from the right
    after = running(torch.minimum, torch.where(hit, torch.arange(n, device=p.device), n).flip(0)).flip(0)
    best_at = after[begin.clamp(max=max(n - 1, 0))]
    return count, begin, end, best.to(p.dtype), best_at, strand[best_at.clamp(max=max(n - 1, 0))]
