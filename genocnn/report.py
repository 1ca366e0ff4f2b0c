"""The HTML report of ``genocnn motifs``: one self-contained page with training, metrics and motifs.

:func:`write_report` draws the page from the table of
:func:`genocnn.export.motif_table` and the logos written by
:func:`genocnn.export.export_motifs`; :func:`cluster_sentence` sums the
table's clusters up in one sentence (also printed by the CLI).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path

import pandas as pd

from .atomic import atomic_open

REPORT_FILE = "report.html"
#: How names are given, stated in the report (the rule of :mod:`genocnn.naming`, figures from its calibration).
NAMING_NOTE = (
    "A JASPAR name is shown only when a calibrated rule says the match is real: Tomtom E-value "
    "below 0.1, an alignment covering at least 80 % of the motif's and 50 % of the match's "
    "informative columns (at least 0.5 bit) with at least 4 informative columns in both, a match "
    "better than those of 20 column-shuffled copies of the motif, and the near-best matches (within "
    "100x of the best p-value) naming one TF, or else sharing a JASPAR family or class, which is "
    "shown instead. Other motifs are left unnamed, with their best match's id, p-value and the "
    "reason. On 14 calibration runs (13 simulations and 500 CTCF peaks) this rule gave 1 false name "
    "out of 122, against 672 out of 830 for the best match at q < 0.05; its last two settings were "
    "chosen after seeing the last three simulations, so it is not yet validated on untouched data."
)


def cluster_sentence(table: pd.DataFrame) -> str:
    """One sentence on the clusters of a motif table's exported filters.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`genocnn.export.motif_table` (``status``, ``cluster``,
        ``motif`` and ``jaspar_name`` columns are read; ``jaspar_name`` is
        empty or missing for motifs without a confident name).

    Returns
    -------
    str

    Examples
    --------
    >>> table = pd.DataFrame({"motif": ["f0", "f1", "f2"], "cluster": [1, 1, 2],
    ...                       "jaspar_name": ["CTCF", "", None], "status": ["exported"] * 3})
    >>> cluster_sentence(table)
    '3 filters form 2 clusters; the largest (cluster 1) has 2 filters, named CTCF, and 1 filters are on their own.'
    """
    exported = table[table["status"] == "exported"]
    if not len(exported):
        return "No filter was exported, so there is nothing to cluster."
    sizes = exported.groupby("cluster")["motif"].count()
    n, k = len(exported), len(sizes)
    text = f"{n} filter{'s' if n != 1 else ''} form{'s' if n == 1 else ''} {k} cluster{'s' if k != 1 else ''}"
    if sizes.max() > 1:
        big = exported[exported["cluster"] == sizes.idxmax()]
        names = big["jaspar_name"][big["jaspar_name"].notna() & (big["jaspar_name"] != "")]
        named = f", named {names.mode().iloc[0]}" if len(names) else ""
        text += (f"; the largest (cluster {sizes.idxmax()}) has {sizes.max()} filters{named}, "
                 f"and {int((sizes == 1).sum())} filters are on their own")
    return text + "."


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
    release: str = "",
    collection: str = "",
    clusters: pd.DataFrame | None = None,
) -> None:
    """Write one self-contained HTML page: training, test metrics, the ranked motif table.

    Images are embedded as base64 ``data:`` URIs; there is no external CSS or
    script. All text is HTML-escaped.

    Parameters
    ----------
    path : str or PathLike
    table : pandas.DataFrame
        From :func:`genocnn.export.motif_table`; exported rows are shown in table order.
    logos : dict of motif name -> PNG path
    run_dir : path, optional
        For ``history.tsv`` (training curves) and ``metrics.json`` (test metrics).
    sequences, n_sequences : optional
        Described in the header.
    release, collection : str
        The database's labels, as in the tables' ``jaspar_release`` and
        ``jaspar_collection`` columns (:func:`genocnn.naming.database_labels`):
        ``"JASPAR2024"``, ``"CORE vertebrates"``; for a ``--db`` file its file
        name and ``"--db file"``.
    clusters : pandas.DataFrame, optional
        ``clusters.tsv`` (:func:`genocnn.export.cluster_table`): shown first,
        as the motifs the model learned; the filters follow.
    """
    esc = html.escape
    run = Path(run_dir) if run_dir is not None else None
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>genocnn motifs{esc(' - ' + run.name) if run else ''}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Motifs learned by {esc(str(run)) if run else 'the model'}</h1>",
        '<p class="note">',
        f"Sequences: {esc(str(sequences)) if sequences else 'given in memory'}"
        + (f" ({n_sequences} sequences)" if n_sequences is not None else "") + ". ",
        f'Motifs compared by Tomtom with <span id="database">{esc(database_sentence(release, collection))}</span>.</p>',
        f'<p class="note" id="naming">{esc(NAMING_NOTE)}'
        + (" A --db file has no JASPAR families or classes: when the near-best matches disagree, no name "
           "is given." if collection == "--db file" else "") + "</p>",
    ]
    parts += _training_section(run)
    if clusters is not None:
        parts.append("<h2>Distinct motifs</h2>")
        parts.append(
            '<p class="note">One full-length motif per group of filters that learned the same motif, '
            "counted from the aligned sites in the sequences, ranked by influence (the whole group "
            "nullified). Named only when the calibrated rule names it.</p>")
        parts += _cluster_rows(clusters, logos)
    exported = table[table["status"] == "exported"]
    parts.append("<h2>Filters</h2>")
    parts.append(f'<p id="clusters">{esc(cluster_sentence(table))}</p>')
    parts.append(
        '<p class="note">Ranked by influence: the mean drop of the predicted probability when the '
        "filter's activation is replaced by its mean (nullified). Loss change: the mean increase of "
        "the binary cross-entropy when nullified, treating every given sequence as bound. Filters "
        "whose motifs match each other (Tomtom) share a cluster. Each logo shows the filter's motif "
        "(top) above its best match (bottom) when the motif is named, aligned as Tomtom aligned them; "
        "strand - means the match's reverse complement. Unnamed motifs are drawn alone.</p>"
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
    """HTML of the test metrics (``metrics.json``) and training curves (``history.tsv``) of a run."""
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
    """HTML table of the exported motifs, one row each in table order, with their logos embedded."""
    esc = html.escape
    task_columns = [c for c in exported.columns if c.startswith("influence_")]
    head = ["rank", "motif", "cluster", "influence", *[c.replace("influence_", "influence ") for c in task_columns],
            "loss change", "JASPAR name (best match)", "logo (motif above its match when named)"]
    parts = ['<table id="motifs">', "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for rank, (_, r) in enumerate(exported.iterrows(), start=1):
        motif = (f'<b>{esc(str(r["motif"]))}</b><br><span class="seq">{esc(str(r["consensus"]))}</span>'
                 f'<br><span class="small">{esc(_text(r["sites"]))} sites, {_num(r["ic"])} bits</span>')
        match = _match_cell(r)
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


def _cluster_rows(clusters: pd.DataFrame, logos: dict[str, Path]) -> list[str]:
    """HTML table of the distinct motifs, in rank order, with their logos embedded."""
    esc = html.escape
    head = ["rank", "motif", "members", "influence (task)", "JASPAR name (best match)", "logo"]
    parts = ['<table id="distinct">', "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for _, r in clusters.iterrows():
        motif = (f'<b>{esc(str(r["motif"]))}</b><br><span class="seq">{esc(str(r["consensus"]))}</span>'
                 f'<br><span class="small">{esc(_text(r["sites"]))} sites, {r["width"]} bp, {_num(r["ic"])} bits</span>')
        task = f'<br><span class="small">{esc(str(r["task"]))}</span>' if "task" in r else ""
        logo = logos.get(r["motif"])
        img = (f'<img class="logo" alt="logo of {esc(str(r["motif"]))}" src="{_data_uri(Path(logo).read_bytes())}">'
               if logo is not None and Path(logo).is_file() else "")
        parts.append(f'<tr class="cluster"><td class="num">{r["rank"]}</td><td>{motif}</td>'
                     f'<td class="small">{esc(str(r["members"]))}</td><td class="num">{_num(r["influence"])}{task}</td>'
                     f"<td>{_match_cell(r)}</td><td>{img}</td></tr>")
    parts.append("</table>")
    return parts


def database_sentence(release: str, collection: str) -> str:
    """The database in words, from its labels.

    Examples
    --------
    >>> database_sentence("JASPAR2024", "CORE vertebrates")
    'JASPAR release JASPAR2024, collection CORE vertebrates'
    >>> database_sentence("my.meme", "--db file")
    'the motif file my.meme (--db)'
    """
    if collection == "--db file":
        return f"the motif file {release} (--db)"
    if not release:
        return collection or "the given motifs"
    return f"JASPAR release {release}, collection {collection}"


def _match_cell(r: pd.Series) -> str:
    """HTML of a motif's name (only when confident) or why it has none, its best match and the next ones."""
    esc = html.escape
    if pd.isna(r["jaspar_id"]):
        return '<span class="small">no match</span>'
    name, level = _text(r["jaspar_name"]), _text(r.get("name_level"))
    if name and level == "tf":
        match = f'<b class="match">{esc(name)}</b> {esc(str(r["jaspar_id"]))}'
    elif name:
        match = (f'<b class="match">{esc(name)}</b> <span class="small">(JASPAR {esc(level)}; best matrix '
                 f'{esc(str(r["jaspar_id"]))})</span>')
    else:
        match = (f'<b class="match weak">not named</b> <span class="small">best match {esc(str(r["jaspar_id"]))}: '
                 f'{esc(_text(r.get("name_reason")))}</span>')
    match += (f'<br><span class="small">p {_num(r["p_value"], 2)}, q {_num(r["q_value"], 2)}, '
              f'E {_num(r.get("e_value"), 2)}, strand {esc(_text(r["orientation"]))}, '
              f'offset {esc(_text(r["offset"]))}</span>')
    if _text(r["other_matches"]):
        match += f'<br><span class="small">next matches: {esc(_text(r["other_matches"]))}</span>'
    return match


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
    """A ``data:`` URI embedding PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _num(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits; missing values are empty."""
    if value is None or pd.isna(value):
        return ""
    return f"{float(value):.{digits}g}"


def _fixed(value) -> str:
    """``value`` to 3 decimals; missing values are empty."""
    return "" if value is None or pd.isna(value) else f"{float(value):.3f}"


def _text(value) -> str:
    """``str(value)``; missing values are empty."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
