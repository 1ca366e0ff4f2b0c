"""Calibrated JASPAR names: print a name only when the match is real.

Tomtom's best match at q < 0.05 names far too much: over 14 calibration runs
(13 simulations with one planted JASPAR motif, plus 500 CTCF ChIP-seq peaks)
81 % of those names (672 of 830) named a TF that was not there, mostly CTCF
through its long matrices MA1929/MA1930: a 10-15 column filter with two or
three sharp columns lines them up with a few of the target's and the rest with
its spacer. :func:`confident_names` keeps the best match's name only when

1. its E-value (``p * number of targets``) is below 0.1;
2. the alignment covers >= 80 % of the query's informative columns (>= 0.5 bit);
3. and >= 50 % of the target's informative columns;
4. >= 4 aligned columns are informative in both;
5. its p-value beats the best match of each of 20 column-shuffled copies of the query;
6. the matches within 100x of the best p (at most 5) name one TF; if they do
   not, the JASPAR family they all share is printed instead, else the class
   they all share, else no name.

That rule gave 1 false name out of 122 on the same 14 runs (0.8 %), naming
the planted TF (or its family or class) in every run. Its last two settings
(the 100x window, the class fallback) were chosen after seeing the last three
simulations, so no untouched data validates it yet (see README).

Families and classes come from pyjaspar (offline), stored on the JASPAR
matrices by :func:`genocnn.compare.jaspar_motifs`. A ``--db`` motif file has
none: test 6 then asks the near-best matches to name one TF and, when they do
not, gives no name (there is no family or class to fall back on).

:func:`name_table` runs Tomtom and the rule for any list of motifs (filters,
clusters, seqlets) and returns the columns the export tables show.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import pandas as pd

from .compare import _jaspar_motifs, _release, database_motifs, tomtom_matches
from .pwm import Motif, column_information

INFORMATIVE_BITS = 0.5  # a column carries information when its IC is at least this (bits)
NEAR_BEST = 5  # Tomtom rows per motif the rule looks at (test 6)
N_OTHER = 2  # next-best match ids listed in ``other_matches``

#: What :func:`confident_names` returns, one row per motif.
RULE_COLUMNS = ["query", "jaspar_id", "jaspar_name", "level", "p_value", "q_value", "e_value", "null_p",
                "core_coverage", "target_core_coverage", "shared_informative", "reason"]
#: The naming columns of the export tables (``filters.tsv``, ``seqlets.tsv``, ...), in order.
TABLE_COLUMNS = ["jaspar_id", "jaspar_name", "name_level", "p_value", "q_value", "e_value", "offset",
                 "orientation", "other_matches", "name_reason", "jaspar_release", "jaspar_collection"]
#: Measurements behind the verdict, also in :func:`name_table`'s result.
DIAGNOSTIC_COLUMNS = ["null_p", "core_coverage", "target_core_coverage", "shared_informative"]


class Database(NamedTuple):
    """The motifs names come from, and how to label them in tables and the report."""

    targets: list[Motif]  #: compared with (JASPAR's are shared with a cache: do not modify them)
    release: str  #: ``"JASPAR2024"``; for a motif file, its file name; ``""`` for given motifs
    collection: str  #: ``"CORE vertebrates"``, ``"CORE all taxonomic groups"``, ``"--db file"`` or ``"given motifs"``
    families: Mapping[str, Sequence[str]] | None  #: matrix id -> JASPAR TF families (None: no metadata)
    classes: Mapping[str, Sequence[str]] | None  #: matrix id -> JASPAR TF classes


def database_labels(db=None, release: str | None = None, tax_group: str | None = "vertebrates") -> tuple[str, str]:
    """``(release, collection)`` labels of a database, as :class:`Database` holds them, without loading it.

    Examples
    --------
    >>> database_labels("/data/my motifs.meme")
    ('my motifs.meme', '--db file')
    >>> database_labels(release="JASPAR2022", tax_group=None)
    ('JASPAR2022', 'CORE all taxonomic groups')
    """
    if db is None:
        return _release(release), f"CORE {tax_group or 'all taxonomic groups'}"
    if isinstance(db, (str, os.PathLike)):
        return Path(db).name, "--db file"
    return "", "given motifs"


def load_database(db=None, release: str | None = None, tax_group: str | None = "vertebrates") -> Database:
    """The targets of ``db`` (as :func:`~genocnn.compare.database_motifs`), their labels and JASPAR annotations.

    Families and classes are known for JASPAR (``db`` None) and for given
    motifs that carry them (``extra["tf_family"]``, as ``jaspar_motifs``
    returns them); a motif file has none.
    """
    targets = database_motifs(db, release, tax_group)
    label, collection = database_labels(db, release, tax_group)
    if db is None:
        families, classes = jaspar_annotations(release, tax_group)
    elif not isinstance(db, (str, os.PathLike)) and targets and all("tf_family" in t.extra for t in targets):
        families, classes = _annotations(targets)
    else:
        families = classes = None
    return Database(targets, label, collection, families, classes)


@functools.lru_cache(maxsize=None)
def jaspar_annotations(release: str | None = None, tax_group: str | None = "vertebrates"
                       ) -> tuple[Mapping[str, tuple[str, ...]], Mapping[str, tuple[str, ...]]]:
    """JASPAR CORE matrix id -> TF families and -> TF classes (pyjaspar's ``tf_family``, ``tf_class``).

    Read once per release and group (read-only mappings).

    Examples
    --------
    >>> families, classes = jaspar_annotations("JASPAR2024")
    >>> families["MA0139.2"], classes["MA0139.2"]
    (('More than 3 adjacent zinc fingers',), ('C2H2 zinc finger factors',))
    """
    return _annotations(_jaspar_motifs(release, tax_group, "CORE"))


def _annotations(targets: Sequence[Motif]):
    families = {t.name: tuple(t.extra.get("tf_family") or ()) for t in targets}
    classes = {t.name: tuple(t.extra.get("tf_class") or ()) for t in targets}
    return MappingProxyType(families), MappingProxyType(classes)


def name_table(
    motifs: Sequence[Motif],
    db: Database | str | os.PathLike | Sequence[Motif] | None = None,
    release: str | None = None,
    tax_group: str | None = "vertebrates",
    matches: pd.DataFrame | None = None,
    n_other: int = N_OTHER,
    **rule,
) -> pd.DataFrame:
    """Name any list of motifs (filters, clusters, seqlets) by :func:`confident_names`: the export tables' columns.

    Parameters
    ----------
    motifs : sequence of Motif
        As compared (trimmed).
    db : Database, path, sequence of Motif, or None
        A :func:`load_database` result, or what it takes (with ``release``
        and ``tax_group``): None for JASPAR CORE.
    matches : pandas.DataFrame, optional
        ``tomtom_matches(motifs, db.targets, n_best >= 5)`` if already
        computed; otherwise computed here.
    n_other : int
        Next-best match ids listed in ``other_matches``.
    **rule
        Settings of :func:`confident_names` (its defaults are the calibrated rule).

    Returns
    -------
    pandas.DataFrame
        One row per motif, input order: ``motif``, then :data:`TABLE_COLUMNS`
        and :data:`DIAGNOSTIC_COLUMNS`. ``jaspar_id``, ``p_value``,
        ``q_value``, ``e_value``, ``offset`` and ``orientation`` describe the
        best match whether or not it names the motif; ``jaspar_name`` is the
        TF (``name_level`` ``"tf"``), the JASPAR family or class
        (``"family"``, ``"class"``), or ``""`` when the rule does not name the
        motif, ``name_reason`` saying why. ``other_matches`` lists the next
        matches' ids only (their names are not confident either).
        ``jaspar_release`` and ``jaspar_collection`` are the labels of
        :func:`database_labels`.
    """
    columns = ["motif", *TABLE_COLUMNS, *DIAGNOSTIC_COLUMNS]
    if not len(motifs):
        return pd.DataFrame({c: [] for c in columns})
    database = db if isinstance(db, Database) else load_database(db, release, tax_group)
    if matches is None:
        matches = tomtom_matches(motifs, database.targets, n_best=max(NEAR_BEST, n_other + 1))
    verdict = confident_names(motifs, matches, database.targets, database.families, database.classes, **rule)
    by_query = {q: g for q, g in matches.groupby("query", sort=False)} if len(matches) else {}
    rows = []
    for m, v in zip(motifs, verdict.itertuples(index=False)):
        hits = by_query.get(m.name)
        found = hits is not None and v.jaspar_id != ""
        best = hits.iloc[0] if found else None
        others = [] if hits is None else hits["target_id"].iloc[1 : n_other + 1].tolist()
        rows.append({
            "motif": m.name, "jaspar_id": v.jaspar_id or None, "jaspar_name": v.jaspar_name, "name_level": v.level,
            "p_value": v.p_value, "q_value": v.q_value, "e_value": v.e_value,
            "offset": int(best["offset"]) if found else None, "orientation": best["strand"] if found else None,
            "other_matches": "; ".join(others) or None, "name_reason": v.reason,
            "jaspar_release": database.release, "jaspar_collection": database.collection,
            **{c: getattr(v, c) for c in DIAGNOSTIC_COLUMNS},
        })
    table = pd.DataFrame(rows, columns=columns)
    table["offset"] = table["offset"].astype("Int64")
    return table


def confident_names(
    motifs: Sequence[Motif],
    matches: pd.DataFrame,
    targets: Sequence[Motif],
    families: Mapping[str, Sequence[str]] | None = None,
    classes: Mapping[str, Sequence[str]] | None = None,
    max_e_value: float = 0.1,
    min_core_coverage: float = 0.8,
    min_target_core_coverage: float = 0.5,
    min_shared_informative: int = 4,
    n_shuffles: int = 20,
    agree_within: float = 100.0,
    min_agree: float = 0.8,
    informative_bits: float = INFORMATIVE_BITS,
    seed: int = 0,
) -> pd.DataFrame:
    """Name each motif by its best Tomtom match only when the calibrated rule says the match is real.

    The best match (lowest p-value) of a query names it when all of:

    1. its E-value ``p_value * len(targets)`` is below ``max_e_value``;
    2. the alignment covers at least ``min_core_coverage`` of the query's
       informative columns (IC >= ``informative_bits``);
    3. it covers at least ``min_target_core_coverage`` of the target's
       informative columns, so that a fragment cannot claim a long matrix
       (CTCF MA1930, 33 bp) through a few columns or its spacer;
    4. at least ``min_shared_informative`` aligned columns are informative in
       both the query and the target;
    5. its p-value is below the best-match p-value of each of ``n_shuffles``
       column-shuffled copies of the query (same columns, same IC: a low-IC or
       AT-rich query whose shuffles match as well is not named);
    6. the matches whose p-value is within ``agree_within`` times the best
       (at most 5 rows of ``matches``) name one TF (heterodimers count by
       their parts). When they do not, a JASPAR family of the best match that
       at least ``min_agree`` of them share is printed (``level``
       ``"family"``; 4 of 5: one stray zinc finger among ETS matrices does
       not hide the ETS family; but not when another family is held by more
       than ``1 - min_agree`` of them: AP-1 sites match Fos and Jun matrices
       alike), else such a class (``"class"``), else no
       name. Without ``families`` (a motif file) there is nothing to fall
       back on: disagreeing near-best matches give no name.
       (Paralogs: an ERE learned from planted ESR1 matches PPARG's matrix
       better than ESR1's; an E-box matches a dozen bHLH families equally.)

    Otherwise ``jaspar_name`` is ``""`` and ``reason`` says which test failed
    first; the other columns still describe the best match. The defaults
    were calibrated on JASPAR CORE vertebrates (see the README).

    Parameters
    ----------
    motifs : sequence of Motif
        The queries, as compared with the database (trimmed).
    matches : pandas.DataFrame
        ``tomtom_matches(motifs, targets, n_best=5)`` (or more), best first per query.
    targets : sequence of Motif
        The whole database the matches were computed against: its size turns
        p-values into E-values, and the shuffles are compared with it.
    families, classes : mapping of matrix id -> sequence of names, optional
        JASPAR TF families and classes (:func:`jaspar_annotations`).
    max_e_value, min_core_coverage, min_target_core_coverage : float
    min_shared_informative : int
    n_shuffles : int
        Column-shuffled copies per query for test 5; 0 skips the test.
    agree_within : float
        p-value ratio that makes a match "near-best" for test 6.
    min_agree : float
        Share of the near-best matches that must hold the printed family or class (test 6).
    informative_bits : float
        Column information content (bits) that makes a column informative.
    seed : int
        For the column shuffles (drawn per motif from ``seed`` and its
        matrix, so a motif's verdict does not depend on the other motifs).

    Returns
    -------
    pandas.DataFrame
        One row per motif, in input order, columns :data:`RULE_COLUMNS`:
        ``query``, ``jaspar_id`` (best match, ``""`` for none),
        ``jaspar_name`` (TF, family or class name, ``""`` when not
        confident), ``level`` (``"tf"``, ``"family"``, ``"class"`` or
        ``""``), ``p_value``, ``q_value``, ``e_value``, ``null_p`` (smallest
        best-match p-value of the shuffles), ``core_coverage`` (fraction of
        the query's informative columns inside the alignment),
        ``target_core_coverage``, ``shared_informative`` and ``reason``
        (``"confident"``, ``"confident at family level"``, ``"confident at
        class level"``, ``"no match"`` or the failed test).
    """
    by_id = {t.name: t for t in targets}
    groups = {q: g for q, g in matches.groupby("query", sort=False)} if len(matches) else {}
    null_p = _shuffle_null(motifs, targets, n_shuffles, seed) if n_shuffles and len(motifs) else {}
    rows = []
    for m in motifs:
        g = groups.get(m.name)
        row = dict.fromkeys(RULE_COLUMNS, np.nan) | {"query": m.name, "jaspar_id": "", "jaspar_name": "",
                                                      "level": "", "shared_informative": 0, "reason": "no match"}
        if g is None or g["target_id"].iloc[0] not in by_id:
            rows.append(row)
            continue
        hit = g.iloc[0]
        target = by_id[hit["target_id"]]
        q_inf = column_information(m.ppm, m.background) >= informative_bits
        t_inf = column_information(target.ppm, target.background) >= informative_bits
        if hit["strand"] == "-":  # Tomtom aligned the target's reverse complement
            t_inf = t_inf[::-1]
        core, target_core, shared = alignment_coverage(q_inf, t_inf, int(hit["offset"]))
        p = float(hit["p_value"])
        row.update(jaspar_id=hit["target_id"], p_value=p, q_value=float(hit["q_value"]), e_value=p * len(targets),
                   null_p=null_p.get(m.name, np.nan), core_coverage=core, target_core_coverage=target_core,
                   shared_informative=shared)
        name, level, reason = hit["target_name"], "tf", "confident"
        if not row["e_value"] < max_e_value:
            reason = f"E-value {row['e_value']:.2g} >= {max_e_value:g}"
        elif core < min_core_coverage:
            reason = f"alignment covers {core:.0%} of the motif's informative columns"
        elif target_core < min_target_core_coverage:
            reason = f"alignment covers {target_core:.0%} of {target.name}'s informative columns"
        elif shared < min_shared_informative:
            reason = (f"{shared} informative columns aligned with informative target columns "
                      f"(< {min_shared_informative})")
        elif n_shuffles and not p < row["null_p"]:
            reason = f"a column-shuffled copy matches as well (p {row['null_p']:.2g})"
        else:
            close = g[g["p_value"] <= p * agree_within].head(NEAR_BEST)
            if len({frozenset(_components(n)) for n in close["target_name"]}) > 1:
                shared_families = _shared(families, close["target_id"], min_agree)
                shared_classes = _shared(classes, close["target_id"], min_agree)
                if shared_families:
                    name, level, reason = shared_families[0], "family", "confident at family level"
                elif shared_classes:
                    name, level, reason = shared_classes[0], "class", "confident at class level"
                else:
                    reason = "near-best matches disagree: " + ", ".join(dict.fromkeys(close["target_name"]))
        if reason.startswith("confident"):
            row.update(jaspar_name=name, level=level)
        row["reason"] = reason
        rows.append(row)
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def alignment_coverage(query_informative: np.ndarray, target_informative: np.ndarray,
                       offset: int) -> tuple[float, float, int]:
    """How much of each motif's informative core a Tomtom alignment covers.

    Query column ``i`` faces target column ``i + offset`` (the target as
    aligned, i.e. already reverse-complemented for strand ``"-"``).

    Parameters
    ----------
    query_informative, target_informative : np.ndarray of bool, shapes (wq,), (wt,)
    offset : int
        Tomtom's offset.

    Returns
    -------
    core_coverage : float
        Fraction of the query's informative columns inside the overlap (1.0 when it has none).
    target_core_coverage : float
        Fraction of the target's informative columns inside the overlap (0.0 when it has none).
    shared_informative : int
        Overlapping column pairs informative in both.

    Examples
    --------
    >>> q = np.array([False, True, True, True, False])
    >>> t = np.array([True] * 10)
    >>> alignment_coverage(q, t, 8)  # query columns 0-1 face target columns 8-9
    (0.3333333333333333, 0.2, 1)
    """
    query_informative = np.asarray(query_informative, dtype=bool)
    target_informative = np.asarray(target_informative, dtype=bool)
    i = np.arange(len(query_informative))
    inside = (i + offset >= 0) & (i + offset < len(target_informative))
    qi, tj = i[inside], i[inside] + offset
    n_q, n_t = int(query_informative.sum()), int(target_informative.sum())
    core = float(query_informative[qi].sum() / n_q) if n_q else 1.0
    target_core = float(target_informative[tj].sum() / n_t) if n_t else 0.0
    shared = int((query_informative[qi] & target_informative[tj]).sum())
    return core, target_core, shared


def _shuffle_null(motifs: Sequence[Motif], targets: Sequence[Motif], n_shuffles: int, seed: int) -> dict[str, float]:
    """Smallest best-match p-value over ``n_shuffles`` column permutations of each motif.

    The permutations of a motif are drawn from ``seed`` and its matrix alone,
    so that a motif gets the same verdict whatever other motifs it is named
    with (filters, clusters, seqlets); see :func:`shuffled_orders`.
    """
    shuffled = []
    for m in motifs:
        ppm = np.ascontiguousarray(m.ppm, dtype=np.float64)
        digest = hashlib.sha256(ppm.tobytes() + str(ppm.shape).encode()).digest()
        rng = np.random.default_rng([seed, *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])
        shuffled += [Motif(f"shuffle_{k}", ppm[:, order], pseudocount=0.0)
                     for k, order in enumerate(shuffled_orders(ppm, n_shuffles, rng))]
    best = tomtom_matches(shuffled, targets, n_best=1)["p_value"].to_numpy()  # one row per query, in order
    per_motif = best.reshape(len(motifs), n_shuffles).min(axis=1)
    return {m.name: float(p) for m, p in zip(motifs, per_motif)}


def shuffled_orders(ppm: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` column orders of ``ppm`` (4, W) that each change its consensus on both strands.

    A permutation that only swaps columns with the same best base gives the
    query back (``CACGTG``: 4 of its 720 orders; with 20 draws one such
    order turns up in about 1 query in 9), and a copy that matches as well as
    the query is then no evidence against it. Such orders are drawn again,
    up to ``50 n`` draws in all; a motif with fewer distinct orders
    (``AAAAAA``) is filled up with plain permutations.
    """
    consensus = ppm.argmax(axis=0)
    same = (consensus, (3 - consensus)[::-1])  # the consensus read on either strand (A<->T, C<->G)
    orders: list[np.ndarray] = []
    for _ in range(50 * n):
        order = rng.permutation(ppm.shape[1])
        if not any(np.array_equal(consensus[order], c) for c in same):
            orders.append(order)
            if len(orders) == n:
                break
    return orders + [rng.permutation(ppm.shape[1]) for _ in range(n - len(orders))]


def _shared(annotations: Mapping[str, Sequence[str]] | None, matrix_ids, min_share: float = 1.0) -> list[str]:
    """Names of the first matrix that at least ``min_share`` of ``matrix_ids`` have in ``annotations``.

    Most shared first, then alphabetical; none without annotations, and none
    when another name is held by more than ``1 - min_share`` of them: an
    AP-1 site whose near-best matches are Jun (4 of 5) and Fos (3 of 5)
    matrices, heterodimers counting for both, is neither family's.

    Examples
    --------
    >>> families = {"MA1": ["Ets-related"], "MA2": ["Ets-related"], "MA3": ["More than 3 adjacent zinc fingers"]}
    >>> _shared(families, ["MA1", "MA2", "MA3"]), _shared(families, ["MA1", "MA2", "MA3"], 0.6)
    ([], ['Ets-related'])
    >>> ap1 = {"J": ["Jun-related"], "FJ": ["Fos-related", "Jun-related"], "F": ["Fos-related"]}
    >>> _shared(ap1, ["J", "FJ", "F", "J", "FJ"], 0.8)
    []
    """
    if annotations is None or not len(matrix_ids):
        return []
    held = [set(annotations.get(t, ())) for t in matrix_ids]
    share = {n: sum(n in h for h in held) / len(held) for n in set().union(*held)}
    agreed = sorted((n for n in held[0] if share[n] >= min_share - 1e-9), key=lambda n: (-share[n], n))
    rivals = [n for n, v in share.items() if n not in agreed and v > 1 - min_share + 1e-9]
    return [] if rivals else agreed


def _components(name: str) -> set[str]:
    """TF names of a JASPAR name, heterodimers split: ``"PPARA::RXRA"`` -> ``{"PPARA", "RXRA"}``."""
    return {c.upper() for c in str(name).split("::")}
