"""Simulated data: JASPAR lookups by name or matrix id, and the many-TF design's site counts."""

from __future__ import annotations

import pandas as pd
import pytest

from genocnn.errors import GenocnnError
from genocnn.fasta import read_fasta
from genocnn.simulation import find_motif, simulate_multitask


@pytest.mark.parametrize("tf, matrix", [("MAX", "MA0058"), ("MAFK", "MA0496"), ("ma0139.2", "MA0139.2"),
                                        ("MA0139", "MA0139"), ("ctcf", "MA0139")])
def test_find_motif_tells_names_starting_with_ma_from_matrix_ids(tf, matrix):
    assert find_motif(tf).name.startswith(matrix)


def test_find_motif_unknown_matrix_id():
    with pytest.raises(GenocnnError, match="MA9999"):
        find_motif("MA9999.1")


def test_simulate_multitask_min_sites(tmp_path):
    sim = simulate_multitask(tmp_path, tfs=("MAX", "GATA1"), n=60, length=80, min_sites=1, max_sites=2, seed=3)
    labels = pd.read_csv(sim.labels, sep="\t")
    assert list(labels.columns) == ["id", "MAX", "GATA1"]
    assert (labels[["MAX", "GATA1"]].sum(axis=1) >= 1).all()  # every sequence carries a site
    assert [i for i, _ in read_fasta(sim.fasta)] == list(labels["id"])
