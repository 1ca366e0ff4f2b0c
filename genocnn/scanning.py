"""The scan engine: per-window binding scores along long sequences (chromosomes).

Every window of the model's input length ``L`` starting at position ``s``
(``s = 0, stride, 2 * stride, ...``, up to ``len(seq) - L``) gets the
probability the model gives that window, exactly as ``model(one_hot(window))``
would in eval mode, including reverse-complement averaging. Data flow: FASTA ->
:func:`scan` -> :class:`~genocnn.sites.ScanBlock` s -> :mod:`genocnn.sites`
(BED6 sites) and :mod:`genocnn.tracks` (bedGraph, bigWig); :func:`scan_genome`
runs all three in one pass (``genocnn scan``). Their public names are re-exported here.

How: see :mod:`genocnn.tiling` (fully convolutional windows, once per pooling phase).

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
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .atomic import atomic_open, atomic_path
from .devices import resolve_device
from .encode import MIN_BASE_FRACTION, one_hot, reverse_complement
from .errors import GenocnnError
from .fasta import dna_problem, iter_records, read_fasta
from .genome import open_genome
from .inference import evaluating, model_device
from .models import ConvNet, task_index
from .thresholds import resolve_threshold
from .tiling import fast_logits, naive_logits, plan
from .sites import ScanBlock, SiteCaller, call_sites, write_bed
from .tracks import BedGraphTrack, BigWigTrack, chrom_sizes, write_bedgraph

__all__ = ["ScanBlock", "SiteCaller", "call_sites", "scan", "scan_genome", "write_bed", "write_bedgraph"]


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
    stages: list | None  # None: naive windows (no global pooling)
    stride: int
    batch_size: int
    device: torch.device

    def logits(self, x: torch.Tensor, first: int, count: int) -> torch.Tensor:
        """Un-averaged logits, shape (count, T), of windows ``x[:, :, s : s + L]``, ``s = first + stride * i``."""
        if self.stages is None:
            starts = torch.arange(first, first + self.stride * count, self.stride, device=self.device)
            return naive_logits(self.model, x, starts, self.batch_size)
        return fast_logits(self.model, self.stages, x, first, self.stride, count)

    def block(self, chrom: str, positions: np.ndarray, forward: torch.Tensor, reverse: torch.Tensor | None,
              n: int, scored: np.ndarray) -> ScanBlock:
        """Probabilities and strands from forward (and reverse-complement) logits, each (len(positions), T).

        ``scored`` (len(positions),) bool: windows left unscored (see :func:`window_has_sequence`) get NaN.
        """
        averaged = forward if reverse is None else 0.5 * (forward + reverse)
        if reverse is None:
            strand = np.zeros(tuple(forward.shape), dtype=np.int8)
        else:
            strand = np.where((forward >= reverse).cpu().numpy(), 1, -1).astype(np.int8)
        probs = torch.sigmoid(averaged).float().cpu().numpy()
        probs[~scored] = np.nan
        return ScanBlock(chrom, positions, probs, strand, self.model.length, self.stride, n)

    def record(self, chrom: str, seq, step: int) -> Iterator[tuple[ScanBlock, int]]:
        """Blocks of one record, each with the bp it advances the scan; chunks hold ``step`` window starts."""
        model, length, rc, n = self.model, self.model.length, self.model.config.rc_average, len(seq)
        if n < length:
            x = one_hot(seq[0:n], length=length).to(self.device)
            reverse = model.strand_logits(reverse_complement(x)) if rc else None
            scored = window_has_sequence(x, length, 0, 1, 1)
            yield self.block(chrom, np.zeros(1, dtype=np.int64), model.strand_logits(x), reverse, n, scored), n
            return
        last = n - length  # last window start
        for a in range(0, last + 1, step):
            local = np.arange(0, min(step, last - a + 1), self.stride, dtype=np.int64)
            x = one_hot(seq[a : a + int(local[-1]) + length]).to(self.device)
            count = len(local)
            forward = self.logits(x, 0, count)
            # window s on the forward strand is window N - L - s of the reverse complement
            reverse = self.logits(reverse_complement(x), x.shape[-1] - length - int(local[-1]), count).flip(0) if rc else None
            scored = window_has_sequence(x, length, 0, self.stride, count)
            yield self.block(chrom, local + a, forward, reverse, n, scored), (step if a + step <= last else n - a)


def window_has_sequence(x: torch.Tensor, window: int, first: int, stride: int, count: int) -> np.ndarray:
    """Which windows hold enough real sequence to be scored.

    Parameters
    ----------
    x : torch.Tensor, shape (1, 4, n)
        One-hot chunk; a column is a base when one channel is 1.
    window : int
        Window length ``L``.
    first, stride, count : int
        Windows start at ``first + stride * i`` for ``i < count``.

    Returns
    -------
    np.ndarray, shape (count,), bool
        At least :data:`~genocnn.encode.MIN_BASE_FRACTION` of the window's ``L`` positions are A/C/G/T.

    Examples
    --------
    >>> from genocnn.encode import one_hot
    >>> window_has_sequence(one_hot("ACGTNNNNNN"), 4, 0, 2, 4).tolist()
    [True, True, False, False]
    """
    base = (x[0].amax(dim=0) >= 1.0).to(torch.int64).cpu()
    csum = torch.cat([torch.zeros(1, dtype=torch.int64), base.cumsum(0)])
    starts = torch.arange(first, first + stride * count, stride)
    ends = torch.clamp(starts + window, max=len(base))
    return ((csum[ends] - csum[starts]).numpy() >= MIN_BASE_FRACTION * window)


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
        A window less than half A/C/G/T (N runs, padding; :data:`~genocnn.encode.MIN_BASE_FRACTION`)
        is not scored: its ``probs`` are NaN, so it is never called or tracked.
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
    stages = plan(model) if model.config.global_pool in ("max", "avg") else None
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
    threshold: float | None = None,
    stride: int = 1,
    task: int | str | None = None,
    bedgraph: str | os.PathLike | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = True,
    bigwig: str | os.PathLike | None = None,
    fpr: float | None = None,
) -> pd.DataFrame:
    """Scan, call sites, and write ``out`` (BED6) and optionally ``bedgraph`` / ``bigwig``, in one pass.

    Sites are called at ``threshold`` when given, else at the threshold that
    gives ``fpr`` false calls per Mbp of shuffled background (default
    :data:`~genocnn.thresholds.DEFAULT_FPR`) by the model's calibration curve
    (:func:`~genocnn.thresholds.resolve_threshold`). ``out`` ending in
    ``.narrowPeak`` adds the summit (see :func:`~genocnn.sites.write_bed`).

    Returns the sites table (see :func:`~genocnn.sites.call_sites`); its
    ``attrs["threshold"]`` and ``attrs["threshold_source"]`` say what was used.
    All files are written atomically: an error part-way leaves none behind.
    """
    index = task_index(model, task)
    threshold, source = resolve_threshold(model.calibration, threshold, fpr, index)
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
    sites.attrs.update(threshold=threshold, threshold_source=source)
    return sites
