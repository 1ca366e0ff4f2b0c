"""The one export pipeline for motifs: name them, write every format, write the table (and logos).

:func:`export_named_motifs` names motifs by Tomtom against JASPAR (or a given
database) under the calibrated rule of :mod:`genocnn.naming` (a name only
when the match is real), writes them as MEME, JASPAR, TRANSFAC and HOMER
files, writes a table built from the names and, on request, one logo per
motif (above its best match when it is named). Both ``genocnn motifs``
(:func:`export_motifs`, first-layer filter motifs, ``motifs.*`` and
``filters.tsv``, plus the HTML report of :mod:`genocnn.report`) and
``genocnn attribute`` (:func:`~genocnn.attribution_files.export_attributions`,
seqlet motifs, ``seqlet_motifs.*`` and ``seqlets.tsv``) go through it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .atomic import atomic_dir, atomic_open
from .clusters import DistinctMotifs, distinct_motifs
from .compare import cluster_motifs
from .inference import encode_for
from .errors import GenocnnError
from .motif_io import write_motifs
from .motifs import MotifList, extract_motifs, nullification_effects
from .naming import N_OTHER, TABLE_COLUMNS, database_labels, load_database, name_table
from .pwm import Motif, trim
from .report import REPORT_FILE, write_report

#: File suffix of each motif format written, in writing order.
MOTIF_SUFFIXES = {"meme": "meme", "jaspar": "jaspar", "transfac": "transfac", "homer": "motif"}
LOGO_DIR = "logos"
CLUSTERS_FILE = "clusters.tsv"


class Steps:
    """One progress bar over the named steps of a command, shown on a terminal (stderr) unless ``progress`` is False.

    Call it with the next step's name; :meth:`close` it at the end.
    """

    def __init__(self, desc: str, total: int, progress: bool = True) -> None:
        self.bar = tqdm(total=total, desc=desc, unit="step", disable=None if progress else True, leave=False,
                        bar_format="{desc}: {n_fmt}/{total_fmt} steps [{elapsed}] {postfix}")
        self.started = False

    def __call__(self, name: str) -> None:
        if self.started:
            self.bar.update()
        self.started = True
        self.bar.set_postfix_str(name)

    def close(self) -> None:
        self.bar.close()


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
    names: pd.DataFrame  #: :func:`~genocnn.naming.name_table` of the motifs, one row each, in order
    logos: dict[str, Path]  #: motif name -> logo PNG (empty without ``logo_dir``)
    release: str  #: the database's labels (:func:`~genocnn.naming.database_labels`)
    collection: str


def name_columns(row: dict | pd.Series | None) -> dict:
    """The naming columns of one motif for a table: :data:`~genocnn.naming.TABLE_COLUMNS`.

    Parameters
    ----------
    row : dict, pandas.Series or None
        The motif's row of :func:`~genocnn.naming.name_table`; None (never
        compared) gives missing values.

    Returns
    -------
    dict
        ``jaspar_name`` is empty unless the rule names the motif; ``jaspar_id``,
        ``p_value``, ``q_value``, ``e_value``, ``offset`` and ``orientation``
        are the best match's whether or not it names it: query column 0 faces
        column ``offset`` of the match, of its reverse complement when
        ``orientation`` is ``"-"``.
    """
    if row is None:
        return {c: np.nan if c in ("p_value", "q_value", "e_value") else None for c in TABLE_COLUMNS}
    return {c: row[c] for c in TABLE_COLUMNS}


def names_by_motif(names: pd.DataFrame) -> dict[str, dict]:
    """Rows of a :func:`~genocnn.naming.name_table` keyed by motif name."""
    return {r["motif"]: r for r in names.to_dict("records")} if len(names) else {}


def describe(row) -> str:
    """A motif file description from a name-table row: only a confident name, else ``""``.

    Examples
    --------
    >>> describe({"jaspar_id": "MA0139.2", "jaspar_name": "CTCF", "name_level": "tf"})
    'MA0139.2 CTCF'
    >>> describe({"jaspar_id": "MA0035.5", "jaspar_name": "C4-GATA-related", "name_level": "family"})
    'JASPAR family: C4-GATA-related'
    >>> describe({"jaspar_id": "MA1930.2", "jaspar_name": "", "name_level": ""})
    ''
    """
    name, level = row["jaspar_name"], row["name_level"]
    if not isinstance(name, str) or not name:
        return ""
    return f"{row['jaspar_id']} {name}" if level == "tf" else f"JASPAR {level}: {name}"


def export_named_motifs(
    motifs: Sequence[Motif],
    out_dir: str | os.PathLike,
    stem: str,
    tabulate: Callable[[pd.DataFrame], pd.DataFrame],
    table_file: str,
    db: str | os.PathLike | None = None,
    release: str | None = None,
    tax_group: str | None = "vertebrates",
    n_other: int = N_OTHER,
    logo_dir: str | None = None,
    allow_empty: bool = True,
    progress: bool = False,
) -> Export:
    """Name motifs against a database, write them in every format, then the table and logos.

    Names follow the calibrated rule of :mod:`genocnn.naming`: each motif's
    ``description`` becomes its confident name (``"<id> <TF>"``, or
    ``"JASPAR family: <family>"`` / ``"JASPAR class: <class>"``) or
    ``""`` when the rule does not name it. Files are written atomically, in the
    order: ``<stem>.meme``, ``<stem>.jaspar``, ``<stem>.transfac``,
    ``<stem>.motif`` (HOMER), ``table_file`` (tab-separated, floats as
    ``%.4g``) and ``<logo_dir>/<motif>.png``; the database is read and the
    motifs named before anything is written.

    Parameters
    ----------
    motifs : sequence of Motif
        In the order the motif files list them.
    out_dir : str or PathLike
    stem : str
        Stem of the motif files.
    tabulate : callable
        Builds the table from the names (:func:`~genocnn.naming.name_table`,
        one row per motif; see :func:`name_columns`).
    table_file : str
    db, release, tax_group
        The database, as :func:`~genocnn.naming.load_database`; read only
        when there are motifs.
    n_other : int
        Next-best match ids listed in ``other_matches``.
    logo_dir : str, optional
        Draw ``logo_dir/<motif>.png``: a named motif above its best match,
        aligned as Tomtom aligned them; an unnamed one alone, with "no
        confident name" in place of the match (a drawn match would read as a name).
    allow_empty : bool
        With no motifs, write no motif files (True) or fail as
        :func:`~genocnn.motif_io.write_motifs` does (False).
    progress : bool
        A progress bar over the logos (on a terminal).

    Returns
    -------
    Export
    """
    label, collection = database_labels(db, release, tax_group)
    database = load_database(db, release, tax_group) if len(motifs) else None
    names = name_table(motifs, database, n_other=n_other)
    for m, row in zip(motifs, names.to_dict("records")):
        m.description = describe(row)
    table = tabulate(names)
    out = Path(out_dir)
    if len(motifs) or not allow_empty:
        for fmt, name in motif_files(stem).items():
            write_motifs(motifs, out / name, format=fmt)
    with atomic_open(out / table_file) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.4g")
    logos = {}
    if logo_dir is not None:
        logos = _write_logos(out / logo_dir, motifs, names, database.targets if database else [], progress)
    return Export(table, names, logos, label, collection)


def _write_logos(folder: Path, motifs: Sequence[Motif], names: pd.DataFrame, targets: Sequence[Motif],
                 progress: bool = False) -> dict[str, Path]:
    """``folder/<motif>.png`` per motif: above its best match when named, alone otherwise."""
    from .logos import LogoWriter  # matplotlib: only when drawing

    by_id = {t.name: t for t in targets}
    paths = {}
    with LogoWriter() as writer:
        rows = tqdm(list(zip(motifs, names.to_dict("records"))), desc="logos", unit="logo", leave=False,
                    disable=None if progress else True)
        for m, row in rows:
            path = folder / f"{m.name}.png"
            title = f"{m.name}  ({m.information_content:.1f} bits, {m.sites} sites)"
            match = by_id.get(row["jaspar_id"]) if row["jaspar_name"] else None
            if match is None:
                writer.write(path, m, title=title, match_title="no confident name")
            else:
                strand, offset = str(row["orientation"]), int(row["offset"])
                shown = (f"{match.name} {row['jaspar_name']}  (strand {strand})" if row["name_level"] == "tf"
                         else f"{match.name} ({strand}), {row['name_level']}: {row['jaspar_name']}")
                span = max(m.width, match.width - offset) - min(0, -offset)
                writer.write(path, m, match, offset, strand, title=title, match_title=_fit(shown, span))
            paths[m.name] = path
    return paths


def _fit(text: str, columns: int) -> str:
    """``text`` cut (with an ellipsis) to about what a logo of ``columns`` columns has room for.

    Examples
    --------
    >>> _fit("MA1475.2 (-), class: Basic leucine zipper factors (bZIP)", 7)
    'MA1475.2 (-), class: Basic leucin…'
    """
    from .logos import INCHES_PER_COLUMN  # the logo's width: max(3, 1 + 0.32 in per column)

    room = int((max(3.0, 1.0 + INCHES_PER_COLUMN * columns) - 0.35) / 0.085)
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"


# ---------------------------------------------------------------- genocnn motifs


def motif_table(
    motifs: MotifList,
    influence: np.ndarray,
    names: pd.DataFrame,
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
    names : pandas.DataFrame
        :func:`~genocnn.naming.name_table` of the exported motifs.
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
        ``cluster``, the naming columns (:func:`name_columns`: ``jaspar_id,
        jaspar_name, name_level, p_value, q_value, e_value, offset,
        orientation, other_matches, name_reason, jaspar_release,
        jaspar_collection``) and ``status``. Skipped filters have no naming
        columns.
    """
    influence = np.asarray(influence, dtype=np.float64)
    per_task = influence if influence.ndim == 2 else influence[:, None]
    mean = per_task.mean(axis=1)
    several = bool(tasks) and len(tasks) > 1 and per_task.shape[1] == len(tasks)
    task_columns = [f"influence_{t}" for t in tasks] if several else []
    loss = np.full(len(mean), np.nan) if loss_change is None else np.asarray(loss_change, dtype=np.float64)
    clusters = clusters or {}
    by_motif = names_by_motif(names)
    columns = ["filter", "motif", "sites", "ic", "consensus", "influence", *task_columns, "loss_change",
               "cluster", *TABLE_COLUMNS, "status"]

    def filter_columns(f: int) -> dict:
        row = {"filter": f, "influence": float(mean[f]), "loss_change": float(loss[f])}
        row.update({c: float(per_task[f, k]) for k, c in enumerate(task_columns)})
        return row

    rows = []
    for m in motifs:
        rows.append({
            **filter_columns(m.extra["filter"]),
            "motif": m.name,
            "sites": m.sites,
            "ic": round(m.information_content, 3),
            "consensus": m.consensus,
            "cluster": clusters.get(m.name),
            **name_columns(by_motif.get(m.name)),
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
    progress: bool = True,
) -> pd.DataFrame:
    """Extract, rank, name and cluster a model's first-layer motifs; write files, logos, report.

    Writes to ``out_dir`` (through a temporary folder beside it, so it appears
    whole or not at all: :func:`~genocnn.atomic.atomic_dir`) the distinct motifs (:func:`~genocnn.clusters.distinct_motifs`:
    one full-length, site-based motif per group of filters that learned the
    same motif, ranked by the influence of the whole group) as
    ``clusters.meme``, ``clusters.jaspar``, ``clusters.transfac``,
    ``clusters.motif`` and ``clusters.tsv`` (:func:`cluster_table`; also
    ``table.attrs["clusters"]``), and the per-filter motifs as ``motifs.meme``, ``motifs.jaspar``,
    ``motifs.transfac`` and ``motifs.motif`` (HOMER) (the same matrices,
    flanks under ``motifs.trim_ic`` bits trimmed, most influential first),
    ``filters.tsv`` (the returned table), ``logos/<motif>.png`` (each motif
    named by the calibrated rule of :mod:`genocnn.naming` above its best
    match, aligned as Tomtom aligned them; unnamed motifs alone) and
    ``report.html`` (training curves, test metrics, the ranked table with
    logos, the JASPAR release and collection).

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
    progress : bool
        Progress bars on stderr (on a terminal): the steps, and the logos.

    Returns
    -------
    pandas.DataFrame
        See :func:`motif_table`.
    """
    cfg = model.run_config.motifs
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise GenocnnError(f"`threshold` must be between 0 and 1 (a fraction of a filter's maximum activation), "
                           f"got {threshold}")
    if min_sites is not None and min_sites < 1:
        raise GenocnnError(f"`min_sites` must be >= 1, got {min_sites}")
    step = Steps("motifs", 7, progress)
    step("extracting filter motifs")
    x = encode_for(model, sequences)
    found = extract_motifs(
        model, x,
        threshold=cfg.threshold if threshold is None else threshold,
        min_sites=cfg.min_sites if min_sites is None else min_sites,
        pseudocount=cfg.pseudocount,
    )
    if not len(found):
        source = sequences if isinstance(sequences, (str, os.PathLike)) else "the given sequences"
        raise GenocnnError(f"{source}: no filter has `min_sites` ({cfg.min_sites if min_sites is None else min_sites}) "
                           f"windows above `threshold` in {len(x)} sequences; give more (bound) sequences, or lower "
                           "them")
    step("influence (each filter nullified)")
    effects = nullification_effects(model, x)
    motifs = MotifList([trim(m, cfg.trim_ic) for m in found], found.skipped)
    order = np.argsort(-effects.influence.mean(axis=1)[[m.extra["filter"] for m in motifs]], kind="stable")
    ordered = [motifs[i] for i in order]
    step("clustering (Tomtom)")
    clusters = dict(zip([m.name for m in ordered], cluster_motifs(ordered, cluster_p_value).tolist()))

    def tabulate(names: pd.DataFrame) -> pd.DataFrame:
        return motif_table(motifs, effects.influence, names, list(model.tasks), effects.loss_change, clusters)

    with atomic_dir(out_dir) as out:  # the folder appears whole, or not at all
        step("naming (Tomtom), files and logos")
        export = export_named_motifs(ordered, out, "motifs", tabulate, "filters.tsv", db, release, tax_group,
                                     logo_dir=LOGO_DIR, allow_empty=False, progress=progress)
        step("distinct motifs")
        # its own site threshold (distinct_motifs' default), not the per-filter one
        distinct = distinct_motifs(model, x, ordered, [clusters[m.name] for m in ordered], p_value=cluster_p_value)
        step("naming distinct motifs, files and logos")
        grouped = export_named_motifs(distinct.motifs, out, "clusters",
                                      lambda names: cluster_table(distinct, names), CLUSTERS_FILE, db, release,
                                      tax_group, logo_dir=LOGO_DIR, progress=progress)
        step("report")
        write_report(out / REPORT_FILE, export.table, {**export.logos, **grouped.logos}, run_dir,
                     sequences if isinstance(sequences, (str, os.PathLike)) else None, len(x),
                     export.release, export.collection, clusters=grouped.table)
    step.close()
    export.table.attrs["clusters"] = grouped.table
    return export.table


def cluster_table(distinct: DistinctMotifs, names: pd.DataFrame) -> pd.DataFrame:
    """``clusters.tsv``: one row per distinct motif, most influential group first.

    Parameters
    ----------
    distinct : DistinctMotifs
        From :func:`~genocnn.clusters.distinct_motifs`.
    names : pandas.DataFrame
        :func:`~genocnn.naming.name_table` of ``distinct.motifs``.

    Returns
    -------
    pandas.DataFrame
        ``rank, motif, members`` (filter motifs, anchor first), ``n_members,
        sites, width, ic, informative`` (columns >= 0.5 bit), ``consensus,
        influence`` (the whole group nullified, in the task where the drop is
        largest: ``task``), then the naming columns of :func:`name_columns` (``jaspar_name`` empty unless confidently named).
    """
    by_name = names_by_motif(names)
    rows = []
    for rank, r in enumerate(distinct.table.to_dict("records"), 1):
        rows.append({"rank": rank, "motif": r["motif"], "members": r["members"], "n_members": r["n_members"],
                     "sites": r["sites"], "width": r["width"], "ic": r["ic"], "informative": r["informative"],
                     "consensus": r["consensus"], "influence": r["influence"], "task": r["task"],
                     **name_columns(by_name.get(r["motif"]))})
    columns = ["rank", "motif", "members", "n_members", "sites", "width", "ic", "informative", "consensus",
               "influence", "task", *TABLE_COLUMNS]
    return pd.DataFrame(rows, columns=columns)
