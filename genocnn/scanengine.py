"""Window scores computed where the model lives: one-hot, logits, sigmoid, strands and calls on the device.

The scan engine behind :func:`genocnn.scanning.scan` and :func:`~genocnn.scanning.scan_genome`.
A chunk of a record goes to the device as 1-byte codes (:func:`expand_codes`
one-hot encodes them there, with :func:`~genocnn.encode.one_hot`'s numbers); what
comes back is either every window's probabilities (:meth:`Engine.chunk_scores`) or,
for a genome scan, only the runs of windows at or above a threshold
(:mod:`genocnn.scanruns`) and optionally one task's track as float32.

Logits (:meth:`Engine.logits`)
------------------------------
*Flat models* (one conv block, max or no pooling, global max: the default
model) need no pooling tree: the max over a window of max-pooled features is
the max of the conv map over the positions the window covers, partial
``ceil_mode`` pools included. So one convolution over the chunk (batch norm
folded into it in eval mode; the reverse strand as a second set of filters, the
forward filters reverse-complemented, whose map read in forward coordinates
covers the same positions), one sliding max of width ``C`` (the conv positions
in a window), the activation (monotone, so it commutes with the max), and the
dense head per window, in blocks of :data:`BLOCK` windows.

- On CPU the max is by log-doubling (:func:`sliding_max`: ``log2 C``
  elementwise maxima, not ``C`` per position), the head takes features as
  columns (no transposes) and runs once per run of neighbouring windows with
  identical features (:func:`distinct_columns`: about half of them, since a
  filter's window maximum rarely changes in one step).
- On CUDA one Triton kernel takes the max, bias and ReLU in about three
  memory passes (:func:`genocnn.windowmax.window_max`; :func:`strided_max`
  where it cannot be built), and the head takes windows as rows, its bias and
  ReLU fused into the matrix product.

Other models use :func:`genocnn.tiling.fast_logits` (pooling tree) or,
without global pooling, batched naive windows.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .encode import MIN_BASE_FRACTION, codes_to_one_hot, encode_codes, is_base_code, reverse_complement
from .models import ConvNet
from .tiling import fast_logits, naive_logits, plan

__all__ = ["Engine", "distinct_columns", "doubling_max", "expand_codes", "sliding_max", "strided_max", "text_codes"]

#: Windows per block of conv, sliding max and head (flat models), by device type: on CPU the
#: block's conv map and hidden layer stay in cache; on CUDA launches are large.
BLOCK = {"cpu": 2048, "cuda": 2**19}
#: Window starts per chunk (one copy to the device, one thresholding) by device type.
CHUNK = {"cpu": 2**15, "cuda": 2**22}
DEFAULT_CHUNK = 2**17

def text_codes(text: str) -> torch.Tensor:
    """1-byte codes (:func:`~genocnn.encode.encode_codes`) of one text, shape (n,), uint8, on the host."""
    return torch.from_numpy(encode_codes(text, len(text))[0]) if text else torch.zeros(0, dtype=torch.uint8)


def expand_codes(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot (as :func:`~genocnn.encode.one_hot`) and A/C/G/T flags of 1-byte codes, on their device.

    Parameters
    ----------
    codes : torch.Tensor, shape (n,), uint8

    Returns
    -------
    x : torch.Tensor, shape (1, 4, n), float32
    base : torch.Tensor, shape (n,), bool
        The position is A, C, G, T (or U), any case.

    Examples
    --------
    >>> from genocnn.encode import one_hot
    >>> x, base = expand_codes(text_codes("ACgN"))
    >>> torch.equal(x, one_hot("ACgN")), base.tolist()
    (True, [True, True, True, False])
    """
    return codes_to_one_hot(codes[None]), is_base_code(codes)


def sliding_max(x: torch.Tensor, width: int) -> torch.Tensor:
    """Max over every run of ``width`` consecutive columns: (C, n) -> (C, n - width + 1).

    On the CPU by log-doubling: ``ceil(log2(width))`` elementwise maxima over the map (each
    vectorised, the map a block that stays in cache). On a GPU, where each pass over the map costs
    memory bandwidth, in two reductions over strided views (:func:`strided_max`).

    Examples
    --------
    >>> sliding_max(torch.tensor([[1., 5, 2, 0, 3, 1]]), 3)
    tensor([[5., 5., 3., 3.]])
    """
    if x.device.type != "cpu" and width > 2:
        return strided_max(x, width)
    return doubling_max(x, width)


def doubling_max(x: torch.Tensor, width: int) -> torch.Tensor:
    """:func:`sliding_max` by log-doubling on any device: ``ceil(log2(width))`` elementwise maxima."""
    span = 1
    while span * 2 <= width:
        x = torch.maximum(x[:, : x.shape[1] - span], x[:, span:])
        span *= 2
    if span < width:
        x = torch.maximum(x[:, : x.shape[1] - (width - span)], x[:, width - span :])
    return x


def strided_max(x: torch.Tensor, width: int) -> torch.Tensor:
    """:func:`sliding_max` in two passes: maxima of ``a ~ sqrt(width)`` neighbours, then of those ``a`` apart.

    ``y[i] = max x[i : i + a]``, and the window ``x[i : i + width]`` is covered by ``y`` at
    ``i, i + a, ..., i + (b - 1) a`` and ``i + width - a`` (overlaps do not change a maximum).

    Examples
    --------
    >>> x = torch.randn(3, 300)
    >>> all(torch.equal(strided_max(x, w), sliding_max(x, w)) for w in (3, 7, 16, 186))
    True
    """
    x = x.contiguous()
    a = max(2, round(width**0.5))
    c, n = x.shape
    y = x.as_strided((c, n - a + 1, a), (n, 1, 1)).amax(2)
    b, m = (width - 1) // a, n - width + 1
    z = y.as_strided((c, m, b), (y.shape[1], 1, a)).amax(2)
    return torch.maximum(z, y[:, width - a : width - a + m], out=z)


def distinct_columns(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns of ``h`` that differ from their left neighbour, and where each column's copy is.

    Neighbouring windows share all but one position, so their max-pooled features are often
    identical (a filter's window maximum changes when it enters or leaves the window: about
    ``2 / C`` of the steps for each of ``F`` filters). The head then runs on the distinct
    columns only, and ``head(kept)[:, group]`` equals ``head(h)`` exactly.

    Parameters
    ----------
    h : torch.Tensor, shape (F, n)

    Returns
    -------
    kept : torch.Tensor, shape (F, u)
    group : torch.Tensor, shape (n,), int64
        ``kept[:, group[j]]`` equals ``h[:, j]``.

    Examples
    --------
    >>> kept, group = distinct_columns(torch.tensor([[1., 1, 2, 2, 1], [0, 0, 0, 3, 3]]))
    >>> kept.tolist(), group.tolist()
    ([[1.0, 2.0, 2.0, 1.0], [0.0, 0.0, 3.0, 3.0]], [0, 0, 1, 2, 3])
    """
    new = torch.ones(h.shape[1], dtype=torch.bool, device=h.device)
    if h.shape[1] > 1:  # a sum of |differences| is 0 exactly when every difference is (NaN never is)
        torch.ne(torch.sub(h[:, 1:], h[:, :-1]).abs_().sum(0), 0, out=new[1:])
    group = torch.cumsum(new, 0) - 1
    return h.index_select(1, torch.nonzero(new)[:, 0]), group


@dataclass(frozen=True)
class _Flat:
    """A flat model, prepared: strand-stacked folded conv, activation, head layers."""

    weight: torch.Tensor  # (2F or F, 4, K): forward filters, then reverse-complemented ones
    bias: torch.Tensor
    dilation: int
    width: int  # conv positions in one window
    activation: nn.Module
    layers: list  # each Linear: (weight (out, in), -bias (out, 1)) for hidden ones (see _flat), bias for the last
    linears: list  # each Linear as it is: (weight (out, in), bias (out,)), for the head with windows as rows


def _flat(model: ConvNet) -> _Flat | None:
    """The model as a :class:`_Flat`, or None when it is not one (several blocks, avg pooling, no global max)."""
    stages = model.conv_stages()
    if len(stages) != 1 or model.config.global_pool != "max" or isinstance(stages[0].pool, nn.AvgPool1d):
        return None
    conv, post, _ = stages[0]
    norm, activation = post[0], post[1]
    if conv.padding != (0,) or conv.stride != (1,) or conv.groups != 1:
        return None
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else weight.new_zeros(weight.shape[0])
    if isinstance(norm, nn.BatchNorm1d):  # eval mode: an affine map per channel, folded into the conv
        scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
        weight, bias = weight * scale[:, None, None], (bias - norm.running_mean) * scale + norm.bias.detach()
    if model.config.rc_average:
        weight, bias = torch.cat([weight, weight.flip(1, 2)]), torch.cat([bias, bias])
    linears, mods = [], [m for m in model.head if not isinstance(m, (nn.Flatten, nn.Dropout))]
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear) and (i == len(mods) - 1 or isinstance(mods[i + 1], nn.ReLU)):
            linears.append((m.weight.detach(), m.bias.detach()))
        elif not isinstance(m, nn.ReLU):
            return None
    # relu(W h + c) = max(W h, -c) + c, and the + c moves into the next layer's bias: no bias pass per hidden layer
    layers, carry = [], None
    for i, (w, b) in enumerate(linears):
        c = b[:, None] if carry is None else b[:, None] + w @ carry
        layers.append((w, -c if i < len(linears) - 1 else c))
        carry = c
    span = conv.dilation[0] * (conv.kernel_size[0] - 1)
    return _Flat(weight.contiguous(), bias.contiguous(), conv.dilation[0], model.length - span, activation, layers,
                 linears)


def _head_columns(flat: _Flat, h: torch.Tensor) -> torch.Tensor:
    """Logits (T, nb) of features ``h`` (F, nb), windows as columns (CPU: the hidden layers' blocks stay in
    cache, and the head runs on distinct columns only: about half the windows repeat their left
    neighbour's features; other non-CUDA devices: every column, finding them would wait for the device)."""
    h, group = distinct_columns(h) if h.device.type == "cpu" else (h, None)
    for w, floor in flat.layers[:-1]:
        h = torch.mm(w, h)
        h = torch.maximum(h, floor, out=h)
    w, bias = flat.layers[-1]
    logits = torch.addmm(bias, w, h)
    return logits if group is None else logits.index_select(1, group)


def _head_rows(flat: _Flat, h: torch.Tensor) -> torch.Tensor:
    """Logits (T, nb) of features ``h`` (F, nb), windows as rows (GPU: bias and ReLU in the matrix product's
    epilogue, where this torch fuses them)."""
    h = h.T
    for w, b in flat.linears[:-1]:
        h = _addmm_relu(b, h, w.T)
    w, b = flat.linears[-1]
    return torch.addmm(b, h, w.T).T


def _addmm_relu(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``relu(bias + a @ b)``, fused (cuBLASLt epilogue) where torch has ``_addmm_activation``."""
    fused = getattr(torch, "_addmm_activation", None)
    return fused(bias, a, b) if fused is not None else torch.addmm(bias, a, b).relu_()


class Engine:
    """One scan's model on its device, turning a chunk of codes into window scores.

    Parameters
    ----------
    model : ConvNet
        In eval mode, on ``device``.
    stride : int
    batch_size : int
        Windows per batch for the naive fallback (no global pooling).
    device : torch.device

    On CPU with several torch threads, a flat model's blocks run on that many
    worker threads (one block each, every op single-threaded); :meth:`close` stops them.
    """

    def __init__(self, model: ConvNet, stride: int, batch_size: int, device: torch.device) -> None:
        self.model, self.stride, self.batch_size, self.device = model, stride, batch_size, device
        self.flat = _flat(model)
        self.stages = plan(model) if self.flat is None and model.config.global_pool in ("max", "avg") else None
        self.block = BLOCK.get(device.type, 2**16)
        self.rc = bool(model.config.rc_average)
        self._threads = torch.get_num_threads()
        self._pool = None
        self._kernel = device.type == "cuda"  # windowmax's Triton kernel, until it fails to build
        if self.flat is not None and device.type == "cpu" and self._threads > 1:
            self._pool = ThreadPoolExecutor(self._threads, initializer=torch.set_num_threads, initargs=(1,))
            torch.set_num_threads(1)  # no OpenMP team beside the workers (its spinning threads would take their cores)

    def chunk_size(self, requested: int | None) -> int:
        """Window starts per chunk: ``requested``, else the device's default (:data:`CHUNK`).

        With CPU worker threads the default grows with their number (16 blocks each per chunk), so the
        main thread's fixed work between chunks stays small beside theirs.
        """
        if requested is not None:
            return requested
        return CHUNK.get(self.device.type, DEFAULT_CHUNK) * (self._threads if self._pool is not None else 1)

    def _flat_block(self, x: torch.Tensor, nb: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Forward and reverse logits (T, nb) of the first ``nb`` windows of ``x``: conv, window max, head."""
        flat = self.flat
        k = flat.weight.shape[2]
        m = x.shape[2] - flat.dilation * (k - 1)  # conv positions
        cols = x[0].as_strided((4, k, m), (x.stride(1), flat.dilation, 1)).reshape(4 * k, m)
        c = torch.mm(flat.weight.reshape(flat.weight.shape[0], -1), cols)  # the conv as one matmul
        feat = self._features(c, nb)
        out = []
        for h in feat.chunk(2 if self.rc else 1):  # (F, nb) features of one strand
            out.append(_head_rows(flat, h) if h.device.type == "cuda" else _head_columns(flat, h))
        return out[0], (out[1] if self.rc else None)

    def _features(self, c: torch.Tensor, nb: int) -> torch.Tensor:
        """The activation of each window's maximum of the conv map ``c`` (2F, positions) plus bias: (2F, nb).

        The bias is added to the windows' maxima, not to the whole map (``max(c + b) = max(c) + b``),
        and the activation, monotone, commutes with the max. On CUDA one Triton kernel does it all
        (:func:`~genocnn.windowmax.window_max`).
        """
        flat, stride = self.flat, self.stride
        if self._kernel:
            try:
                from .windowmax import window_max

                relu = isinstance(flat.activation, nn.ReLU)
                feat = window_max(c, flat.width, flat.bias, relu)[:, : stride * (nb - 1) + 1 : stride]
                return feat if relu else flat.activation(feat)
            except Exception as error:  # no Triton, or no compiler for it: the torch path below, same numbers
                self._kernel = False
                warnings.warn(f"scan: the GPU window-max kernel is unavailable ({error}); using torch's ops")
        return flat.activation(sliding_max(c, flat.width)[:, : stride * (nb - 1) + 1 : stride] + flat.bias[:, None])

    @torch.inference_mode()
    def _block_scores(self, codes: torch.Tensor, a: int, nb: int, probs: torch.Tensor, strand: torch.Tensor) -> None:
        """Windows ``a .. a + nb - 1`` of a chunk, from codes to probabilities and strands (in place)."""
        x, base = expand_codes(codes[self.stride * a : self.stride * (a + nb - 1) + self.model.length])
        p, s = self.scores(*self._flat_block(x, nb), self.window_scored(base, nb))
        probs[:, a : a + nb], strand[:, a : a + nb] = p, s

    def chunk_scores(self, codes: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (T, count), NaN where not scored, and strands (T, count) int8 of a chunk's windows.

        ``codes`` (n,) uint8 on the device, ``n >= stride * (count - 1) + L``; window ``i`` starts at ``stride * i``.
        """
        if self.flat is None:
            x, base = expand_codes(codes)
            return self.scores(*self.logits(x, count), self.window_scored(base, count))
        probs = torch.empty(self.model.n_tasks, count, device=codes.device)
        strand = torch.empty(self.model.n_tasks, count, dtype=torch.int8, device=codes.device)
        blocks = [(a, min(self.block, count - a)) for a in range(0, count, self.block)]
        if self._pool is None:
            for a, nb in blocks:
                self._block_scores(codes, a, nb, probs, strand)
        else:  # one block per worker thread, every op single-threaded: no barrier per small op
            list(self._pool.map(lambda block: self._block_scores(codes, *block, probs, strand), blocks))
        return probs, strand

    def close(self) -> None:
        """Stop the CPU worker threads and give torch back its thread count."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
            torch.set_num_threads(self._threads)

    def logits(self, x: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Forward and reverse-strand logits (T, count) of windows ``x[:, :, s : s + L]``, ``s = stride * i``.

        ``x`` is (1, 4, n) with ``n >= stride * (count - 1) + L``; reverse is None without ``rc_average``.
        """
        if self.flat is not None:
            return self._flat_block(x[..., : self.stride * (count - 1) + self.model.length], count)
        length, last = self.model.length, self.stride * (count - 1)
        x = x[..., : last + length]
        if self.stages is None:
            starts = torch.arange(0, last + 1, self.stride, device=x.device)
            fwd = naive_logits(self.model, x, starts, self.batch_size).T
            rev = naive_logits(self.model, reverse_complement(x), starts.flip(0), self.batch_size).T if self.rc else None
            return fwd, rev
        fwd = fast_logits(self.model, self.stages, x, 0, self.stride, count).T
        # window s on the forward strand is window N - L - s of the reverse complement
        rev = fast_logits(self.model, self.stages, reverse_complement(x), 0, self.stride, count).flip(0).T \
            if self.rc else None
        return fwd, rev

    def short_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (T, 1) of one window already padded to ``L`` (a record shorter than the model)."""
        fwd = self.model.strand_logits(x).T
        return fwd, (self.model.strand_logits(reverse_complement(x)).T if self.rc else None)

    def scores(self, fwd: torch.Tensor, rev: torch.Tensor | None, scored: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities (T, n) float32 (NaN where not ``scored``; None: all are) and strands (T, n) int8."""
        averaged = fwd if rev is None else 0.5 * (fwd + rev)
        if rev is None:
            strand = torch.zeros(fwd.shape, dtype=torch.int8, device=fwd.device)
        else:
            strand = torch.where(fwd >= rev, 1, -1).to(torch.int8)
        probs = torch.sigmoid(averaged).float()
        return (probs if scored is None else probs.masked_fill(~scored, float("nan"))), strand

    def window_scored(self, base: torch.Tensor, count: int, window: int | None = None) -> torch.Tensor | None:
        """Windows (count,) holding at least :data:`~genocnn.encode.MIN_BASE_FRACTION` A/C/G/T, on the device.

        None on CPU when every position is A/C/G/T (every window is scored: the common case, checked once;
        on CUDA the check would cost a host sync).
        """
        if base.device.type == "cpu" and bool(base.all()):
            return None
        window = window or self.model.length
        csum = F.pad(torch.cumsum(base.to(torch.int32), 0), (1, 0))
        starts = torch.arange(0, self.stride * count, self.stride, device=base.device)
        ends = torch.clamp(starts + window, max=len(base))
        return (csum[ends] - csum[starts]) >= MIN_BASE_FRACTION * window
