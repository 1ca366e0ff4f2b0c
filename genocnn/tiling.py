"""Scores of every window of a chunk, computed fully convolutionally (the scan engine's fast path).

How (fully convolutional, for ``global_pool: max|avg``)
--------------------------------------------------------
A record is cut into chunks of ``chunk_size`` window starts with ``L - 1`` bp
of overlap. Each conv block runs once over the chunk. A pooling layer of size
``p`` makes the feature map stride ``p``, so after it the map is computed once
per alignment ``r = 0..p-1`` (a tree over the blocks; total cost is one
convolution per input position per block). A window whose start ``s`` has
``s mod P = o`` (``P`` = product of pool sizes) reads its features from the
leaf of alignment ``o``; the global max/avg over the positions the window
covers is a sliding max/avg (``F.max_pool1d(kernel, stride=1)``) over that
leaf, and the dense head runs once per window.

Pools use ``ceil_mode=True``: when a block's conv output is not a multiple of
the pool size, the window's last pooled value is a *partial* pool (fewer
elements), which a chunk-wide map does not contain. That last value (the
"tail") is computed per window: the partial pool over the shared map plus the
tail of the previous block, then one conv position per later block. Only the
last feature of each block differs, so this is cheap and makes the fast scan
agree with the naive per-window model to float32 rounding.

``global_pool: none`` (flattened features) cannot share work between
windows; it falls back to batched naive windows (``unfold``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import GenocnnError
from .models import ConvNet

__all__ = ["fast_logits", "naive_logits", "plan"]


@dataclass(frozen=True)
class _Stage:
    """One conv block, and the window-local lengths it produces for an input of length L."""

    conv: nn.Conv1d
    post: nn.Module  # batch norm + activation
    pool: str  # "max", "avg" or "none"
    p: int  # pool size (1 for none)
    conv_len: int  # C: conv output length inside one window
    pool_len: int  # M: pooled length inside one window
    rest: int  # elements in the window's last pool window (1..p)


def plan(model: ConvNet) -> list[_Stage]:
    """The model's conv blocks, with the lengths they produce inside one window of length ``L``."""
    stages, length = [], model.length
    for conv, post, pool in model.conv_stages():
        if conv.padding != (0,) or conv.stride != (1,) or conv.groups != 1:
            raise GenocnnError("scan: only unpadded, stride-1 convolutions are supported")
        kind = "max" if isinstance(pool, nn.MaxPool1d) else "avg" if isinstance(pool, nn.AvgPool1d) else "none"
        p = int(np.ravel(pool.kernel_size)[0]) if kind != "none" else 1
        conv_len = length - conv.dilation[0] * (conv.kernel_size[0] - 1)
        pool_len = -(-conv_len // p)
        stages.append(_Stage(conv, post, kind, p, conv_len, pool_len,
                             conv_len - (pool_len - 1) * p))
        length = pool_len
    return stages


def _pool(x: torch.Tensor, kind: str, p: int) -> torch.Tensor:
    """``kind`` pools of size ``p`` (``none``: identity): (1, C, n) -> (1, C, n // p), empty if ``n < p``."""
    if kind == "none":
        return x
    if x.shape[-1] < p:
        return x[..., :0]
    return F.max_pool1d(x, p) if kind == "max" else F.avg_pool1d(x, p)


def _conv(stage: _Stage, x: torch.Tensor) -> torch.Tensor:
    """A block's conv, batch norm and activation over (1, C_in, n) -> (1, C_out, n - span + 1), maybe empty."""
    span = stage.conv.dilation[0] * (stage.conv.kernel_size[0] - 1) + 1
    if x.shape[-1] < span:
        return x.new_zeros(1, stage.conv.out_channels, 0)
    return stage.post(stage.conv(x))


def _members(first: int, stride: int, count: int, align: int, period: int) -> tuple[int, int, int] | None:
    """Windows ``i`` (starts ``first + stride * i``, ``i < count``) with start = align mod period.

    They are ``range(i0, count, step)``; returns ``(i0, step, n)`` or None when there are none.
    """
    step = period // math.gcd(stride, period)
    i0 = next((i for i in range(min(step, count)) if (first + stride * i) % period == align), None)
    return None if i0 is None else (i0, step, len(range(i0, count, step)))


def _strided(m: torch.Tensor, start: int, step: int, n: int) -> torch.Tensor:
    """``m[0][:, start + step * q]`` for q < n, shape (C, n), as a view."""
    return m[0][:, start : start + step * (n - 1) + 1 : step]


def _tails(stages: list[_Stage], path: list, s0: int, ds: int, n: int) -> torch.Tensor:
    """The last pooled feature of every block for windows starting at ``s0 + ds * q``; the final one (n, C)."""
    tail = None
    for st, (x_in, c_map, align, period) in zip(stages, path):
        base, db = (s0 - align) // period, ds // period
        if tail is None:  # first block: the conv output is exact everywhere
            t_conv = _strided(c_map, base + st.conv_len - 1, db, n).T
        else:
            k, d = st.conv.kernel_size[0], st.conv.dilation[0]
            taps = [_strided(x_in, base + st.conv_len - 1 + d * j, db, n).T for j in range(k - 1)]
            inputs = torch.stack([*taps, tail], dim=2)  # (n, C_in, k)
            t_conv = st.post(F.conv1d(inputs, st.conv.weight, st.conv.bias))[:, :, 0]
        if st.pool == "none" or st.rest == 1:
            tail = t_conv
            continue
        first = base + (st.pool_len - 1) * st.p
        for j in range(st.rest - 1):
            shared = _strided(c_map, first + j, db, n).T
            t_conv = torch.maximum(t_conv, shared) if st.pool == "max" else t_conv + shared
        tail = t_conv if st.pool == "max" else t_conv / st.rest
    return tail


def fast_logits(model: ConvNet, stages: list[_Stage], x: torch.Tensor, first: int, stride: int,
                 count: int) -> torch.Tensor:
    """Un-averaged logits (``model.strand_logits``) of windows ``x[:, :, s : s + L]``, ``s = first + stride * i``.

    Returns shape (count, T).
    """
    out = torch.empty(count, model.n_tasks, device=x.device)
    global_kind = model.config.global_pool
    width = stages[-1].pool_len - 1  # shared positions of the last map in one window

    def leaf(x_map: torch.Tensor, align: int, period: int, path: list) -> None:
        i0, step, n = _members(first, stride, count, align, period)
        s0, ds = first + stride * i0, stride * step
        feat = _tails(stages, path, s0, ds, n)
        if width > 0:
            q0, dq = (s0 - align) // period, ds // period
            if global_kind == "max":
                shared = F.max_pool1d(x_map[..., q0 : q0 + dq * (n - 1) + width], width, stride=dq)
                feat = torch.maximum(shared[0].T, feat)
            else:
                shared = F.avg_pool1d(x_map[..., q0 : q0 + dq * (n - 1) + width], width, stride=dq)
                feat = (shared[0].T * width + feat) / (width + 1)
        out[i0::step] = model.head(feat)

    def visit(b: int, x_map: torch.Tensor, align: int, period: int, path: list) -> None:
        if b == len(stages):
            leaf(x_map, align, period, path)
            return
        st = stages[b]
        c_map = _conv(st, x_map)
        for r in range(st.p):
            a2, p2 = align + period * r, period * st.p
            if _members(first, stride, count, a2, p2) is not None:
                visit(b + 1, _pool(c_map[..., r:], st.pool, st.p), a2, p2, [*path, (x_map, c_map, align, period)])

    visit(0, x, 0, 1, [])
    return out


def naive_logits(model: ConvNet, x: torch.Tensor, starts: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Un-averaged logits of windows ``x[:, :, s : s + L]``, one batch of windows at a time."""
    windows = x[0].unfold(1, model.length, 1)  # (4, n, L), a view
    parts = [model.strand_logits(windows[:, starts[i : i + batch_size]].permute(1, 0, 2).contiguous())
             for i in range(0, len(starts), batch_size)]
    return torch.cat(parts)
