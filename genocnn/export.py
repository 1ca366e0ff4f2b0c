"""The one export pipeline for motifs: name them, write every format, write the table (and logos).

:func:`export_named_motifs` names motifs by Tomtom against JASPAR (or a given
database), writes them as MEME, JASPAR, TRANSFAC and HOMER files, writes a
table built from the matches and, on request, one logo per motif above its
best match. Both ``genocnn motifs`` (:func:`export_motifs`, first-layer filter
motifs, ``motifs.*`` and ``filters.tsv``, plus the HTML report of
:mod:`genocnn.report`) and ``genocnn attribute``
(:func:`~genocnn.attribution_files.export_attributions`, seqlet motifs,
``seqlet_motifs.*`` and ``seqlets.tsv``) go through it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .atomic import atomic_open
from .compare import cluster_motifs, database_motifs, name_motifs
from .inference import encode_for
from .motif_io import write_motifs
from .motifs import MotifList, extract_motifs, nullification_effects
from .pwm import Motif, trim
from .report import REPORT_FILE, write_report

#: File suffix of each motif format written, in writing order.
MOTIF_SUFFIXES = {"meme": "meme", "jaspar": "jaspar", "transfac": "transfac", "homer": "motif"}
LOGO_DIR = "logos"
N_MATCHES = 3  # the best match, and two more listed in ``other_matches``


def motif_files(stem: str) -> dict[str, str]:
    """File name of each motif format for a file stem.

    Examples
    --------
    >>> motif_files("motifs")
    {'meme': 'motifs.meme', 'jaspar': 'motifs.jaspar', 'transfac': 'motifs.transfac', 'homer': 'motifs.motif'}
    """
    return {fmt: f"{stem}.{suffix}" for fmt, suffix in MOTIF_SUFFIXES.items()}


MOTIF_FILES = motif_files("motifs")


class Export(NamedTuple):
    """What :func:`export_named_motifs` wrote and found."""

    table: pd.DataFrame  #: the table written
    matches: pd.DataFrame  #: Tomtom rows, best first per query (``compare.COLUMNS``)
    logos: dict[str, Path]  #: motif name -> logo PNG (empty without ``logo_dir``)


def best_matches(matches: pd.DataFrame) -> pd.DataFrame:
    """The first (best) match of each query, indexed by query name; empty for no matches."""
    return matches.drop_duplicates("query").set_index("query") if len(matches) else pd.DataFrame()


def match_columns(best: pd.Series | None) -> dict:
    """Table columns of a best match: ``jaspar_id, jaspar_name, p_value, q_value, offset, orientation``.

    Parameters
    ----------
    best : pandas.Series or None
        A ``tomtom_matches`` row; None (no match) gives missing values.

    Returns
    -------
    dict
        ``offset`` and ``orientation`` say how Tomtom aligned them: query
        column 0 faces column ``offset`` of the match, of its reverse
        complement when ``orientation`` is ``"-"``.
    """
    if best is None:
        return {"jaspar_id": None, "jaspar_name": None, "p_value": np.nan, "q_value": np.nan,
                "offset": None, "orientation": None}
    return {"jaspar_id": best["target_id"], "jaspar_name": best["target_name"],
            "p_value": float(best["p_value"]), "q_value": float(best["q_value"]),
            "offset": int(best["offset"]), "orientation": best["strand"]}


def export_named_motifs(
    motifs: Sequence[Motif],
    out_dir: str | os.PathLike,
    stem: str,
    tabulate: Callable[[pd.DataFrame], pd.DataFrame],
    table_file: str,
    db: str | os.PathLike | None = None,
    release: str | None = None,
    tax_group: str | None = "vertebrates",
    n_best: int = 1,
    logo_dir: str | None = None,
    allow_empty: bool = True,
) -> Export:
    """Name motifs against a database, write them in every format, then the table and logos.

    Each motif's ``description`` becomes its best match, ``"<id> <name>"``.
    Files are written atomically, in the order: ``<stem>.meme``,
    ``<stem>.jaspar``, ``<stem>.transfac``, ``<stem>.motif`` (HOMER),
    ``table_file`` (tab-separated, floats as ``%.4g``) and
    ``<logo_dir>/<motif>.png``; the database is read and the motifs named
    before anything is written.

    Parameters
    ----------
    motifs : sequence of Motif
        In the order the motif files list them.
    out_dir : str or PathLike
    stem : str
        Stem of the motif files.
    tabulate : callable
        Builds the table from the matches (see ``matches`` of :class:`Export`).
    table_file : str
    db, release, tax_group
        The database, as :func:`~genocnn.compare.database_motifs`; read only
        when there are motifs.
    n_best : int
        Matches kept per motif.
    logo_dir : str, optional
        Draw ``logo_dir/<motif>.png``, each motif above its best match.
    allow_empty : bool
        With no motifs, write no motif files (True) or fail as
        :func:`~genocnn.motif_io.write_motifs` does (False).

    Returns
    -------
    Export
    """
    targets = database_motifs(db, release, tax_group) if len(motifs) else []
    matches = name_motifs(motifs, targets, n_best=n_best) if len(motifs) else pd.DataFrame()
    best = best_matches(matches)
    for m in motifs:
        if m.name in best.index:
            m.description = f"{best.loc[m.name, 'target_id']} {best.loc[m.name, 'target_name']}"
    table = tabulate(matches)
    out = Path(out_dir)
    if len(motifs) or not allow_empty:
        for fmt, name in motif_files(stem).items():
            write_motifs(motifs, out / name, format=fmt)
    with atomic_open(out / table_file) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.4g")
    logos = {}
    if logo_dir is not None:
        from .logos import write_logos  # matplotlib: only when drawing

        by_id = {t.name: t for t in targets}
        aligned = [_alignment(best.loc[m.name], by_id) if m.name in best.index else None for m in motifs]
        logos = dict(zip([m.name for m in motifs], write_logos(out / logo_dir, motifs, aligned)))
    return Export(table, matches, logos)


def _alignment(best: pd.Series, by_id: dict[str, Motif]) -> tuple[Motif, int, str] | None:
    """(match, offset, strand) of a best-match row, for ``write_logos``."""
    if best["target_id"] not in by_id:
        return None
    return by_id[best["target_id"]], int(best["offset"]), str(best["strand"])


# ---------------------------------------------------------------- genocnn motifs


def motif_table(
    motifs: MotifList,
    influence: np.ndarray,
    matches: pd.DataFrame,
    tasks: list[str] | None = None,
    loss_change: np.ndarray | None = None,
    clusters: dict[str, int] | None = None,
) -> pd.DataFrame:
    """One row per filter, exported ones first by decreasing influence, then skipped ones.

    Parameters
    ----------
    motifs : MotifList
        Exported motifs (``extra["filter"]`` set) and ``skipped`` filters.
    influence : np.ndarray, shape (F,) or (F, T)
        Nullification influence per filter (and task).
    matches : pandas.DataFrame
        ``tomtom_matches`` rows, best first per query; rows after the first
        of a query fill ``other_matches``.
    tasks : list of str, optional
        Task names; with more than one task (and ``influence`` of shape
        (F, T)) the table gains ``influence_<task>`` columns.
    loss_change : np.ndarray, shape (F,), optional
        Loss increase per nullified filter (``loss_change`` column).
    clusters : dict of motif name -> int, optional
        Cluster of each exported motif (``cluster`` column).

    Returns
    -------
    pandas.DataFrame
        Columns ``filter, motif, sites, ic, consensus, influence``, then
        ``influence_<task>`` per task (several tasks only), ``loss_change``,
        ``cluster``, ``jaspar_id, jaspar_name, p_value, q_value`` of the best
        match, its ``offset`` and ``orientation`` (see :func:`match_columns`),
        ``other_matches`` (next best, ``"ID name; ..."``) and ``status``.
    """
    influence = np.asarray(influence, dtype=np.float64)
    per_task = influence if influence.ndim == 2 else influence[:, None]
    mean = per_task.mean(axis=1)
    several = bool(tasks) and len(tasks) > 1 and per_task.shape[1] == len(tasks)
    task_columns = [f"influence_{t}" for t in tasks] if several else []
    loss = np.full(len(mean), np.nan) if loss_change is None else np.asarray(loss_change, dtype=np.float64)
    clusters = clusters or {}
    by_query = {q: rows for q, rows in matches.groupby("query", sort=False)} if len(matches) else {}
    columns = ["filter", "motif", "sites", "ic", "consensus", "influence", *task_columns, "loss_change",
               "cluster", "jaspar_id", "jaspar_name", "p_value", "q_value", "offset", "orientation",
               "other_matches", "status"]

    def filter_columns(f: int) -> dict:
        row = {"filter": f, "influence": float(mean[f]), "loss_change": float(loss[f])}
        row.update({c: float(per_task[f, k]) for k, c in enumerate(task_columns)})
        return row

    rows = []
    for m in motifs:
        hits = by_query.get(m.name)
        others = [] if hits is None else [f"{r.target_id} {r.target_name}" for r in hits.iloc[1:].itertuples()]
        rows.append({
            **filter_columns(m.extra["filter"]),
            "motif": m.name,
            "sites": m.sites,
            "ic": round(m.information_content, 3),
            "consensus": m.consensus,
            "cluster": clusters.get(m.name),
            **match_columns(None if hits is None else hits.iloc[0]),
            "other_matches": "; ".join(others) or None,
            "status": "exported",
        })
    table = pd.DataFrame(rows, columns=columns).sort_values("influence", ascending=False, kind="stable")
    skipped = pd.DataFrame(
        [{**filter_columns(f), "motif": f"filter_{f}", "sites": n, "status": "skipped: too few sites"}
         for f, n in sorted(motifs.skipped.items())],
        columns=columns,
    )
    out = pd.concat([table, skipped], ignore_index=True) if len(skipped) else table.reset_index(drop=True)
    for c in ("cluster", "offset"):
        out[c] = out[c].astype("Int64")
    return out


def export_motifs(
    model,
    sequences,
    out_dir: str | os.PathLike,
    threshold: float | None = None,
    min_sites: int | None = None,
    db: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    release: str | None = None,
    tax_group: str | None = "vertebrates",
    cluster_p_value: float = 1e-4,
) -> pd.DataFrame:
    """Extract, rank, name and cluster a model's first-layer motifs; write files, logos, report.

    Writes to ``out_dir``: ``motifs.meme``, ``motifs.jaspar``,
    ``motifs.transfac`` and ``motifs.motif`` (HOMER) (the same matrices,
    flanks under ``motifs.trim_ic`` bits trimmed, most influential first),
    ``filters.tsv`` (the returned table), ``logos/<motif>.png`` (each motif
    above its best match, aligned as Tomtom aligned them) and ``report.html``
    (training curves, test metrics, the ranked table with logos).

    Influence is the mean drop of the predicted probability when a filter is
    nullified; ``loss_change`` the mean increase of the binary cross-entropy,
    computed as if every given sequence were bound (label 1 for every task),
    since only sequences are given: it is meaningful for bound sequences.

    Parameters
    ----------
    model : ConvNet
        From ``load_model`` (has ``run_config`` and ``tasks``).
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
        Usually the bound sequences.
    threshold, min_sites : optional
        Default: the run's ``motifs`` config.
    db : path, optional
        A motif file (MEME/JASPAR/TRANSFAC/HOMER) to name motifs against
        instead of JASPAR CORE.
    run_dir : path, optional
        The run directory, for ``history.tsv`` and ``metrics.json`` in the
        report; None leaves those sections out.
    release, tax_group : optional
        JASPAR release (None: the latest) and taxonomic group (None: all).
    cluster_p_value : float
        Tomtom p-value below which two motifs are linked (``cluster_motifs``).

    Returns
    -------
    pandas.DataFrame
        See :func:`motif_table`.
    """
    cfg = model.run_config.motifs
    x = encode_for(model, sequences)
    found = extract_motifs(
        model, x,
        threshold=cfg.threshold if threshold is None else threshold,
        min_sites=cfg.min_sites if min_sites is None else min_sites,
        pseudocount=cfg.pseudocount,
    )
    effects = nullification_effects(model, x)
    motifs = MotifList([trim(m, cfg.trim_ic) for m in found], found.skipped)
    order = np.argsort(-effects.influence.mean(axis=1)[[m.extra["filter"] for m in motifs]], kind="stable")
    ordered = [motifs[i] for i in order]
    clusters = dict(zip([m.name for m in ordered], cluster_motifs(ordered, cluster_p_value).tolist()))

    def tabulate(matches: pd.DataFrame) -> pd.DataFrame:
        return motif_table(motifs, effects.influence, matches, list(model.tasks), effects.loss_change, clusters)

    export = export_named_motifs(ordered, out_dir, "motifs", tabulate, "filters.tsv", db, release, tax_group,
                                 n_best=N_MATCHES, logo_dir=LOGO_DIR, allow_empty=False)
    write_report(Path(out_dir) / REPORT_FILE, export.table, export.logos, run_dir,
                 sequences if isinstance(sequences, (str, os.PathLike)) else None, len(x),
                 "JASPAR CORE" if db is None else str(db), release, tax_group)
    return export.table
