"""Calibrated naming (genocnn.naming): each ingredient of the rule on real-looking motifs.

Queries are JASPAR matrices (pyjaspar, offline), fragments and shuffles of
them, consensus motifs of paralog-rich families, and a real low-information
filter of the CTCF demo run that Tomtom's best match alone names CTCF. The
release is pinned (JASPAR2024, as the golden tests) so that a new pyjaspar
release does not move the answers. Tomtom runs once for most queries (one
module fixture); memelite compiles it on the first call of a new environment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genocnn.compare import jaspar_motif, tomtom_matches
from genocnn.motif_io import write_motifs
from genocnn.naming import (
    DIAGNOSTIC_COLUMNS,
    TABLE_COLUMNS,
    Database,
    alignment_coverage,
    confident_names,
    database_labels,
    jaspar_annotations,
    load_database,
    name_table,
)
from genocnn.pwm import Motif

RELEASE = "JASPAR2024"

# filter_31 of `genocnn motifs` on the CTCF demo peaks (data/, seed 0): consensus aaAtaatgaA, 3.2 bits.
# Tomtom's best match is CTCF (MA1929.2, q 6e-4), yet its windows lie on CTCF sites less often than
# windows in general (0.11x): an AT-rich filter lined up with the spacer of a 31 bp CTCF matrix.
AT_RICH_FILTER = np.array([
    [985, 979, 1734, 713, 645, 867, 616, 768, 706, 1176],
    [112, 72, 74, 245, 494, 601, 215, 136, 268, 148],
    [631, 832, 160, 308, 522, 420, 221, 854, 580, 264],
    [363, 208, 123, 825, 430, 203, 1039, 333, 537, 503],
], dtype=float)


def consensus_motif(seq: str, p: float = 0.85, sites: int = 200) -> Motif:
    """A learned-looking motif: probability ``p`` on each consensus base, the rest spread evenly."""
    pfm = np.full((4, len(seq)), (1 - p) / 3)
    for j, base in enumerate(seq):
        pfm["ACGT".index(base), j] = p
    return Motif(seq, pfm * sites, sites=sites)


@pytest.fixture(scope="module")
def database() -> Database:
    return load_database(release=RELEASE)


@pytest.fixture(scope="module")
def ctcf() -> Motif:
    return jaspar_motif("MA0139.2", release=RELEASE)


@pytest.fixture(scope="module")
def queries(ctcf) -> list[Motif]:
    gata1 = jaspar_motif("MA0035.5", release=RELEASE)
    gata_scaled = gata1.pfm / gata1.pfm.sum(axis=0) * ctcf.pfm.sum(axis=0).mean()
    rng = np.random.default_rng(0)
    return [
        Motif("ctcf_fragment", ctcf.pfm[:, 2:13].copy(), sites=ctcf.sites),  # a trimmed filter-sized piece
        Motif("ctcf_5_columns", ctcf.pfm[:, 8:13].copy(), sites=ctcf.sites),  # too little of MA0139
        Motif("ctcf_then_gata", np.concatenate([ctcf.pfm, gata_scaled], axis=1)),  # 7 extra informative columns
        Motif("aaAtaatgaA", AT_RICH_FILTER, sites=2091),
        Motif("ctcf_shuffled", ctcf.pfm[:, rng.permutation(ctcf.width)], sites=ctcf.sites),
        *[Motif(f"random_{s}", np.random.default_rng(s).dirichlet([0.3] * 4, 12).T * 100, sites=100)
          for s in range(3)],
        consensus_motif("AGATAAG"),  # GATA1-6 match alike
        consensus_motif("GGGAATTTCC"),  # NF-kB half sites: NFKB1/2, REL, RELA, RELB
        consensus_motif("AGGTCAGCATGACCT"),  # ERE: ESR1/2 and other nuclear receptors
    ]


@pytest.fixture(scope="module")
def names(queries, database) -> pd.DataFrame:
    return name_table(queries, database).set_index("motif")


# ---------------------------------------------------------------- no Tomtom


def test_alignment_coverage_by_hand():
    q = np.array([False, True, True, True, False])
    t = np.array([True] * 10)
    assert alignment_coverage(q, t, 0) == (1.0, 0.5, 3)  # query columns 0-4 face target columns 0-4
    assert alignment_coverage(q, t, 8) == (1 / 3, 0.2, 1)  # query columns 0-1 face target columns 8-9
    assert alignment_coverage(q, t, -2) == (2 / 3, 0.3, 2)  # query columns 2-4 face target columns 0-2
    assert alignment_coverage(q, t, 20) == (0.0, 0.0, 0)  # no overlap
    assert alignment_coverage(np.zeros(3, bool), t, 0) == (1.0, 0.3, 0)  # an uninformative query
    assert alignment_coverage(q, np.zeros(4, bool), 0) == (1.0, 0.0, 0)  # an uninformative target


def test_database_labels():
    from pyjaspar import JASPAR_LATEST_RELEASE

    assert database_labels() == (JASPAR_LATEST_RELEASE, "CORE vertebrates")
    assert database_labels(release="JASPAR2020", tax_group="insects") == ("JASPAR2020", "CORE insects")
    assert database_labels(tax_group=None)[1] == "CORE all taxonomic groups"
    assert database_labels("/some/where/my.meme") == ("my.meme", "--db file")
    assert database_labels([Motif("m", np.eye(4))]) == ("", "given motifs")


def test_jaspar_annotations_are_cached_per_release_and_read_only():
    families, classes = jaspar_annotations(RELEASE)
    assert jaspar_annotations(RELEASE)[0] is families  # lru_cache: read once per release
    assert families["MA0139.2"] == ("More than 3 adjacent zinc fingers",)
    assert classes["MA0139.2"] == ("C2H2 zinc finger factors",)
    assert families["MA0035.5"] == ("C4-GATA-related",)
    with pytest.raises(TypeError):
        families["MA0139.2"] = ("changed",)


def test_no_motifs_reads_no_database(tmp_path):
    table = name_table([], tmp_path / "missing.meme")
    assert list(table.columns) == ["motif", *TABLE_COLUMNS, *DIAGNOSTIC_COLUMNS] and len(table) == 0


# ---------------------------------------------------------------- the rule's ingredients


def test_table_columns_and_best_match_kept(names, queries, database):
    assert list(names.index) == [q.name for q in queries]
    assert list(names.columns) == [*TABLE_COLUMNS, *DIAGNOSTIC_COLUMNS]
    assert (names["jaspar_release"] == RELEASE).all() and (names["jaspar_collection"] == "CORE vertebrates").all()
    assert names["jaspar_id"].notna().all() and names["p_value"].notna().all()  # named or not
    np.testing.assert_allclose(names["e_value"], names["p_value"] * len(database.targets))
    unnamed = names["jaspar_name"] == ""
    assert unnamed.any() and (~unnamed).any()
    assert (names.loc[unnamed, "name_level"] == "").all()
    assert not names.loc[unnamed, "name_reason"].str.startswith("confident").any()
    assert names.loc[~unnamed, "name_level"].isin(["tf", "family", "class"]).all()
    assert names["other_matches"].str.fullmatch(r"MA\d{4}\.\d+; MA\d{4}\.\d+").all()  # ids only, no names


def test_trimmed_ctcf_fragment_gets_its_name(names, ctcf):
    row = names.loc["ctcf_fragment"]
    assert (row["jaspar_id"], row["jaspar_name"], row["name_level"]) == (ctcf.name, "CTCF", "tf")
    assert (row["offset"], row["orientation"]) == (2, "+")
    assert row["name_reason"] == "confident" and row["e_value"] < 1e-20


def test_low_ic_at_rich_filter_is_not_named_ctcf(names, database):
    """Today's rule (best match, q < 0.05) named it CTCF; the alignment covers none of CTCF's core."""
    query = Motif("aaAtaatgaA", AT_RICH_FILTER, sites=2091)
    assert query.consensus == "aaAtaatgaA" and query.information_content < 4
    best = tomtom_matches([query], database.targets).iloc[0]
    assert best["target_name"] == "CTCF" and best["q_value"] < 0.05
    row = names.loc["aaAtaatgaA"]
    assert row["jaspar_id"] == best["target_id"] and row["jaspar_name"] == ""
    assert row["name_reason"] == f"alignment covers 0% of {best['target_id']}'s informative columns"
    assert row["target_core_coverage"] == 0.0


def test_a_fragment_cannot_claim_a_long_matrix(names):
    row = names.loc["ctcf_5_columns"]
    assert row["jaspar_id"] == "MA0139.2" and row["e_value"] < 1e-10  # a strong match...
    assert row["jaspar_name"] == "" and row["target_core_coverage"] < 0.5  # ...of under half of CTCF's core
    assert row["name_reason"].startswith("alignment covers 42% of MA0139.2")


def test_extra_informative_columns_fail_query_coverage(names):
    row = names.loc["ctcf_then_gata"]
    assert row["jaspar_id"] == "MA0139.2" and row["jaspar_name"] == ""
    assert row["core_coverage"] < 0.8
    assert row["name_reason"] == "alignment covers 63% of the motif's informative columns"


def test_random_motifs_fail_the_e_value(names):
    for seed in range(3):
        row = names.loc[f"random_{seed}"]
        assert row["jaspar_name"] == "" and row["e_value"] >= 0.1
        assert row["name_reason"].startswith("E-value")


def test_column_shuffled_query_fails_the_null(queries, database):
    """With every other test off: CTCF's columns in order beat their shuffles; shuffled, they do not."""
    picked = [q for q in queries if q.name in ("ctcf_fragment", "ctcf_shuffled")]
    loose = dict(max_e_value=np.inf, min_core_coverage=0.0, min_target_core_coverage=0.0, min_shared_informative=0)
    matches = tomtom_matches(picked, database.targets, n_best=5)
    rule = confident_names(picked, matches, database.targets, database.families, database.classes, **loose)
    rule = rule.set_index("query")
    assert rule.loc["ctcf_fragment", "p_value"] < rule.loc["ctcf_fragment", "null_p"]
    assert rule.loc["ctcf_fragment", "jaspar_name"] == "CTCF"
    shuffled = rule.loc["ctcf_shuffled"]
    assert shuffled["p_value"] >= shuffled["null_p"] and shuffled["jaspar_name"] == ""
    assert shuffled["reason"].startswith("a column-shuffled copy matches as well")
    no_null = confident_names(picked, matches, database.targets, database.families, database.classes,
                              n_shuffles=0, **loose).set_index("query")
    assert no_null.loc["ctcf_shuffled", "jaspar_name"] != ""  # the null is what stops it
    assert no_null["null_p"].isna().all()


def test_shared_informative_columns_threshold(queries, database):
    fragment = [q for q in queries if q.name == "ctcf_fragment"]
    matches = tomtom_matches(fragment, database.targets, n_best=5)
    rule = confident_names(fragment, matches, database.targets, min_shared_informative=11, n_shuffles=0)
    assert rule.loc[0, "shared_informative"] == 10
    assert rule.loc[0, "reason"] == "10 informative columns aligned with informative target columns (< 11)"


@pytest.mark.parametrize("query, level, name", [
    ("AGATAAG", "family", "C4-GATA-related"),
    ("GGGAATTTCC", "family", "NF-kappaB-related factors"),
    ("AGGTCAGCATGACCT", "class", "Nuclear receptors with C4 zinc fingers"),
])
def test_paralogs_give_a_family_or_class_name(names, query, level, name):
    row = names.loc[query]
    assert (row["jaspar_name"], row["name_level"]) == (name, level), row["name_reason"]
    assert row["name_reason"] == f"confident at {level} level"


def test_a_db_file_has_no_families_so_disagreeing_matches_give_no_name(queries, database, names, tmp_path):
    """--db: the same matrices from a file, without JASPAR's annotations (no family or class to fall back on)."""
    path = tmp_path / "db.meme"
    write_motifs(database.targets, path)
    picked = [q for q in queries if q.name in ("ctcf_fragment", "AGATAAG", "aaAtaatgaA")]
    table = name_table(picked, path).set_index("motif")
    assert (table["jaspar_release"] == "db.meme").all() and (table["jaspar_collection"] == "--db file").all()
    assert table.loc["ctcf_fragment", "jaspar_name"] == "CTCF"  # one TF: named as with JASPAR
    gata = table.loc["AGATAAG"]
    assert gata["jaspar_id"] == names.loc["AGATAAG", "jaspar_id"] and gata["jaspar_name"] == ""
    assert gata["name_reason"].startswith("near-best matches disagree: ")
    assert table.loc["aaAtaatgaA", "jaspar_name"] == ""
    # given motifs that carry JASPAR's annotations (as jaspar_motifs returns them) keep the family step
    given = name_table(picked, list(database.targets)).set_index("motif")
    assert given.loc["AGATAAG", "jaspar_name"] == "C4-GATA-related"
    assert (given["jaspar_collection"] == "given motifs").all()


# cluster_5 of `genocnn motifs` on the held-out 10-TF simulation (bench/recovery.py --design heldout, seed 0),
# where ELK1 (MA0028.3) was planted: its near-best JASPAR matches are four ETS factors and one zinc finger.
ETS_CLUSTER = np.array([
    [1313, 26, 155, 69, 61, 16, 9, 31, 195],
    [109, 1477, 37, 25, 1713, 1755, 15, 104, 397],
    [301, 131, 29, 27, 11, 29, 1731, 1596, 144],
    [102, 191, 1604, 1704, 40, 25, 70, 94, 1089],
], dtype=float)


def test_one_stray_near_best_match_does_not_hide_the_family(database):
    motif = [Motif("ACTTCCGGT", ETS_CLUSTER, sites=1825)]
    matches = tomtom_matches(motif, database.targets, n_best=5)
    strict = confident_names(motif, matches, database.targets, database.families, database.classes, min_agree=1.0)
    assert strict.loc[0, "jaspar_name"] == "" and strict.loc[0, "reason"].startswith("near-best matches disagree")
    rule = confident_names(motif, matches, database.targets, database.families, database.classes)
    assert (rule.loc[0, "jaspar_name"], rule.loc[0, "level"]) == ("Ets-related", "family")
    table = name_table(motif, release=RELEASE)  # through the table genocnn motifs writes
    assert table.loc[0, "jaspar_name"] == "Ets-related" and table.loc[0, "name_reason"] == "confident at family level"


# the AP-1 motif genocnn motifs built from planted FOSL1 sites (Koo & Eddy design, bench/recovery.py)
AP1_CLUSTER = np.array([
    [1263, 0, 0, 1661, 29, 0, 10, 1651, 84],
    [0, 0, 0, 0, 800, 0, 1651, 6, 340],
    [351, 0, 1620, 0, 790, 0, 0, 1, 246],
    [47, 1661, 41, 0, 43, 1661, 0, 3, 992],
], dtype=float)


def test_an_ap1_site_matching_fos_and_jun_matrices_gets_the_bzip_class(database):
    """Its near-best matches are Jun (4 of 5) and Fos (3 of 5) matrices: neither family may claim it."""
    motif = [Motif("ATGACTCAT", AP1_CLUSTER, sites=1662)]
    matches = tomtom_matches(motif, database.targets, n_best=5)
    close = set(matches["target_id"])
    fams = [set(database.families[t]) for t in close]
    assert sum("Jun-related" in f for f in fams) >= 3 and sum("Fos-related" in f for f in fams) >= 2
    rule = confident_names(motif, matches, database.targets, database.families, database.classes)
    assert (rule.loc[0, "jaspar_name"], rule.loc[0, "level"]) == ("Basic leucine zipper factors (bZIP)", "class")


def test_shuffles_never_give_the_query_back(database):
    """A one-hot E-box (CACGTG): its shuffles differ from it on both strands, so it beats their matches."""
    from genocnn.naming import shuffled_orders

    ebox = np.array([1, 0, 1, 2, 3, 2])  # C A C G T G, its own reverse complement
    for seed in range(30):
        for order in shuffled_orders(np.eye(4)[:, ebox], 20, np.random.default_rng(seed)):
            assert not np.array_equal(ebox[order], ebox)
    assert len(shuffled_orders(np.eye(4)[:, [0] * 6], 20, np.random.default_rng(0))) == 20  # AAAAAA: no choice
    query = Motif("ebox", np.eye(4)[:, ebox] * 500 + 1)
    matches = tomtom_matches([query], database.targets, n_best=5)
    rule = confident_names([query], matches, database.targets, database.families, database.classes)
    assert rule.loc[0, "null_p"] > rule.loc[0, "p_value"], rule.loc[0, "reason"]
