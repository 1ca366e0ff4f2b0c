"""The motif table of a trained model: motifs, influence, JASPAR names, clusters, files, logos, HTML.

``export_motifs`` is the work of ``genocnn motifs``: it extracts the
first-layer motifs, measures each filter's influence by nullification, names
the motifs against JASPAR (or a given database) with Tomtom, clusters
redundant filters, and writes the motif files, ``filters.tsv``, one logo per
motif and a self-contained ``report.html``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_open
from .compare import cluster_motifs, database_motifs, name_motifs
from .motif_io import write_motifs
from .motifs import Motif, MotifList, encode_for, extract_motifs, nullification_effects, trim

MOTIF_FILES = {
    "meme": "motifs.meme",
    "jaspar": "motifs.jaspar",
    "transfac": "motifs.transfac",
    "homer": "motifs.motif",
}
REPORT_FILE = "report.html"
LOGO_DIR = "logos"
N_MATCHES = 3  # the best match, and two more listed in ``other_matches``
SIGNIFICANT_Q = 0.05  # best matches above this q-value are shown greyed, as weak, in the report


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
        match, its ``offset`` and ``orientation`` (query column 0 faces column
        ``offset`` of the match, of its reverse complement when
        ``orientation`` is ``"-"``), ``other_matches`` (next best, ``"ID
        name; ..."``) and ``status``.
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
        f = m.extra["filter"]
        hits = by_query.get(m.name)
        best = None if hits is None else hits.iloc[0]
        others = [] if hits is None else [f"{r.target_id} {r.target_name}" for r in hits.iloc[1:].itertuples()]
        rows.append({
            **filter_columns(f),
            "motif": m.name,
            "sites": m.sites,
            "ic": round(m.information_content, 3),
            "consensus": m.consensus,
            "cluster": clusters.get(m.name),
            "jaspar_id": None if best is None else best["target_id"],
            "jaspar_name": None if best is None else best["target_name"],
            "p_value": np.nan if best is None else float(best["p_value"]),
            "q_value": np.nan if best is None else float(best["q_value"]),
            "offset": None if best is None else int(best["offset"]),
            "orientation": None if best is None else best["strand"],
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
    from .logos import write_logos

    cfg = model.run_config.motifs
    x = encode_for(model, sequences)
    motifs = extract_motifs(
        model, x,
        threshold=cfg.threshold if threshold is None else threshold,
        min_sites=cfg.min_sites if min_sites is None else min_sites,
        pseudocount=cfg.pseudocount,
    )
    effects = nullification_effects(model, x)
    targets = database_motifs(db, release, tax_group)
    motifs = MotifList([trim(m, cfg.trim_ic) for m in motifs], motifs.skipped)
    matches = name_motifs(motifs, targets, n_best=N_MATCHES) if len(motifs) else pd.DataFrame()
    order = np.argsort(-effects.influence.mean(axis=1)[[m.extra["filter"] for m in motifs]], kind="stable")
    ordered = [motifs[i] for i in order]
    clusters = dict(zip([m.name for m in ordered], cluster_motifs(ordered, cluster_p_value).tolist()))
    tasks = list(getattr(model, "tasks", []) or [])
    table = motif_table(motifs, effects.influence, matches, tasks, effects.loss_change, clusters)
    exported = table[table["status"] == "exported"].set_index("motif")
    for m in ordered:
        if pd.notna(exported.loc[m.name, "jaspar_name"]):
            m.description = f"{exported.loc[m.name, 'jaspar_id']} {exported.loc[m.name, 'jaspar_name']}"
    out = Path(out_dir)
    for fmt, name in MOTIF_FILES.items():
        write_motifs(ordered, out / name, format=fmt)
    with atomic_open(out / "filters.tsv") as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.4g")
    by_id = {t.name: t for t in targets}
    hits = [_alignment(exported.loc[m.name], by_id) for m in ordered]
    logos = write_logos(out / LOGO_DIR, ordered, hits)
    write_report(out / REPORT_FILE, table, dict(zip([m.name for m in ordered], logos)), run_dir,
                 sequences if isinstance(sequences, (str, os.PathLike)) else None, len(x),
                 "JASPAR CORE" if db is None else str(db), release, tax_group)
    return table


def _alignment(row: pd.Series, by_id: dict[str, Motif]):
    if pd.isna(row["jaspar_id"]) or row["jaspar_id"] not in by_id:
        return None
    return by_id[row["jaspar_id"]], int(row["offset"]), str(row["orientation"])


def cluster_sentence(table: pd.DataFrame) -> str:
    """E.g. ``"12 filters form 3 clusters; the largest, 6 filters, is named CTCF."``"""
    exported = table[table["status"] == "exported"]
    if not len(exported):
        return "No filter was exported, so there is nothing to cluster."
    sizes = exported.groupby("cluster")["motif"].count()
    n, k = len(exported), len(sizes)
    text = f"{n} filter{'s' if n != 1 else ''} form{'s' if n == 1 else ''} {k} cluster{'s' if k != 1 else ''}"
    if sizes.max() > 1:
        big = exported[exported["cluster"] == sizes.idxmax()]
        names = big["jaspar_name"].dropna()
        named = f", best match {names.mode().iloc[0]}" if len(names) else ""
        text += (f"; the largest (cluster {sizes.idxmax()}) has {sizes.max()} filters{named}, "
                 f"and {int((sizes == 1).sum())} filters are on their own")
    return text + "."


# ----------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 4px 8px; text-align: left; vertical-align: middle; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.seq { font-family: monospace; }
.small { color: #555; font-size: 12px; }
b.match { font-size: 14px; } b.weak { color: #888; }
img.logo { max-width: 520px; max-height: 160px; display: block; }
.note { color: #555; font-size: 13px; max-width: 900px; }
"""


def write_report(
    path: str | os.PathLike,
    table: pd.DataFrame,
    logos: dict[str, Path],
    run_dir: str | os.PathLike | None = None,
    sequences: str | os.PathLike | None = None,
    n_sequences: int | None = None,
    database: str = "JASPAR CORE",
    release: str | None = None,
    tax_group: str | None = "vertebrates",
) -> None:
    """Write one self-contained HTML page: training, test metrics, the ranked motif table.

    Images are embedded as base64 ``data:`` URIs; there is no external CSS or
    script. All text is HTML-escaped.

    Parameters
    ----------
    path : str or PathLike
    table : pandas.DataFrame
        From :func:`motif_table`; exported rows are shown in table order.
    logos : dict of motif name -> PNG path
    run_dir : path, optional
        For ``history.tsv`` (training curves) and ``metrics.json`` (test metrics).
    sequences, n_sequences, database, release, tax_group : optional
        Described in the header.
    """
    esc = html.escape
    run = Path(run_dir) if run_dir is not None else None
    if database == "JASPAR CORE":
        database = f"JASPAR CORE ({release or 'latest release'}, {tax_group or 'all taxonomic groups'})"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>genocnn motifs{esc(' - ' + run.name) if run else ''}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Motifs learned by {esc(str(run)) if run else 'the model'}</h1>",
        '<p class="note">',
        f"Sequences: {esc(str(sequences)) if sequences else 'given in memory'}"
        + (f" ({n_sequences} sequences)" if n_sequences is not None else "") + ". ",
        f"Motifs named by Tomtom against {esc(database)}.</p>",
    ]
    parts += _training_section(run)
    exported = table[table["status"] == "exported"]
    parts.append("<h2>Motifs</h2>")
    parts.append(f'<p id="clusters">{esc(cluster_sentence(table))}</p>')
    parts.append(
        '<p class="note">Ranked by influence: the mean drop of the predicted probability when the '
        "filter's activation is replaced by its mean (nullified). Loss change: the mean increase of "
        "the binary cross-entropy when nullified, treating every given sequence as bound. Filters "
        "whose motifs match each other (Tomtom) share a cluster. Each logo shows the filter's motif "
        "(top) above its best match (bottom), aligned as Tomtom aligned them; strand - means the "
        "match's reverse complement. Matches with q &gt; 0.05 are greyed as weak.</p>"
    )
    parts += _motif_rows(exported, logos)
    skipped = table[table["status"] != "exported"]
    if len(skipped):
        listed = ", ".join(f"{esc(str(r.motif))} ({r.sites} sites)" for r in skipped.itertuples())
        parts.append(f'<p class="note">Skipped, too few sites: {listed}.</p>')
    parts.append("</body></html>")
    with atomic_open(path) as fh:
        fh.write("\n".join(parts) + "\n")


def _training_section(run: Path | None) -> list[str]:
    if run is None:
        return []
    parts = ["<h2>Training</h2>"]
    metrics_file, history_file = run / "metrics.json", run / "history.tsv"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        rows = [("all tasks (mean)", metrics.get("auroc"), metrics.get("auprc"))]
        if len(metrics.get("tasks", {})) > 1:
            rows += [(t, m.get("auroc"), m.get("auprc")) for t, m in metrics["tasks"].items()]
        n_test = metrics.get("n_test")
        parts.append(f"<p>Test set{f' ({n_test} held-out sequences)' if n_test else ''}:</p>")
        parts.append('<table id="metrics"><tr><th>task</th><th>AUROC</th><th>AUPRC</th></tr>')
        parts += [f'<tr><td>{html.escape(str(t))}</td><td class="num">{_fixed(a)}</td>'
                  f'<td class="num">{_fixed(p)}</td></tr>' for t, a, p in rows]
        parts.append("</table>")
    if history_file.is_file():
        history = pd.read_csv(history_file, sep="\t")
        if len(history):
            png = training_curves_png(history)
            parts.append(f'<p><img id="curves" alt="training curves" src="{_data_uri(png)}"></p>')
    return parts


def _motif_rows(exported: pd.DataFrame, logos: dict[str, Path]) -> list[str]:
    esc = html.escape
    task_columns = [c for c in exported.columns if c.startswith("influence_")]
    head = ["rank", "motif", "cluster", "influence", *[c.replace("influence_", "influence ") for c in task_columns],
            "loss change", "best match", "logo (motif above its best match)"]
    parts = ['<table id="motifs">', "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for rank, (_, r) in enumerate(exported.iterrows(), start=1):
        motif = (f'<b>{esc(str(r["motif"]))}</b><br><span class="seq">{esc(str(r["consensus"]))}</span>'
                 f'<br><span class="small">{esc(_text(r["sites"]))} sites, {_num(r["ic"])} bits</span>')
        if pd.isna(r["jaspar_id"]):
            match = '<span class="small">no match</span>'
        else:
            weak = not r["q_value"] <= SIGNIFICANT_Q
            match = (f'<b class="match{" weak" if weak else ""}">{esc(str(r["jaspar_name"]))}</b> '
                     f'{esc(str(r["jaspar_id"]))}{" (weak: q &gt; 0.05)" if weak else ""}'
                     f'<br><span class="small">p {_num(r["p_value"], 2)}, q {_num(r["q_value"], 2)}, '
                     f'strand {esc(_text(r["orientation"]))}, offset {esc(_text(r["offset"]))}</span>')
            if _text(r["other_matches"]):
                match += f'<br><span class="small">also: {esc(_text(r["other_matches"]))}</span>'
        logo = logos.get(r["motif"])
        img = (f'<img class="logo" alt="logo of {esc(str(r["motif"]))}" src="{_data_uri(Path(logo).read_bytes())}">'
               if logo is not None and Path(logo).is_file() else "")
        numbers = [r["influence"], *[r[c] for c in task_columns], r["loss_change"]]
        parts.append(
            f'<tr class="motif"><td class="num">{rank}</td><td>{motif}</td>'
            f'<td class="num">{esc(_text(r["cluster"]))}</td>'
            + "".join(f'<td class="num">{_num(v)}</td>' for v in numbers)
            + f"<td>{match}</td><td>{img}</td></tr>"
        )
    parts.append("</table>")
    return parts


def training_curves_png(history: pd.DataFrame, dpi: int = 80) -> bytes:
    """Loss (train and validation) and validation AUROC per epoch, side by side, as PNG bytes."""
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global state

    fig = Figure(figsize=(9, 3))
    loss_ax, auc_ax = fig.subplots(1, 2)
    for column, label in (("train_loss", "train"), ("valid_loss", "validation")):
        if column in history:
            loss_ax.plot(history["epoch"], history[column], marker=".", label=label)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    loss_ax.legend(fontsize=8)
    if "valid_auroc" in history:
        auc_ax.plot(history["epoch"], history["valid_auroc"], marker=".", color="C2")
        best = history["valid_auroc"].idxmax()
        auc_ax.axvline(history["epoch"][best], color="0.6", ls="--", lw=1, label="best epoch (kept)")
        auc_ax.legend(fontsize=8)
    auc_ax.set(xlabel="epoch", ylabel="AUROC", title="Validation AUROC")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _num(value, digits: int = 3) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{float(value):.{digits}g}"


def _fixed(value) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.3f}"


def _text(value) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
