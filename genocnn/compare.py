"""Name motifs by Tomtom against JASPAR (memelite's Tomtom, pyjaspar's offline database).

``tomtom_matches`` compares the PPMs of query motifs with those of target
motifs. ``jaspar_motifs`` loads a JASPAR collection from the SQLite file that
ships with pyjaspar (no network), with each matrix's JASPAR TF families and
classes. ``name_motifs`` puts the two together: Tomtom's matches, not names;
:mod:`genocnn.naming` decides which best matches are names.
``cluster_motifs`` groups motifs that match each other (redundant filters).

memelite compiles Tomtom with numba on the first call (about 35 s) and caches
the compiled code in its ``__pycache__``, so later processes start in well under
a second.
"""

from __future__ import annotations

import copy
import functools
import os
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from Bio import BiopythonWarning

from genocnn.errors import GenocnnError
from genocnn.motif_io import read_motifs
from genocnn.pwm import Motif, motif_from_counts

COLUMNS = ["query", "target_id", "target_name", "p_value", "q_value", "offset", "overlap", "strand"]


def jaspar_motifs(
    release: str | None = None,
    tax_group: str | None = "vertebrates",
    collection: str | None = "CORE",
) -> list[Motif]:
    """Load the latest version of every matrix of a JASPAR collection.

    Parameters
    ----------
    release : str or None
        A pyjaspar release such as ``"JASPAR2024"``; None means the latest.
    tax_group : str or None
        Taxonomic group, e.g. ``"vertebrates"``, ``"insects"``; None for all.
    collection : str or None
        JASPAR collection, e.g. ``"CORE"``, ``"UNVALIDATED"``; None for all.

    Returns
    -------
    list of Motif
        ``name`` = matrix ID (``"MA0139.2"``), ``description`` = TF name,
        ``pfm`` = the JASPAR counts, with Motif's default pseudocount;
        ``extra["tf_family"]`` and ``extra["tf_class"]`` hold JASPAR's TF
        families and classes (lists, e.g. ``["C2H2 zinc finger factors"]``;
        :mod:`genocnn.naming` reads them). Loaded once per argument set
        (about 5 s) and then copied from a cache.

    Examples
    --------
    >>> ctcf = [m for m in jaspar_motifs() if m.description == "CTCF"]
    >>> ctcf[0].name.startswith("MA0139")
    True
    """
    return copy.deepcopy(list(_jaspar_motifs(release, tax_group, collection)))


def jaspar_motif(matrix_id: str, release: str | None = None) -> Motif:
    """One JASPAR matrix by ID, e.g. ``"MA0139.2"``, or base ID ``"MA0139"`` (latest version).

    Parameters
    ----------
    matrix_id : str
        JASPAR matrix ID, with or without the version.
    release : str or None
        A pyjaspar release; None means the latest.

    Returns
    -------
    Motif
        As in ``jaspar_motifs``.

    Raises
    ------
    GenocnnError
        Unknown release or matrix ID.

    Examples
    --------
    >>> jaspar_motif("MA0139").description
    'CTCF'
    """
    db = _jaspar_db(release)
    try:
        with warnings.catch_warnings():  # pyjaspar warns, then returns None; we raise
            warnings.simplefilter("ignore", BiopythonWarning)
            bio = db.fetch_motif_by_id(matrix_id)
    except Exception as exc:  # pyjaspar raises various errors for malformed IDs
        raise GenocnnError(f"JASPAR matrix {matrix_id!r}: lookup failed ({exc})") from exc
    if bio is None:
        raise GenocnnError(f"JASPAR matrix {matrix_id!r} not found in {_release(release)}")
    return motif_from_counts(bio.counts, bio.matrix_id, bio.name or "")


def tomtom_matches(
    queries: Sequence[Motif], targets: Sequence[Motif], n_best: int | None = 1
) -> pd.DataFrame:
    """Compare query motifs with target motifs by Tomtom (memelite).

    Parameters
    ----------
    queries : sequence of Motif
        Motifs to name; their ``ppm`` (shape (4, w), float64) is compared.
    targets : sequence of Motif
        The database, e.g. ``jaspar_motifs()``. Tomtom's p-values use the
        target columns as background, so give a full database (memelite warns
        below 25 targets).
    n_best : int or None
        Rows kept per query, best p-value first; None keeps every target.

    Returns
    -------
    pandas.DataFrame
        One row per query and kept target, sorted by query (input order) then
        p-value, with columns ``query`` (name), ``target_id`` (target name),
        ``target_name`` (target description, or its name if empty),
        ``p_value``, ``q_value`` (Benjamini-Hochberg over all targets of that
        query), ``offset`` and ``overlap`` (alignment, as memelite reports
        them), ``strand`` (``"+"``, or ``"-"`` when the target's reverse
        complement matches best).

    Raises
    ------
    GenocnnError
        No targets, or n_best < 1.
    """
    from memelite import tomtom  # numba; imported here so ``import genocnn`` stays light

    if not targets:
        raise GenocnnError("tomtom_matches needs at least one target motif")
    if n_best is not None and n_best < 1:
        raise GenocnnError(f"n_best must be >= 1 or None, got {n_best}")
    if not queries:
        return pd.DataFrame({c: [] for c in COLUMNS})
    Qs = [np.asarray(q.ppm, dtype=np.float64) for q in queries]
    Ts = [np.asarray(t.ppm, dtype=np.float64) for t in targets]
    p, _scores, offsets, overlaps, strands = tomtom(Qs, Ts)  # each (n_queries, n_targets)
    keep = len(targets) if n_best is None else min(n_best, len(targets))
    rows = []
    for i, query in enumerate(queries):
        q = benjamini_hochberg(p[i])
        for j in np.argsort(p[i], kind="stable")[:keep]:
            target = targets[j]
            rows.append(
                (
                    query.name,
                    target.name,
                    target.description or target.name,
                    float(p[i, j]),
                    float(q[j]),
                    int(offsets[i, j]),
                    int(overlaps[i, j]),
                    "-" if strands[i, j] else "+",
                )
            )
    return pd.DataFrame(rows, columns=COLUMNS)


def name_motifs(
    motifs: Sequence[Motif],
    db: str | os.PathLike | Sequence[Motif] | None = None,
    n_best: int | None = 1,
    release: str | None = None,
    tax_group: str | None = "vertebrates",
) -> pd.DataFrame:
    """Best database matches of each motif: ``tomtom_matches`` against a database.

    Parameters
    ----------
    motifs : sequence of Motif
        Query motifs.
    db : path, sequence of Motif, or None
        None: ``jaspar_motifs(release, tax_group)`` (JASPAR CORE); a path: a
        MEME/JASPAR/TRANSFAC/HOMER file read by ``read_motifs``; or motifs.
    n_best : int or None
        Rows kept per query.
    release : str or None
        JASPAR release when ``db`` is None, e.g. ``"JASPAR2022"``; None = latest.
    tax_group : str or None
        JASPAR taxonomic group when ``db`` is None; None = all groups.

    Returns
    -------
    pandas.DataFrame
        As ``tomtom_matches``.

    Raises
    ------
    GenocnnError
        Unknown release, a group with no matrices, or an unreadable ``db`` file.
    """
    return tomtom_matches(motifs, database_motifs(db, release, tax_group), n_best=n_best)


def database_motifs(
    db: str | os.PathLike | Sequence[Motif] | None = None,
    release: str | None = None,
    tax_group: str | None = "vertebrates",
) -> list[Motif]:
    """The target motifs ``name_motifs`` uses for ``db``, ``release`` and ``tax_group``.

    Returns
    -------
    list of Motif
        JASPAR CORE matrices (shared with the cache: do not modify them), the
        motifs of a file, or ``list(db)``.
    """
    if db is None:
        return list(_jaspar_motifs(release, tax_group, "CORE"))
    if isinstance(db, (str, os.PathLike)):
        return read_motifs(db)
    return list(db)


def cluster_motifs(motifs: Sequence[Motif], p_value: float = 1e-4) -> np.ndarray:
    """Group motifs that match each other by Tomtom (single linkage).

    The motifs are compared with each other only (not with a database: a
    database's sharp columns would make the flat columns of weak filters look
    alike). Two motifs are linked when Tomtom's p-value in either direction is
    below ``p_value``; clusters are the connected components. With fewer
    than 25 motifs Tomtom's p-values depend strongly on the set (memelite's
    warning is silenced here), so small sets cluster less reliably.

    Parameters
    ----------
    motifs : sequence of Motif
    p_value : float
        Largest Tomtom p-value that links two motifs.

    Returns
    -------
    np.ndarray, shape (len(motifs),), int64
        Cluster number per motif, 1-based, numbered in order of first
        appearance (the first motif is in cluster 1).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = Motif("a", rng.dirichlet([0.2] * 4, 10).T * 50)
    >>> b = Motif("b", rng.dirichlet([0.2] * 4, 10).T * 50)
    >>> cluster_motifs([a, b, a]).tolist()
    [1, 2, 1]
    """
    from memelite import tomtom

    n = len(motifs)
    if n < 2:
        return np.ones(n, dtype=np.int64)
    ppms = [np.asarray(m.ppm, dtype=np.float64) for m in motifs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer than 25 targets
        p = np.asarray(tomtom(ppms, ppms)[0], dtype=np.float64)
    linked = (p < p_value) | (p.T < p_value)
    labels = np.zeros(n, dtype=np.int64)
    for start in range(n):  # breadth-first over the links, in input order
        if labels[start]:
            continue
        labels[start] = labels.max() + 1
        queue = [start]
        while queue:
            i = queue.pop()
            for j in np.flatnonzero(linked[i] & (labels == 0)):
                labels[j] = labels[start]
                queue.append(int(j))
    return labels


def split_by_task(labels, per_task: np.ndarray, share: float = 0.25) -> np.ndarray:
    """Split groups whose members the model uses as different motifs, one per task.

    Members are grouped by the task where their own influence is largest.
    Two such sets stay together unless each one's summed influence on the
    other's task is under ``share`` of its summed influence on its own: then
    the model reads them as evidence for different TFs (a MAFK and a FOSL1
    filter that Tomtom links through their shared ``TGAsTCA``). A motif that
    serves several tasks alike stays one group; one task changes nothing.

    Parameters
    ----------
    labels : array-like of int, shape (n,)
        Group label per filter motif.
    per_task : np.ndarray, shape (n, T)
        Each filter's own influence per task.

    Returns
    -------
    np.ndarray, shape (n,)
        Labels, split groups given new ones (after the largest label).

    Examples
    --------
    >>> v = np.array([[0.06, -0.01], [0.05, 0.0], [0.0, 0.07], [0.02, 0.04]])
    >>> split_by_task([0, 0, 0, 0], v).tolist()
    [0, 0, 1, 1]
    """
    labels = np.array(labels, dtype=np.int64)
    per_task = np.asarray(per_task, dtype=np.float64)
    if per_task.ndim != 2 or per_task.shape[1] < 2 or not len(labels):
        return labels
    fresh = int(labels.max()) + 1
    for g in np.unique(labels):
        members = np.flatnonzero(labels == g)
        own = per_task[members].argmax(axis=1)
        tasks = [int(t) for t in np.unique(own)]
        root = {t: t for t in tasks}

        def find(t: int) -> int:
            while root[t] != t:
                t = root[t]
            return t

        for i, a in enumerate(tasks):
            for b in tasks[i + 1 :]:
                on = {t: per_task[members[own == t]].sum(axis=0) for t in (a, b)}
                apart = on[a][b] < share * on[a][a] and on[b][a] < share * on[b][b]
                if not apart:
                    root[find(b)] = find(a)
        parts = list(dict.fromkeys(find(t) for t in own.tolist()))
        for part in parts[1:]:
            labels[members[[find(int(t)) == part for t in own]]] = fresh
            fresh += 1
    return labels


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), same order as the input.

    Parameters
    ----------
    p_values : np.ndarray, shape (m,)

    Returns
    -------
    np.ndarray, shape (m,), float64
        ``min over k >= rank of p_(k) * m / k``, clipped to 1.

    Examples
    --------
    >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    q = np.empty(m)
    q[order] = q_sorted
    return q


# ---------------------------------------------------------------- JASPAR


def _release(release: str | None) -> str:
    from pyjaspar import JASPAR_LATEST_RELEASE

    return release or JASPAR_LATEST_RELEASE


@functools.lru_cache(maxsize=None)
def _jaspar_db(release: str | None):
    from pyjaspar import jaspar_releases, jaspardb

    name = _release(release)
    if name not in jaspar_releases:
        raise GenocnnError(
            f"unknown JASPAR release {name!r}; pyjaspar has {', '.join(sorted(jaspar_releases))}"
        )
    return jaspardb(release=name)


@functools.lru_cache(maxsize=None)
def _jaspar_motifs(
    release: str | None, tax_group: str | None, collection: str | None
) -> tuple[Motif, ...]:
    db = _jaspar_db(release)
    with warnings.catch_warnings():  # "Zero motifs returned": we raise below
        warnings.simplefilter("ignore", BiopythonWarning)
        bios = db.fetch_motifs(collection=collection, tax_group=[tax_group] if tax_group else None)
    motifs = tuple(_with_annotations(motif_from_counts(bio.counts, bio.matrix_id, bio.name or ""), bio)
                   for bio in bios)
    if not motifs:
        raise GenocnnError(
            f"no JASPAR motifs for release={_release(release)}, tax_group={tax_group}, "
            f"collection={collection}"
        )
    return motifs



def _with_annotations(motif: Motif, bio) -> Motif:
    """``motif`` with pyjaspar's TF families and classes in ``extra["tf_family"]`` / ``extra["tf_class"]``."""
    motif.extra.update(tf_family=list(bio.tf_family or []), tf_class=list(bio.tf_class or []))
    return motif
