"""Motif refinement (genocnn.refine): each sequence's best site, counted again, recovers a matrix from its consensus."""

from __future__ import annotations

import numpy as np
import torch

from genocnn.compare import jaspar_motif
from genocnn.encode import one_hot, reverse_complement_sequence
from genocnn.pwm import column_information
from genocnn.refine import best_sites, count_sites, refine_counts


def planted_sites(ppm: np.ndarray, n: int = 1500, length: int = 100, seed: int = 0):
    """Uniform random sequences, one site sampled from ``ppm`` in each (either strand, anywhere, edges included)."""
    rng = np.random.default_rng(seed)
    w = ppm.shape[1]
    seqs, truth = [], []
    for _ in range(n):
        s = rng.choice(list("ACGT"), length)
        site = "".join("ACGT"[rng.choice(4, p=ppm[:, j])] for j in range(w))
        start = int(rng.integers(0, length - w + 1))
        forward = rng.random() < 0.5
        s[start : start + w] = list(site if forward else reverse_complement_sequence(site))
        seqs.append("".join(s))
        truth.append((start, forward))
    return one_hot(seqs), truth


def test_best_sites_find_planted_consensus_sites_on_both_strands():
    gata = jaspar_motif("MA0035.5", release="JASPAR2024")  # GATA1, 7 bp
    consensus = np.eye(4)[:, ["ACGT".index(b) for b in gata.consensus]] * 0.96 + 0.01
    x, truth = planted_sites(consensus, n=300)
    found = best_sites(x, consensus)
    hits = sum((o == (a if f else a + 6)) and (s == (1 if f else -1)) for (_, o, s), (a, f) in zip(found, truth))
    assert hits >= 0.95 * len(truth)  # a random 7-mer beats a planted consensus now and then
    assert (count_sites(x.numpy(), found, 0, 7).argmax(axis=0) == consensus.argmax(axis=0)).all()


def test_refining_a_consensus_recovers_the_matrix_of_sampled_sites():
    """Started from CEBPB's consensus alone, with flanks to spare: the counts approach the JASPAR matrix."""
    cebpb = jaspar_motif("MA0466.4", release="JASPAR2024")  # 10 bp, graded columns
    ppm = cebpb.ppm
    x, _ = planted_sites(ppm)
    start = np.eye(4)[:, ppm.argmax(axis=0)] * 0.96 + 0.01
    counts = refine_counts(x, start, iterations=3, flank=3)
    assert counts.shape == (4, 16)
    got = counts / counts.sum(axis=0)
    inside = got[:, 3:13]
    assert np.abs(inside - ppm).max() < 0.15, np.round(inside - ppm, 2)  # the start: up to 0.5 off
    # the consensus alone says 0.97 on every column; the refined counts follow the graded ones
    graded = ppm.max(axis=0) < 0.8
    assert graded.any() and (inside.max(axis=0)[graded] < 0.9).all()
    flanks = got[:, [0, 1, 2, 13, 14, 15]]
    assert (column_information(flanks) < 0.3).all()  # background: trimmed off after
    assert np.isclose(counts[:, 5].sum(), len(x))  # one site per sequence


def test_refine_counts_handles_no_sequences_and_a_motif_longer_than_them():
    ppm = np.full((4, 6), 0.25)
    assert refine_counts(torch.zeros(0, 4, 50), ppm).shape == (4, 6)
    assert not refine_counts(torch.zeros(3, 4, 4), ppm).any()
