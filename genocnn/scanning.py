"""The scan engine: per-window binding scores along long sequences (chromosomes).

Every window of the model's input length ``L`` starting at position ``s``
(``s = 0, stride, 2 * stride, ...``, up to ``len(seq) - L``) gets the
probability the model gives that window, exactly as ``model(one_hot(window))``
would in eval mode, including reverse-complement averaging. Data flow: FASTA ->
:func:`scan` -> :class:`~genocnn.sites.ScanBlock` s -> :mod:`genocnn.sites`
(BED6 sites) and :mod:`genocnn.tracks` (bedGraph, bigWig); :func:`scan_genome`
runs all three in one pass (``genocnn scan``). Their public names are re-exported here.

How: see :mod:`genocnn.scanengine` (one-hot, logits, sigmoid, strands and thresholds
on the model's device; only calls, and the optional track, come back) and
:mod:`genocnn.tiling` (fully convolutional windows for multi-block models).

Several processes
-----------------
Under ``torchrun`` (``dist``), chunk ``g`` of the genome (counted over all
records in order) is scanned by rank ``g mod world``; rank 0 gathers every
chunk's runs (and track parts, through files beside ``out``) and feeds them in
genome order to one :class:`~genocnn.sites.SiteCaller`, so the sites are the
same as a single process's.

Memory
------
An indexable FASTA (plain or bgzip, regular line widths) is read through its
``.fai`` with pyfaidx, one chunk at a time; other inputs (plain gzip) go
through :func:`~genocnn.fasta.read_fasta`, which holds one record string
(1 byte/bp). Beyond that only one chunk's codes, one-hot tensor and feature maps live
at a time, so peak memory does not grow with sequence length.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .atomic import atomic_open, atomic_path
from .devices import Distributed, resolve_device
from .encode import fit_length
from .errors import GenocnnError, check_count
from .fasta import DNA_LETTERS, dna_problem, iter_records, read_fasta
from .genome import UnindexedGenome, open_genome
from .inference import evaluating, model_device
from .models import ConvNet, task_index
from .scanengine import Engine, expand_codes, text_codes
from .scanruns import PendingRuns
from .thresholds import resolve_threshold
from .sites import Runs, ScanBlock, SiteCaller, call_sites, write_bed
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
            first = next(i for i, c in enumerate(text) if c not in DNA_LETTERS)
            raise GenocnnError(f"{self.path}: record {self.name!r} at position {(where.start or 0) + first + 1} "
                               f"{problem}")
        return text


def _records(fasta_or_sequences: str | os.PathLike | Iterable) -> Iterator[tuple[str, str | _IndexedRecord]]:
    """A FASTA path -> its records (through its ``.fai`` if it has one, see Memory); strings -> ``seq0, seq1, ...``."""
    if isinstance(fasta_or_sequences, (str, os.PathLike)):
        try:
            genome = open_genome(fasta_or_sequences)
        except UnindexedGenome:  # plain gzip, read-only folder: read it through once
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
class _Chunk:
    """One chunk of window starts of one record: ``first + stride * i``, ``i < count``; ``g`` counts chunks."""

    g: int
    chrom: str
    first: int
    count: int
    advance: int  # bp the scan moves on by
    chrom_length: int


def _chunks(records: Iterable, length: int, stride: int, step: int) -> Iterator[tuple[_Chunk, object]]:
    """Every chunk of every record, in order, with its record (read lazily: only scanned chunks are read)."""
    g = 0
    for chrom, seq in records:
        n = len(seq)
        last = max(n - length, 0)
        for a in range(0, last + 1, step):
            count = len(range(0, min(step, last - a + 1), stride))
            yield _Chunk(g, chrom, a, count, (step if a + step <= last else n - a), n), seq
            g += 1


def _host_codes(chunk: _Chunk, seq, length: int, stride: int) -> torch.Tensor:
    """1-byte codes (n,) uint8 on the host of one chunk's bases (a record shorter than ``length``: padded as
    :func:`~genocnn.encode.one_hot` pads)."""
    if chunk.chrom_length < length:
        return text_codes(fit_length(seq[0 : chunk.chrom_length], length))
    return text_codes(seq[chunk.first : chunk.first + stride * (chunk.count - 1) + length])


def _scores(engine: Engine, chunk: _Chunk, seq) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and strands (T, count) of one chunk of record ``seq``, on the engine's device.

    On CUDA the codes are copied from pinned memory, so the host goes on (reading and encoding the
    next chunk) while the device still works on this one.
    """
    codes = _host_codes(chunk, seq, engine.model.length, engine.stride)
    if engine.device.type == "cuda":
        codes = codes.pin_memory().to(engine.device, non_blocking=True)
    if chunk.chrom_length < engine.model.length:  # one window
        x, base = expand_codes(codes)
        fwd, rev = engine.short_logits(x)
        return engine.scores(fwd, rev, engine.window_scored(base, 1))
    return engine.chunk_scores(codes, chunk.count)


def _block(engine: Engine, chunk: _Chunk, probs: np.ndarray, strand: np.ndarray) -> ScanBlock:
    positions = chunk.first + engine.stride * np.arange(chunk.count, dtype=np.int64)
    return ScanBlock(chunk.chrom, positions, probs, strand, engine.model.length, engine.stride, chunk.chrom_length)


def _checked(stride: int, batch_size: int, chunk_size: int | None) -> None:
    for name, value in {"stride": stride, "batch_size": batch_size, "chunk_size": chunk_size}.items():
        check_count(name, value)


def scan(
    model: ConvNet,
    fasta_or_sequences: str | os.PathLike | Iterable,
    stride: int = 1,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    progress: bool = True,
    chunk_size: int | None = None,
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
    chunk_size : int or None
        Window starts per chunk (bounds memory: about ``chunk_size`` x the
        widest layer's channels x 4 bytes per feature map); None: the
        device's default (:data:`genocnn.scanengine.CHUNK`).

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
    _checked(stride, batch_size, chunk_size)
    dev = resolve_device(device) if device is not None else model_device(model)
    bar = tqdm(desc="scanning", unit="bp", unit_scale=True, disable=not progress)
    try:
        with contextlib.ExitStack() as stack, evaluating(model, dev), torch.inference_mode():
            engine = stack.enter_context(contextlib.closing(Engine(model, stride, batch_size, dev)))
            step = max(stride, engine.chunk_size(chunk_size) // stride * stride)
            for chunk, seq in _chunks(_records(fasta_or_sequences), model.length, stride, step):
                bar.set_postfix_str(chunk.chrom, refresh=False)
                probs, strand = _scores(engine, chunk, seq)
                yield _block(engine, chunk, probs.T.cpu().numpy(), strand.T.cpu().numpy())
                bar.update(chunk.advance)
    finally:
        bar.close()


def _scan_calls(model: ConvNet, fasta, threshold: float, index: int, stride: int, batch_size: int,
                device, progress: bool, rank: int, world: int, track: bool, track_dir: str | None,
                chunk_size: int | None) -> Iterator[tuple[_Chunk, Runs, np.ndarray | None]]:
    """This rank's chunks, each with its runs at ``threshold`` of task ``index`` and, with ``track``, its values.

    With ``track_dir`` (several processes) the values are saved there as ``<g>.npy`` and None is given.
    """
    _checked(stride, batch_size, chunk_size)
    dev = resolve_device(device) if device is not None else model_device(model)
    bar = tqdm(desc="scanning", unit="bp", unit_scale=True, disable=not (progress and rank == 0))
    try:
        with contextlib.ExitStack() as stack, evaluating(model, dev), torch.inference_mode():
            engine = stack.enter_context(contextlib.closing(Engine(model, stride, batch_size, dev)))
            step = max(stride, engine.chunk_size(chunk_size) // stride * stride)
            chunks = _chunks(_records(fasta), model.length, stride, step)
            pending: tuple[_Chunk, PendingRuns] | None = None
            # one chunk in flight: its runs (and track values) are read back while the device
            # already scores the next one (see PendingRuns)
            for chunk, seq in chunks:
                if chunk.g % world != rank:
                    continue
                bar.set_postfix_str(chunk.chrom, refresh=False)
                probs, strand = _scores(engine, chunk, seq)
                if pending is not None:
                    yield _finished(*pending, track_dir)
                pending = chunk, PendingRuns(probs[index], strand[index], threshold, values=track)
                bar.update(chunk.advance * world)
            if pending is not None:
                yield _finished(*pending, track_dir)
    finally:
        bar.close()


def _finished(chunk: _Chunk, pending: PendingRuns, track_dir: str | None) -> tuple[_Chunk, Runs, np.ndarray | None]:
    """A chunk's runs and track values, once back on the host (the values saved in ``track_dir`` when given)."""
    runs, values = pending.result(), pending.values
    if values is not None and track_dir is not None:
        np.save(os.path.join(track_dir, f"{chunk.g}.npy"), values)
        values = None
    return chunk, runs, values


def _merged(rank: int, world: int, mine: list, track_dir: str | None
            ) -> Iterator[tuple[_Chunk, Runs, np.ndarray | None]]:
    """Rank 0: every rank's chunks in genome order (track values read back from ``track_dir``)."""
    parts: list | None = [None] * world if rank == 0 else None
    torch.distributed.gather_object(mine, parts, dst=0)
    if rank != 0:
        return
    for chunk, runs, _ in sorted((c for part in parts for c in part), key=lambda c: c[0].g):
        values = np.load(os.path.join(track_dir, f"{chunk.g}.npy")) if track_dir is not None else None
        yield chunk, runs, values


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
    dist: Distributed | None = None,
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """Scan, call sites, and write ``out`` (BED6) and optionally ``bedgraph`` / ``bigwig``, in one pass.

    Sites are called at ``threshold`` when given, else at the threshold that
    gives ``fpr`` false calls per Mbp of shuffled background (default
    :data:`~genocnn.thresholds.DEFAULT_FPR`) by the model's calibration curve
    (:func:`~genocnn.thresholds.resolve_threshold`). ``out`` ending in
    ``.narrowPeak`` adds the summit (see :func:`~genocnn.sites.write_bed`).
    Thresholds are applied on the model's device; only the runs of windows at
    or above it (and the track's values, when asked for) come back.

    ``dist`` (under ``torchrun``, its process group started): the chunks are
    shared among the processes (see Several processes above) and rank 0
    writes the merged outputs; other ranks write nothing and return an empty
    table. None (or no process group): this process scans everything.

    Returns the sites table (see :func:`~genocnn.sites.call_sites`); its
    ``attrs["threshold"]`` and ``attrs["threshold_source"]`` say what was used.
    All files are written atomically: an error part-way leaves none behind.
    """
    several = dist is not None and dist.active and torch.distributed.is_initialized()
    rank, world = (dist.rank, dist.world) if several else (0, 1)
    index = task_index(model, task)
    threshold, source = resolve_threshold(model.calibration, threshold, fpr, index)
    caller = SiteCaller(threshold, index)
    want_track = bedgraph is not None or bigwig is not None
    with contextlib.ExitStack() as stack:
        track_dir = None
        if want_track and several:
            box = [tempfile.mkdtemp(prefix=".genocnn-scan-", dir=os.path.dirname(os.path.abspath(out)))
                   if rank == 0 else None]
            torch.distributed.broadcast_object_list(box, src=0)
            track_dir = box[0]
            if rank == 0:
                stack.callback(shutil.rmtree, track_dir, ignore_errors=True)
        tracks: list[BedGraphTrack | BigWigTrack] = []
        if rank == 0 and bedgraph is not None:
            tracks.append(BedGraphTrack(stack.enter_context(atomic_open(bedgraph))))
        if rank == 0 and bigwig is not None:
            tracks.append(BigWigTrack(stack.enter_context(atomic_path(bigwig)), chrom_sizes(_records(fasta))))
        chunks = _scan_calls(model, fasta, threshold, index, stride, batch_size, device, progress, rank, world,
                             want_track, track_dir, chunk_size)
        if several:
            chunks = _merged(rank, world, list(chunks), track_dir)
        for chunk, runs, values in chunks:
            caller.add_runs(chunk.chrom, chunk.first, stride, chunk.count, runs, model.length, chunk.chrom_length)
            if values is not None:
                block = ScanBlock(chunk.chrom, chunk.first + stride * np.arange(chunk.count, dtype=np.int64),
                                  values[:, None], np.zeros((chunk.count, 1), np.int8), model.length, stride,
                                  chunk.chrom_length)
                for track in tracks:
                    track.add(block, 0)
        for track in tracks:
            track.close()
        sites = caller.finish()
        if rank == 0:
            write_bed(sites, out)
    sites.attrs.update(threshold=threshold, threshold_source=source)
    return sites
