"""Tomtom naming against JASPAR: known motifs are found, random ones are not.

memelite compiles Tomtom with numba on first use (~35 s once per install; it
is cached on disk), so the main comparison runs once per module.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genocnn.compare import (
    COLUMNS,
    benjamini_hochberg,
    cluster_motifs,
    database_motifs,
    jaspar_motif,
    jaspar_motifs,
    name_motifs,
    tomtom_matches,
)
from genocnn.errors import GenocnnError
from genocnn.motif_io import write_motifs
from genocnn.pwm import Motif

N_RANDOM = 5


def sampled_motif(ppm: np.ndarray, n_sites: int, seed: int, name: str) -> Motif:
    """Counts of n_sites sites drawn from a PPM."""
    rng = np.random.default_rng(seed)
    columns = [rng.multinomial(n_sites, ppm[:, j] / ppm[:, j].sum()) for j in range(ppm.shape[1])]
    pfm = np.stack(columns, axis=1)
    return Motif(name=name, pfm=pfm.astype(float), sites=n_sites)


def random_motif(seed: int, width: int = 12) -> Motif:
    """A random, informative motif (Dirichlet(0.3) columns, about 11 bits)."""
    ppm = np.random.default_rng(seed).dirichlet([0.3] * 4, size=width).T
    return Motif(f"random_{seed}", ppm * 100, sites=100)


@pytest.fixture(scope="module")
def db() -> list[Motif]:
    return jaspar_motifs()


@pytest.fixture(scope="module")
def ctcf() -> Motif:
    return jaspar_motif("MA0139")


@pytest.fixture(scope="module")
def queries(ctcf) -> list[Motif]:
    noisy = sampled_motif(ctcf.ppm, 200, seed=0, name="ctcf_200_sites")
    flipped = Motif("ctcf_rc", ctcf.pfm[::-1, ::-1].copy())
    return [ctcf, noisy, flipped] + [random_motif(s) for s in range(N_RANDOM)]


@pytest.fixture(scope="module")
def table(queries, db) -> pd.DataFrame:
    return tomtom_matches(queries, db, n_best=3)


def best(table: pd.DataFrame, query: str) -> pd.Series:
    return table[table["query"] == query].iloc[0]


# ---------------------------------------------------------------- JASPAR


def test_jaspar_motifs_are_the_core_vertebrate_matrices(db, ctcf):
    assert len(db) > 500
    assert all(m.name.startswith("MA") and m.description for m in db)
    assert len({m.name for m in db}) == len(db)
    ctcf_in_db = [m for m in db if m.name == ctcf.name]
    assert len(ctcf_in_db) == 1
    np.testing.assert_array_equal(ctcf_in_db[0].pfm, ctcf.pfm)


def test_jaspar_motifs_carry_families_and_classes(db):
    """pyjaspar's TF families and classes ride along in ``extra`` (genocnn.naming reads them)."""
    by_id = {m.name: m for m in db}
    assert by_id["MA0139.2"].extra["tf_family"] == ["More than 3 adjacent zinc fingers"]
    assert by_id["MA0139.2"].extra["tf_class"] == ["C2H2 zinc finger factors"]
    assert all(isinstance(m.extra["tf_family"], list) and isinstance(m.extra["tf_class"], list) for m in db)
    assert sum(bool(m.extra["tf_family"]) for m in db) > 0.8 * len(db)


def test_jaspar_motifs_returns_copies(db):
    again = jaspar_motifs()
    again[0].pfm[:] = 0
    again.pop()
    assert len(jaspar_motifs()) == len(db)
    assert jaspar_motifs()[0].pfm.sum() > 0


def test_jaspar_motif_base_id_is_latest_version(ctcf):
    assert ctcf.description == "CTCF"
    assert ctcf.width == 15 and ctcf.pfm.shape == (4, 15)
    assert ctcf.sites == int(round(ctcf.pfm.sum(axis=0).max()))
    old = jaspar_motif("MA0139.1")
    assert old.name == "MA0139.1"
    assert int(ctcf.name.split(".")[1]) >= 1


def test_jaspar_other_releases_and_groups():
    assert jaspar_motif("MA0139.1", release="JASPAR2020").width == 19
    insects = jaspar_motifs(tax_group="insects")
    assert 50 < len(insects) < 500


@pytest.mark.parametrize("matrix_id", ["MA9999.9", "not-an-id"])
def test_unknown_jaspar_id_raises(matrix_id):
    with pytest.raises(GenocnnError, match="JASPAR matrix"):
        jaspar_motif(matrix_id)


def test_unknown_release_raises():
    with pytest.raises(GenocnnError, match="unknown JASPAR release"):
        jaspar_motifs(release="JASPAR1999")


def test_empty_selection_raises():
    with pytest.raises(GenocnnError, match="no JASPAR motifs"):
        jaspar_motifs(tax_group="martians")


# ---------------------------------------------------------------- Tomtom


def test_table_shape_and_order(table, queries):
    assert list(table.columns) == COLUMNS
    assert list(table["query"].unique()) == [q.name for q in queries]
    assert (table.groupby("query", sort=False).size() == 3).all()
    for _, rows in table.groupby("query", sort=False):
        assert rows["p_value"].is_monotonic_increasing
    assert (table["q_value"] >= table["p_value"]).all()
    assert table["strand"].isin(["+", "-"]).all()
    assert (table["overlap"] >= 1).all()


def test_ctcf_matches_itself(table, ctcf):
    row = best(table, ctcf.name)
    assert (row.target_id, row.target_name, row.strand, row.offset) == (ctcf.name, "CTCF", "+", 0)
    assert row.overlap == ctcf.width
    assert row.p_value < 1e-30 and row.q_value < 1e-25


def test_sampled_ctcf_still_matches_ctcf(table):
    row = best(table, "ctcf_200_sites")
    assert row.target_name == "CTCF" and row.target_id.startswith("MA0139")
    assert row.p_value < 1e-20


def test_reverse_complement_matches_on_minus_strand(table, ctcf):
    row = best(table, "ctcf_rc")
    assert (row.target_id, row.strand) == (ctcf.name, "-")
    assert row.p_value < 1e-30


def test_random_motifs_have_no_significant_match(table):
    # Observed over seeds 0-39: best p-values >= 1.7e-5, q-values >= 0.008.
    for seed in range(N_RANDOM):
        row = best(table, f"random_{seed}")
        assert row.p_value > 1e-5
        assert row.q_value > 0.05


def test_n_best_none_keeps_every_target_and_q_matches_bh(ctcf, db):
    full = tomtom_matches([ctcf], db, n_best=None)
    assert len(full) == len(db)
    assert set(full["target_id"]) == {m.name for m in db}
    np.testing.assert_allclose(full["q_value"], naive_bh(full["p_value"].to_numpy()), rtol=1e-12)


def test_name_motifs_defaults_to_jaspar_and_reads_a_file(tmp_path, ctcf, db):
    default = name_motifs([ctcf])
    assert (default.loc[0, "target_id"], default.loc[0, "target_name"]) == (ctcf.name, "CTCF")
    path = tmp_path / "db.meme"
    write_motifs(db, path)
    from_file = name_motifs([ctcf], db=path, n_best=2)
    assert len(from_file) == 2
    assert from_file.loc[0, "target_id"] == ctcf.name
    assert from_file.loc[0, "target_name"] == "CTCF"  # the MEME description
    from_list = name_motifs([ctcf], db=db)
    pd.testing.assert_frame_equal(from_list, default)


def test_no_queries_gives_empty_table(db):
    empty = tomtom_matches([], db)
    assert list(empty.columns) == COLUMNS and len(empty) == 0


def test_bad_arguments_raise(ctcf, db):
    with pytest.raises(GenocnnError, match="target"):
        tomtom_matches([ctcf], [])
    with pytest.raises(GenocnnError, match="n_best"):
        tomtom_matches([ctcf], db, n_best=0)


# ---------------------------------------------------------------- Benjamini-Hochberg


def naive_bh(p: np.ndarray) -> np.ndarray:
    """q_i = min over j with p_j >= p_i of p_j * m / rank_j, written the slow way."""
    m = len(p)
    ranks = np.array([np.sum(p <= x) for x in p])  # ties share the largest rank
    return np.array(
        [min(1.0, min(p[j] * m / ranks[j] for j in range(m) if p[j] >= p[i])) for i in range(m)]
    )


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_against_naive(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=40) ** 3
    p[:5] = p[5]  # ties
    np.testing.assert_allclose(benjamini_hochberg(p), naive_bh(p), rtol=1e-12)


def test_benjamini_hochberg_edge_cases():
    assert benjamini_hochberg(np.array([])).shape == (0,)
    assert benjamini_hochberg(np.array([0.3])).tolist() == [0.3]
    assert benjamini_hochberg(np.array([0.9, 0.95])).tolist() == [0.95, 0.95]


# ---------------------------------------------------------------- release, group


def test_name_motifs_release_and_tax_group(ctcf):
    old = name_motifs([ctcf], release="JASPAR2020")
    assert old.loc[0, "target_name"] == "CTCF"
    assert old.loc[0, "target_id"] in {m.name for m in jaspar_motifs(release="JASPAR2020")}
    insects = name_motifs([ctcf], tax_group="insects")
    assert insects.loc[0, "target_id"] in {m.name for m in jaspar_motifs(tax_group="insects")}
    assert len(database_motifs(tax_group=None)) > len(database_motifs())
    with pytest.raises(GenocnnError, match="unknown JASPAR release"):
        name_motifs([ctcf], release="JASPAR1999")


def test_strand_and_offset_align_a_fragment(ctcf, db):
    """Tomtom's offset: query column 0 faces target column `offset` (of its reverse complement on -)."""
    inner = Motif("inner", ctcf.pfm[:, 4:13].copy())
    flipped = Motif("flipped", ctcf.pfm[::-1, ::-1][:, 2:10].copy())
    wider = Motif("wider", np.concatenate([np.full((4, 3), 5.0), ctcf.pfm], axis=1))
    hits = tomtom_matches([inner, flipped, wider], [m for m in db if m.name != "MA1929.2" and m.name != "MA1930.2"])
    assert hits["target_id"].tolist() == [ctcf.name] * 3
    assert list(zip(hits["strand"], hits["offset"])) == [("+", 4), ("-", 2), ("+", -3)]


# ---------------------------------------------------------------- clustering


def test_cluster_motifs_groups_copies_and_reverse_complements(ctcf):
    randoms = [random_motif(s) for s in range(30)]
    noisy = sampled_motif(ctcf.ppm, 200, seed=3, name="ctcf_sampled")
    flipped = Motif("ctcf_rc", ctcf.pfm[::-1, ::-1].copy())
    fragment = Motif("ctcf_fragment", ctcf.pfm[:, 3:14].copy())
    motifs = [randoms[0], ctcf, *randoms[1:15], noisy, flipped, *randoms[15:], fragment]
    labels = cluster_motifs(motifs)
    assert labels.shape == (len(motifs),) and labels.dtype == np.int64
    assert labels[0] == 1 and labels[1] == 2  # numbered in order of appearance
    ctcf_like = [i for i, m in enumerate(motifs) if m.name.startswith(("ctcf", "MA0139"))]
    assert {labels[i] for i in ctcf_like} == {2}
    others = [labels[i] for i in range(len(motifs)) if i not in ctcf_like]
    assert len(set(others)) == len(others) == len(randoms)  # random motifs stay alone
    assert sorted(set(labels.tolist())) == list(range(1, labels.max() + 1))


def test_cluster_motifs_is_single_linkage_and_symmetric():
    """A-B and B-C linked puts A and C together even if A and C do not match."""
    rng = np.random.default_rng(7)
    ppm = rng.dirichlet([0.2] * 4, size=24).T * 100
    a, b, c = Motif("a", ppm[:, :12]), Motif("b", ppm[:, 4:16]), Motif("c", ppm[:, 8:20])
    motifs = [a, *[random_motif(s, width=12) for s in range(100, 125)], b, c]
    labels = cluster_motifs(motifs)
    assert labels[0] == labels[-2] == labels[-1]
    assert len(set(labels.tolist())) == len(motifs) - 2
    assert cluster_motifs([a, *motifs[1:-2], c]).tolist() == list(range(1, len(motifs)))  # a, c apart
    reordered = cluster_motifs(motifs[::-1])[::-1]
    assert reordered[0] == reordered[-1] == reordered[-2]


def test_cluster_motifs_edge_cases(ctcf):
    assert cluster_motifs([]).tolist() == []
    assert cluster_motifs([ctcf]).tolist() == [1]
    assert cluster_motifs([ctcf, ctcf]).tolist() == [1, 1]
    assert cluster_motifs([ctcf, random_motif(0)], p_value=0.0).tolist() == [1, 2]
