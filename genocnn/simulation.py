"""Simulated ChIP-seq-like data with real JASPAR motifs planted, and the oracle that scans for them.

Bound sequences carry sampled instances of the TF's JASPAR motif (random
position and strand) in an i.i.d. background; every sequence, bound or not,
may carry decoy sites of other JASPAR motifs, so decoys carry no label signal
and a scan with the true PWM (the oracle) is the best a model can do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .atomic import atomic_open
from .compare import jaspar_motif, jaspar_motifs
from .encode import ALPHABET, one_hot
from .errors import GenocnnError
from .fasta import write_fasta
from .motif_io import write_motifs
from .pwm import Motif

DEFAULT_DECOYS = ("MA0035", "MA0079", "MA0080", "MA0102")  # GATA1, SP1, SPI1, CEBPA


def find_motif(tf: str, release: str | None = None) -> Motif:
    """A JASPAR CORE vertebrate motif by matrix id (``MA0139``/``MA0139.1``) or TF name (``CTCF``)."""
    if re.fullmatch(r"MA\d{4}(\.\d+)?", tf.upper()):  # a matrix id; MAX and MAFK are names
        return jaspar_motif(tf.upper())
    for m in jaspar_motifs(release):
        if m.description.upper() == tf.upper():
            return m
    raise GenocnnError(f"no JASPAR CORE vertebrate motif named {tf!r}")


def sample_sites(ppm: np.ndarray, n: int, rng: np.random.Generator) -> list[str]:
    """Sample ``n`` sites from a PPM ``(4, w)``; each comes on a random strand."""
    cumulative = np.cumsum(ppm, axis=0)
    draws = rng.random((n, ppm.shape[1]))
    idx = (draws[:, None, :] > cumulative[None, :, :]).sum(axis=1).clip(0, 3)
    letters = np.array(list(ALPHABET))[idx]
    flip = rng.random(n) < 0.5
    letters[flip] = np.array(list("TGCA"))[idx[flip]][:, ::-1]
    return ["".join(row) for row in letters]


def background(n: int, length: int, gc: float, rng: np.random.Generator) -> list[str]:
    """``n`` i.i.d. sequences with GC fraction ``gc``."""
    p = np.array([1 - gc, gc, gc, 1 - gc]) / 2
    idx = rng.choice(4, size=(n, length), p=p)
    return ["".join(row) for row in np.array(list(ALPHABET))[idx]]


def plant(seq: str, site: str, rng: np.random.Generator) -> tuple[str, int]:
    """Write ``site`` over ``seq`` at a random position; returns the new sequence and the start."""
    start = int(rng.integers(0, len(seq) - len(site) + 1))
    return seq[:start] + site + seq[start + len(site) :], start


@dataclass
class Simulation:
    """Paths written by :func:`simulate` and the planted motif."""

    pos: Path
    neg: Path
    truth: Path
    motifs: Path
    motif: Motif


def simulate(
    out_dir: str | os.PathLike,
    tf: str = "CTCF",
    n: int = 2000,
    length: int = 200,
    site_fraction: float = 1.0,
    decoys: tuple[str, ...] = DEFAULT_DECOYS,
    decoy_rate: float = 0.5,
    gc: float = 0.42,
    seed: int = 0,
) -> Simulation:
    """Write ``pos.fa``, ``neg.fa``, ``truth.tsv`` and the planted ``motif.meme`` to ``out_dir``.

    Parameters
    ----------
    tf : str
        JASPAR matrix id or TF name of the motif planted in bound sequences.
    n : int
        Number of bound and of unbound sequences (each).
    length : int
    site_fraction : float
        Fraction of bound sequences that receive a site (the rest look unbound).
    decoys : tuple of str
        JASPAR motifs planted at ``decoy_rate`` in every sequence, bound or not.
    gc : float
        Background GC fraction.
    seed : int
    """
    if n < 1 or length < 1:
        raise GenocnnError("simulate: n and length must be positive")
    rng = np.random.default_rng(seed)
    motif = find_motif(tf)
    if motif.width > length:
        raise GenocnnError(f"simulate: motif {motif.name} ({motif.width} bp) is longer than {length} bp")
    base = motif.name.split(".")[0]
    decoy_motifs = [m for m in (find_motif(d) for d in decoys if d) if m.name.split(".")[0] != base]
    seqs = background(2 * n, length, gc, rng)
    rows = []
    for i in range(2 * n):
        bound = i < n
        note = {"id": f"{'pos' if bound else 'neg'}{i if bound else i - n}", "bound": int(bound),
                "site_start": -1, "decoy": ""}
        for d in decoy_motifs:
            if rng.random() < decoy_rate:
                seqs[i], _ = plant(seqs[i], sample_sites(d.ppm, 1, rng)[0], rng)
                note["decoy"] += (";" if note["decoy"] else "") + d.description
        if bound and rng.random() < site_fraction:
            seqs[i], note["site_start"] = plant(seqs[i], sample_sites(motif.ppm, 1, rng)[0], rng)
        rows.append(note)
    out = Path(out_dir)
    ids = [r["id"] for r in rows]
    sim = Simulation(out / "pos.fa", out / "neg.fa", out / "truth.tsv", out / "motif.meme", motif)
    write_fasta(zip(ids[:n], seqs[:n]), sim.pos)
    write_fasta(zip(ids[n:], seqs[n:]), sim.neg)
    with atomic_open(sim.truth) as fh:
        pd.DataFrame(rows).to_csv(fh, sep="\t", index=False)
    write_motifs([motif], sim.motifs, format="meme")
    return sim


def oracle_scores(sequences, pwm: np.ndarray) -> np.ndarray:
    """Best log-odds score of a PWM over every window and both strands.

    Parameters
    ----------
    sequences : list of str, or torch.Tensor (N, 4, L)
    pwm : np.ndarray, shape (4, w)
        Log-odds weights.

    Returns
    -------
    np.ndarray, shape (N,)
    """
    x = sequences if isinstance(sequences, torch.Tensor) else one_hot(list(sequences))
    weight = torch.as_tensor(np.stack([pwm, pwm[::-1, ::-1].copy()]), dtype=torch.float32)
    with torch.no_grad():
        scores = torch.nn.functional.conv1d(x, weight)
    return scores.amax(dim=(1, 2)).numpy()


MULTITASK_TFS = (
    "CTCF", "GATA1", "SPI1", "CEBPA", "FOXA1", "SOX2", "NRF1", "REST", "HNF4A", "TP53",
)


@dataclass
class MultiSimulation:
    """Paths written by :func:`simulate_multitask` and the planted motifs (one per task)."""

    fasta: Path
    labels: Path
    motifs: Path
    planted: list[Motif]


def simulate_multitask(
    out_dir: str | os.PathLike,
    tfs: tuple[str, ...] = MULTITASK_TFS,
    n: int = 10000,
    length: int = 200,
    max_sites: int = 3,
    gc: float = 0.42,
    seed: int = 0,
    min_sites: int = 0,
) -> MultiSimulation:
    """Write ``seqs.fa``, ``labels.tsv`` (one 0/1 column per TF) and ``motifs.meme``.

    Each sequence carries ``min_sites`` to ``max_sites`` sites (uniformly
    many), each of a TF drawn at random (with replacement); a TF's label is 1
    where the sequence carries its site.

    Parameters
    ----------
    tfs : tuple of str
        JASPAR matrix ids or TF names; the task columns are named exactly as
        given (``SPI1`` stays ``SPI1``, though JASPAR spells it ``Spi1``).
    n : int
        Number of sequences.
    """
    if not tfs:
        raise GenocnnError("simulate: give at least one TF")
    repeated = sorted({tf for tf in tfs if tfs.count(tf) > 1})
    if repeated:
        raise GenocnnError(f"simulate: `tfs` names {', '.join(repeated)} more than once (one task per TF)")
    rng = np.random.default_rng(seed)
    planted = [find_motif(tf) for tf in tfs]
    seqs = background(n, length, gc, rng)
    labels = np.zeros((n, len(tfs)), dtype=int)
    for i in range(n):
        for t in rng.choice(len(tfs), size=int(rng.integers(min_sites, max_sites + 1)), replace=True):
            seqs[i], _ = plant(seqs[i], sample_sites(planted[t].ppm, 1, rng)[0], rng)
            labels[i, t] = 1
    out = Path(out_dir)
    ids = [f"seq{i}" for i in range(n)]
    sim = MultiSimulation(out / "seqs.fa", out / "labels.tsv", out / "motifs.meme", planted)
    write_fasta(zip(ids, seqs), sim.fasta)
    table = pd.DataFrame(labels, columns=list(tfs))
    table.insert(0, "id", ids)
    with atomic_open(sim.labels) as fh:
        table.to_csv(fh, sep="\t", index=False)
    write_motifs(planted, sim.motifs, format="meme")
    return sim
