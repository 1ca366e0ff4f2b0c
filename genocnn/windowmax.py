"""Window maxima of a conv map, plus bias (and ReLU), in one pass on a GPU: a Triton kernel.

The flat scan engine (:mod:`genocnn.scanengine`) needs, for every window, each
filter's maximum over the window's conv positions. On a GPU the torch way
(:func:`~genocnn.scanengine.sliding_max`, then the bias, then the activation)
passes over the whole (2F, n) map several times, and memory traffic, not
arithmetic, sets its speed. This kernel reads the map about twice and writes
the features once, with van Herk / Gil-Werman's method: cut the map into
blocks of ``width`` positions; the window starting at offset ``t`` of block
``b`` is the suffix of block ``b`` from ``t`` together with the first ``t``
positions of block ``b + 1``, so one reversed and one forward running max per
block give every window in it.

It needs Triton, which CUDA builds of torch bring;
:class:`~genocnn.scanengine.Engine` uses it on CUDA only, and falls back to the
torch path, with one warning, where the kernel cannot be built.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU builds of torch come without Triton
    triton = None

__all__ = ["window_max"]


def _jit(fn):
    return triton.jit(fn) if triton is not None else fn


@_jit
def _larger(a, b):
    return tl.maximum(a, b)


@_jit
def _window_max_kernel(x_ptr, bias_ptr, out_ptr, n, m, width, TILE: tl.constexpr, RELU: tl.constexpr):
    block = tl.program_id(0)
    row = tl.program_id(1).to(tl.int64)
    t = tl.arange(0, TILE)
    start = block * width
    lane = t < width
    x = x_ptr + row * n
    here = tl.load(x + start + t, mask=lane & (start + t < n), other=float("-inf"))
    suffix = tl.associative_scan(here, 0, _larger, reverse=True)  # max x[start + t : start + width]
    ahead = start + width - 1 + t  # lane t > 0: position start + width + t - 1
    following = tl.load(x + ahead, mask=lane & (t > 0) & (ahead < n), other=float("-inf"))
    prefix = tl.associative_scan(following, 0, _larger)  # max x[start + width : start + width + t]
    out = tl.maximum(suffix, prefix) + tl.load(bias_ptr + row)
    if RELU:
        out = tl.maximum(out, 0.0)
    j = start + t
    tl.store(out_ptr + row * m + j, out, mask=lane & (j < m))


def window_max(c: torch.Tensor, width: int, bias: torch.Tensor, relu: bool) -> torch.Tensor:
    """Every window's maximum of each row, plus the row's bias (then ReLU): (C, n) -> (C, n - width + 1).

    Parameters
    ----------
    c : torch.Tensor, shape (C, n), float32, on a CUDA device
        A conv map (positions as columns), ``n >= width``.
    width : int
        Conv positions in one window.
    bias : torch.Tensor, shape (C,), float32
    relu : bool
        Apply ReLU to the result.

    Returns
    -------
    torch.Tensor, shape (C, n - width + 1), float32
        Equal to ``sliding_max(c, width) + bias[:, None]`` (then ReLU'd), exactly.
    """
    if triton is None:
        raise RuntimeError("Triton is not installed")
    c, bias = c.contiguous(), bias.contiguous()
    rows, n = c.shape
    m = n - width + 1
    out = torch.empty((rows, m), dtype=torch.float32, device=c.device)
    tile = triton.next_power_of_2(width)
    grid = (triton.cdiv(m, width), rows)
    _window_max_kernel[grid](c, bias, out, n, m, width, TILE=tile, RELU=relu, num_warps=4 if tile <= 512 else 8)
    return out
