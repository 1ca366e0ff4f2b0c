"""Per-position binding scores along long sequences (chromosomes), and the sites they call.

Every window of the model's input length ``L`` starting at position ``s``
(``s = 0, stride, 2 * stride, ...``, up to ``len(seq) - L``) gets the
probability the model gives that window, exactly as ``model(one_hot(window))``
would in eval mode, including reverse-complement averaging.

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
from typing import NamedTuple, TextIO

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .atomic import atomic_open, atomic_path
from .encode import one_hot
from .errors import GenocnnError
from .fasta import dna_problem, read_fasta
from .predict import iter_records
from .genome import open_genome
from .models import ConvNet, task_index
from .devices import resolve_device

__all__ = ["ScanBlock", "SiteCaller", "call_sites", "scan", "scan_genome", "write_bed", "write_bedgraph"]

BED_COLUMNS = ["chrom", "start", "end", "name", "score", "strand"]


class ScanBlock(NamedTuple):
    """Scores for a run of window starts of one record (one chunk).

    Attributes
    ----------
    chrom : str
        Record id.
    positions : np.ndarray, shape (n,), int64
        Window starts (0-based); the window is ``[s, s + window)``.
    probs : np.ndarray, shape (n, T), float32
        The model's probability per window and task.
    strand : np.ndarray, shape (n, T), int8
        ``+1`` where the forward-strand logit is at least the reverse one,
        ``-1`` where it is smaller, ``0`` when the model has no
        reverse-complement averaging.
    window : int
        The model input length ``L``.
    stride : int
        Distance between consecutive window starts.
    chrom_length : int
        Length of the record; a record shorter than ``window`` has one
        (padded) window at position 0.
    """

    chrom: str
    positions: np.ndarray
    probs: np.ndarray
    strand: np.ndarray
    window: int
    stride: int
    chrom_length: int


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
    stages, length = [], model.length
    for block in model.blocks:
        conv, pool = block[0], block[3]
        if conv.padding != (0,) or conv.stride != (1,) or conv.groups != 1:
            raise GenocnnError("scan: only unpadded, stride-1 convolutions are supported")
        kind = "max" if isinstance(pool, nn.MaxPool1d) else "avg" if isinstance(pool, nn.AvgPool1d) else "none"
        p = int(np.ravel(pool.kernel_size)[0]) if kind != "none" else 1
        conv_len = length - conv.dilation[0] * (conv.kernel_size[0] - 1)
        pool_len = -(-conv_len // p)
        stages.append(_Stage(conv, nn.Sequential(block[1], block[2]), kind, p, conv_len, pool_len,
                             conv_len - (pool_len - 1) * p))
        length = pool_len
    return stages


def _pool(x: torch.Tensor, kind: str, p: int) -> torch.Tensor:
    if kind == "none":
        return x
    if x.shape[-1] < p:
        return x[..., :0]
    return F.max_pool1d(x, p) if kind == "max" else F.avg_pool1d(x, p)


def _conv(stage: _Stage, x: torch.Tensor) -> torch.Tensor:
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
    """Un-averaged logits ``model._logits`` of windows ``x[:, :, s : s + L]``, ``s = first + stride * i``.

    Returns shape (count, T).
    """
    out = torch.empty(count, model.head[-1].out_features, device=x.device)
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
    parts = [model._logits(windows[:, starts[i : i + batch_size]].permute(1, 0, 2).contiguous())
             for i in range(0, len(starts), batch_size)]
    return torch.cat(parts)


# ---------------------------------------------------------------- scanning


class _IndexedRecord:
    """One chromosome of an indexed FASTA, read from disk slice by slice.

    Slices are checked like :func:`~genocnn.fasta.read_fasta` checks records,
    so a scan's memory does not grow with the chromosome's length.
    """

    def __init__(self, path, name: str, record) -> None:
        self.path, self.name, self.record = path, name, record

    def __len__(self) -> int:
        return len(self.record)

    def __getitem__(self, where: slice) -> str:
        text = self.record[where]
        problem = dna_problem(text)
        if problem:
            raise GenocnnError(f"{self.path}: record {self.name!r} near position {where.start} {problem}")
        return text


def _indexed_records(path: str | os.PathLike) -> Iterator[tuple[str, _IndexedRecord]] | None:
    """Records of an indexable FASTA (plain or bgzip, regular lines) via pyfaidx, else None."""
    try:
        genome = open_genome(path)
    except GenocnnError:
        return None
    return ((name, _IndexedRecord(path, name, genome[name])) for name in genome.keys())


def _records(fasta_or_sequences: str | os.PathLike | Iterable) -> Iterator[tuple[str, str]]:
    """A FASTA path -> its records; strings -> ``seq0, seq1, ...``; (id, seq) pairs pass through.

    An indexable FASTA is read chunk by chunk through its ``.fai`` (pyfaidx);
    other files (plain gzip, irregular line widths) through :func:`read_fasta`,
    which holds one record in memory at a time.
    """
    if isinstance(fasta_or_sequences, (str, os.PathLike)):
        indexed = _indexed_records(fasta_or_sequences)
        yield from indexed if indexed is not None else read_fasta(fasta_or_sequences)
        return
    for name, seq in iter_records(fasta_or_sequences):
        if not seq:
            raise GenocnnError(f"scan: sequence {name!r} is empty")
        yield name, seq


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
    dev = resolve_device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev).eval()
    length, rc = model.length, model.config.rc_average
    stages = _plan(model) if model.config.global_pool in ("max", "avg") else None
    step = max(stride, chunk_size // stride * stride)
    bar = tqdm(desc="scanning", unit="bp", unit_scale=True, disable=not progress)

    def logits(x: torch.Tensor, first: int, count: int) -> torch.Tensor:
        if stages is None:
            starts = torch.arange(first, first + stride * count, stride, device=dev)
            return _naive_logits(model, x, starts, batch_size)
        return _fast_logits(model, stages, x, first, stride, count)

    def block(chrom: str, positions: np.ndarray, forward: torch.Tensor, reverse: torch.Tensor | None,
              n: int) -> ScanBlock:
        averaged = forward if reverse is None else 0.5 * (forward + reverse)
        if reverse is None:
            strand = np.zeros(tuple(forward.shape), dtype=np.int8)
        else:
            strand = np.where((forward >= reverse).cpu().numpy(), 1, -1).astype(np.int8)
        probs = torch.sigmoid(averaged).float().cpu().numpy()
        return ScanBlock(chrom, positions, probs, strand, length, stride, n)

    try:
        with torch.inference_mode():
            for chrom, seq in _records(fasta_or_sequences):
                n = len(seq)
                bar.set_postfix_str(chrom, refresh=False)
                if n < length:
                    x = one_hot(seq[0:n], length=length).to(dev)
                    reverse = model._logits(x.flip(-2, -1)) if rc else None
                    yield block(chrom, np.zeros(1, dtype=np.int64), model._logits(x), reverse, n)
                    bar.update(n)
                    continue
                last = n - length  # last window start
                for a in range(0, last + 1, step):
                    local = np.arange(0, min(step, last - a + 1), stride, dtype=np.int64)
                    x = one_hot(seq[a : a + int(local[-1]) + length]).to(dev)
                    count = len(local)
                    forward = logits(x, 0, count)
                    # window s on the forward strand is window N - L - s of the reverse complement
                    reverse = logits(x.flip(-2, -1), x.shape[-1] - length - int(local[-1]), count).flip(0) if rc else None
                    yield block(chrom, local + a, forward, reverse, n)
                    bar.update(step if a + step <= last else n - a)
    finally:
        bar.close()


# ---------------------------------------------------------------- sites and tracks


class SiteCaller:
    """Merge runs of consecutive window starts scoring at least ``threshold`` into BED6 sites.

    Feed :class:`ScanBlock` s in scan order with :meth:`add`; runs continue
    across the chunks of a record. :meth:`finish` returns the sites.

    Parameters
    ----------
    threshold : float
        Probability a window needs to be part of a site.
    task : int
        Column of ``probs`` to call sites on.
    """

    def __init__(self, threshold: float = 0.5, task: int = 0) -> None:
        self.threshold, self.task = threshold, task
        self._open: list | None = None  # [chrom, start, last, best, strand, window, chrom_length]
        self._rows: list[tuple] = []

    def _close(self) -> None:
        if self._open is not None:
            chrom, start, last, best, strand, window, n = self._open
            self._rows.append((chrom, start, min(last + window, n), best, strand))
            self._open = None

    def add(self, block: ScanBlock) -> None:
        """Take the next block of scores."""
        if self._open is not None and (block.positions[0] == 0 or block.chrom != self._open[0]):
            self._close()
        p = block.probs[:, self.task]
        mask = p >= self.threshold
        if not mask.any():
            self._close()
            return
        edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        begins, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        masked = np.where(mask, p, -np.inf)
        best = np.maximum.reduceat(masked, begins)
        segment = np.cumsum(np.isin(np.arange(len(p)), begins)) - 1
        hits = np.flatnonzero(masked == best[segment])  # positions equal to their run's max
        _, first = np.unique(segment[hits], return_index=True)
        best_at = hits[first]
        strands = block.strand[best_at, self.task]
        for i, (b, e) in enumerate(zip(begins, ends)):
            start, last = int(block.positions[b]), int(block.positions[e - 1])
            run = [block.chrom, start, last, float(best[i]), int(strands[i]), block.window, block.chrom_length]
            if i == 0 and b == 0 and self._open is not None:  # continues the open run
                run[1] = self._open[1]
                if self._open[3] >= run[3]:
                    run[3], run[4] = self._open[3], self._open[4]
            elif i == 0:
                self._close()
            self._open = run
            if e < len(p):
                self._close()

    def finish(self) -> pd.DataFrame:
        """Close the last run; return the BED6 sites (``chrom start end name score strand``)."""
        self._close()
        rows = self._rows
        table = pd.DataFrame(rows, columns=["chrom", "start", "end", "prob", "strand"])
        table["score"] = np.clip(np.rint(table["prob"].to_numpy(float) * 1000), 0, 1000).astype(int)
        table["strand"] = table["strand"].map({1: "+", -1: "-", 0: "."}).astype(object)
        table["name"] = [f"site_{k}" for k in range(1, len(table) + 1)]
        return table[BED_COLUMNS].astype({"start": np.int64, "end": np.int64})


def call_sites(blocks: Iterable[ScanBlock], threshold: float = 0.5, task: int = 0) -> pd.DataFrame:
    """BED6 sites from a stream of scores: runs of windows with ``prob >= threshold``, merged.

    Parameters
    ----------
    blocks : iterable of ScanBlock
        From :func:`scan` (or hand-made, in scan order).
    threshold : float
    task : int
        Which column of ``probs``.

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom, start, end, name, score, strand``: ``start`` is the
        first window's start, ``end`` the last window's end (clipped to the
        record), ``name`` ``site_<k>``, ``score`` the run's best probability
        x 1000 (int), ``strand`` the strand whose logit is larger at the best
        window (``.`` without reverse-complement averaging).

    Examples
    --------
    >>> probs = np.array([[.1], [.7], [.9], [.2], [.6]], dtype=np.float32)
    >>> block = ScanBlock("chr1", np.arange(5), probs, np.ones((5, 1), np.int8), 10, 1, 100)
    >>> call_sites([block]).values.tolist()
    [['chr1', 1, 12, 'site_1', 900, '+'], ['chr1', 4, 14, 'site_2', 600, '+']]
    """
    caller = SiteCaller(threshold, task)
    for block in blocks:
        caller.add(block)
    return caller.finish()


def write_bed(sites: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write BED6 sites (no header), atomically."""
    with atomic_open(path) as fh:
        sites[BED_COLUMNS].to_csv(fh, sep="\t", header=False, index=False)


def _track_intervals(block: ScanBlock) -> tuple[np.ndarray, np.ndarray]:
    """Track interval of each window: ``[centre, centre + stride)``, clipped to the record."""
    centre = block.positions + min(block.window, block.chrom_length) // 2
    return centre, np.minimum(centre + block.stride, block.chrom_length)


def _write_track(fh: TextIO, block: ScanBlock, task: int) -> None:
    centre, end = _track_intervals(block)
    table = pd.DataFrame({"chrom": block.chrom, "start": centre, "end": end, "value": block.probs[:, task]})
    table.to_csv(fh, sep="\t", header=False, index=False, float_format="%.5g")


def write_bedgraph(blocks: Iterable[ScanBlock], path: str | os.PathLike, task: int = 0) -> None:
    """Write the per-position track, atomically, streaming.

    Each window gives one line ``chrom centre centre+stride prob`` with
    ``centre = start + L // 2`` (clipped to the record).
    """
    with atomic_open(path) as fh:
        fh.write("track type=bedGraph\n")
        for block in blocks:
            _write_track(fh, block, task)


def chrom_sizes(fasta: str | os.PathLike | Iterable) -> list[tuple[str, int]]:
    """``(name, length)`` of every record, from the ``.fai`` when indexable, else by reading."""
    if isinstance(fasta, (str, os.PathLike)):
        indexed = _indexed_records(fasta)
        if indexed is not None:
            return [(name, len(record)) for name, record in indexed]
    return [(name, len(seq)) for name, seq in _records(fasta)]


class BigWigTrack:
    """Per-position track written as bigWig (pyBigWig), entries streamed in record order."""

    def __init__(self, path: str | os.PathLike, sizes: list[tuple[str, int]]) -> None:
        try:
            import pyBigWig
        except ImportError:
            raise GenocnnError("--bigwig needs pyBigWig: pip install pyBigWig") from None
        self.handle = pyBigWig.open(os.fspath(path), "w")
        self.handle.addHeader(sizes, maxZooms=10)

    def add(self, block: ScanBlock, task: int) -> None:
        centre, end = _track_intervals(block)
        self.handle.addEntries(
            [block.chrom] * len(centre), centre.tolist(), ends=end.tolist(),
            values=block.probs[:, task].astype(float).tolist(),
        )

    def close(self) -> None:
        self.handle.close()


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

    Returns the sites table (see :func:`call_sites`). All files are written
    atomically: an error part-way leaves none behind.
    """
    if not 0.0 <= threshold <= 1.0:
        raise GenocnnError(f"scan: threshold must be between 0 and 1, got {threshold}")
    index = task_index(model, task)
    caller = SiteCaller(threshold, index)
    with contextlib.ExitStack() as stack:
        track = stack.enter_context(atomic_open(bedgraph)) if bedgraph is not None else None
        if track is not None:
            track.write("track type=bedGraph\n")
        wig = None
        if bigwig is not None:
            wig = BigWigTrack(stack.enter_context(atomic_path(bigwig)), chrom_sizes(fasta))
        for block in scan(model, fasta, stride, batch_size, device, progress):
            caller.add(block)
            if track is not None:
                _write_track(track, block, index)
            if wig is not None:
                wig.add(block, index)
        if wig is not None:
            wig.close()
        sites = caller.finish()
        write_bed(sites, out)
    return sites
