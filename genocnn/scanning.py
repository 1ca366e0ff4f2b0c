"""The scan engine: per-window binding scores along long sequences (chromosomes).

Every window of the model's input length ``L`` starting at position ``s``
(``s = 0, stride, 2 * stride, ...``, up to ``len(seq) - L``) gets the
probability the model gives that window, exactly as ``model(one_hot(window))``
would in eval mode, including reverse-complement averaging. Data flow: FASTA ->
:func:`scan` -> :class:`~genocnn.sites.ScanBlock` s -> :mod:`genocnn.sites`
(BED6 sites) and :mod:`genocnn.tracks` (bedGraph, bigWig); :func:`scan_genome`
runs all three in one pass (``genocnn scan``). Their public names are re-exported here.

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

Memory
------
An indexable FASTA (plain or bgzip, regular line widths) is read through its
``.fai`` with pyfaidx, one chunk at a time; other inputs (plain gzip) go
through :func:`~genocnn.fasta.read_fasta`, which holds one record string
(1 byte/bp). Beyond that only one chunk's one-hot tensor and feature maps live
at a time, so peak memory does not grow with sequence length.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .atomic import atomic_open, atomic_path
from .devices import resolve_device
from .encode import one_hot, reverse_complement
from .errors import GenocnnError
from .fasta import dna_problem, iter_records, read_fasta
from .genome import open_genome
from .inference import evaluating, model_device
from .models import ConvNet, task_index
from .sites import ScanBlock, SiteCaller, call_sites, write_bed
from .tracks import BedGraphTrack, BigWigTrack, chrom_sizes, write_bedgraph

__all__ = ["ScanBlock", "SiteCaller", "call_sites", "scan", "scan_genome", "write_bed", "write_bedgraph"]


# ---------------------------------------------------------------- fast path


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


def _plan(model: ConvNet) -> list[_Stage]:
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


def _fast_logits(model: ConvNet, stages: list[_Stage], x: torch.Tensor, first: int, stride: int,
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


def _naive_logits(model: ConvNet, x: torch.Tensor, starts: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Un-averaged logits of windows ``x[:, :, s : s + L]``, one batch of windows at a time."""
    windows = x[0].unfold(1, model.length, 1)  # (4, n, L), a view
    parts = [model.strand_logits(windows[:, starts[i : i + batch_size]].permute(1, 0, 2).contiguous())
             for i in range(0, len(starts), batch_size)]
    return torch.cat(parts)


# ---------------------------------------------------------------- record sources


class _IndexedRecord:
    """One chromosome of an indexed FASTA, read from disk and checked (as ``read_fasta`` does) slice by slice."""

    def __init__(self, path: str | os.PathLike, name: str, record) -> None:  # record: a pyfaidx record
        self.path, self.name, self.record = path, name, record

    def __len__(self) -> int:
        return len(self.record)

    def __getitem__(self, where: slice) -> str:
        text = self.record[where]
        problem = dna_problem(text)
        if problem:
            raise GenocnnError(f"{self.path}: record {self.name!r} near position {where.start} {problem}")
        return text


def _records(fasta_or_sequences: str | os.PathLike | Iterable) -> Iterator[tuple[str, str | _IndexedRecord]]:
    """A FASTA path -> its records (through its ``.fai`` if it has one, see Memory); strings -> ``seq0, seq1, ...``."""
    if isinstance(fasta_or_sequences, (str, os.PathLike)):
        try:
            genome = open_genome(fasta_or_sequences)
        except GenocnnError:
            genome = None
        if genome is None:
            yield from read_fasta(fasta_or_sequences)
        else:
            yield from ((name, _IndexedRecord(fasta_or_sequences, name, genome[name])) for name in genome.keys())
        return
    for name, seq in iter_records(fasta_or_sequences):
        if not seq:
            raise GenocnnError(f"scan: sequence {name!r} is empty")
        yield name, seq


# ---------------------------------------------------------------- scanning


@dataclass(frozen=True)
class _Scorer:
    """One scan's model and settings: turns records into :class:`ScanBlock` s chunk by chunk."""

    model: ConvNet
    stages: list[_Stage] | None  # None: naive windows (no global pooling)
    stride: int
    batch_size: int
    device: torch.device

    def logits(self, x: torch.Tensor, first: int, count: int) -> torch.Tensor:
        """Un-averaged logits, shape (count, T), of windows ``x[:, :, s : s + L]``, ``s = first + stride * i``."""
        if self.stages is None:
            starts = torch.arange(first, first + self.stride * count, self.stride, device=self.device)
            return _naive_logits(self.model, x, starts, self.batch_size)
        return _fast_logits(self.model, self.stages, x, first, self.stride, count)

    def block(self, chrom: str, positions: np.ndarray, forward: torch.Tensor, reverse: torch.Tensor | None,
              n: int) -> ScanBlock:
        """Probabilities and strands from forward (and reverse-complement) logits, each (len(positions), T).
"""
        averaged = forward if reverse is None else 0.5 * (forward + reverse)
        if reverse is None:
            strand = np.zeros(tuple(forward.shape), dtype=np.int8)
        else:
            strand = np.where((forward >= reverse).cpu().numpy(), 1, -1).astype(np.int8)
        probs = torch.sigmoid(averaged).float().cpu().numpy()
        return ScanBlock(chrom, positions, probs, strand, self.model.length, self.stride, n)

    def record(self, chrom: str, seq, step: int) -> Iterator[tuple[ScanBlock, int]]:
        """Blocks of one record, each with the bp it advances the scan; chunks hold ``step`` window starts."""
        model, length, rc, n = self.model, self.model.length, self.model.config.rc_average, len(seq)
        if n < length:
            x = one_hot(seq[0:n], length=length).to(self.device)
            reverse = model.strand_logits(reverse_complement(x)) if rc else None
            yield self.block(chrom, np.zeros(1, dtype=np.int64), model.strand_logits(x), reverse, n), n
            return
        last = n - length  # last window start
        for a in range(0, last + 1, step):
            local = np.arange(0, min(step, last - a + 1), self.stride, dtype=np.int64)
            x = one_hot(seq[a : a + int(local[-1]) + length]).to(self.device)
            count = len(local)
            forward = self.logits(x, 0, count)
            # window s on the forward strand is window N - L - s of the reverse complement
            reverse = self.logits(reverse_complement(x), x.shape[-1] - length - int(local[-1]), count).flip(0) if rc else None
            yield self.block(chrom, local + a, forward, reverse, n), (step if a + step <= last else n - a)


def scan(
    model: ConvNet,
    fasta_or_sequences: str | os.PathLike | Iterable,
    stride: int = 1,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = True,
    chunk_size: int = 2**17,
) -> Iterator[ScanBlock]:
    """Score every window position of long sequences, streaming one chunk at a time.

    Parameters
    ----------
    model : ConvNet
        From :func:`genocnn.load_model`; put in eval mode (and on ``device``).
    fasta_or_sequences : path, or iterable of str or of (id, sequence)
        Every record is scanned. Case is ignored (soft-masking), ``N`` encodes
        as 0.25 per base as in :func:`~genocnn.encode.one_hot`. A record shorter
        than the model input ``L`` gets one window, padded as ``one_hot`` pads.
    stride : int, default 1
        Score windows starting at ``0, stride, 2 * stride, ...``; 1 scores every position.
    batch_size : int, default 256
        Windows per batch for models without global pooling (naive fallback).
    device : str, torch.device or None
        ``None`` keeps the model's device; ``auto``, ``cpu``, ``cuda`` ...
    progress : bool
        tqdm bar in bp/s.
    chunk_size : int, default 131072
        Window starts per chunk (bounds memory: about ``chunk_size`` x the
        widest layer's channels x 4 bytes per feature map).

    Yields
    ------
    ScanBlock
        ``chrom, positions (n,), probs (n, T), strand (n, T), window, stride,
        chrom_length``; blocks of a record come in order, the first at position 0.

    Examples
    --------
    >>> from genocnn.config import ModelConfig
    >>> from genocnn.models import build_model
    >>> net = build_model(ModelConfig(), n_tasks=1, length=50).eval()
    >>> block = next(scan(net, ["ACGT" * 30], progress=False))
    >>> block.positions[:3], block.probs.shape
    (array([0, 1, 2]), (71, 1))
    """
    for name, value in {"stride": stride, "batch_size": batch_size, "chunk_size": chunk_size}.items():
        if value < 1:
            raise GenocnnError(f"scan: {name} must be at least 1, got {value}")
    dev = resolve_device(device) if device is not None else model_device(model)
    stages = _plan(model) if model.config.global_pool in ("max", "avg") else None
    scorer = _Scorer(model, stages, stride, batch_size, dev)
    step = max(stride, chunk_size // stride * stride)
    bar = tqdm(desc="scanning", unit="bp", unit_scale=True, disable=not progress)
    try:
        with evaluating(model, dev), torch.inference_mode():
            for chrom, seq in _records(fasta_or_sequences):
                bar.set_postfix_str(chrom, refresh=False)
                for block, advance in scorer.record(chrom, seq, step):
                    yield block
                    bar.update(advance)
    finally:
        bar.close()


def scan_genome(
    model: ConvNet,
    fasta: str | os.PathLike | Iterable,
    out: str | os.PathLike,
    threshold: float = 0.5,
    stride: int = 1,
    task: int | str | None = None,
    bedgraph: str | os.PathLike | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = True,
    bigwig: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Scan, call sites, and write ``out`` (BED6) and optionally ``bedgraph`` / ``bigwig``, in one pass.

    Returns the sites table (see :func:`~genocnn.sites.call_sites`). All files are written
    atomically: an error part-way leaves none behind.
    """
    if not 0.0 <= threshold <= 1.0:
        raise GenocnnError(f"scan: threshold must be between 0 and 1, got {threshold}")
    index = task_index(model, task)
    caller = SiteCaller(threshold, index)
    with contextlib.ExitStack() as stack:
        tracks: list[BedGraphTrack | BigWigTrack] = []
        if bedgraph is not None:
            tracks.append(BedGraphTrack(stack.enter_context(atomic_open(bedgraph))))
        if bigwig is not None:
            tracks.append(BigWigTrack(stack.enter_context(atomic_path(bigwig)), chrom_sizes(_records(fasta))))
        for block in scan(model, fasta, stride, batch_size, device, progress):
            caller.add(block)
            for track in tracks:
                track.add(block, index)
        for track in tracks:
            track.close()
        sites = caller.finish()
        write_bed(sites, out)
    return sites
