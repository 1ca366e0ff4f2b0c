"""The motif table of a trained model: motifs, influence, JASPAR names, files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_open
from .compare import name_motifs
from .motif_io import write_motifs
from .motifs import MotifList, encode_for, extract_motifs, filter_influence, trim

MOTIF_FILES = {"meme": "motifs.meme", "jaspar": "motifs.jaspar", "transfac": "motifs.transfac"}


def motif_table(motifs: MotifList, influence: np.ndarray, matches: pd.DataFrame) -> pd.DataFrame:
    """One row per filter, exported ones first by decreasing influence, then skipped ones.

    Columns: ``filter, motif, sites, ic, consensus, influence, jaspar_id,
    jaspar_name, p_value, q_value, status``.
    """
    best = matches.drop_duplicates("query").set_index("query") if len(matches) else pd.DataFrame()
    rows = []
    for m in motifs:
        hit = best.loc[m.name] if m.name in best.index else None
        rows.append(
            {
                "filter": m.extra["filter"],
                "motif": m.name,
                "sites": m.sites,
                "ic": round(m.information_content, 3),
                "consensus": m.consensus,
                "influence": float(influence[m.extra["filter"]]),
                "jaspar_id": None if hit is None else hit["target_id"],
                "jaspar_name": None if hit is None else hit["target_name"],
                "p_value": np.nan if hit is None else float(hit["p_value"]),
                "q_value": np.nan if hit is None else float(hit["q_value"]),
                "status": "exported",
            }
        )
    table = pd.DataFrame(rows, columns=[
        "filter", "motif", "sites", "ic", "consensus", "influence",
        "jaspar_id", "jaspar_name", "p_value", "q_value", "status",
    ])
    table = table.sort_values("influence", ascending=False, kind="stable")
    skipped = pd.DataFrame(
        [{"filter": f, "motif": f"filter_{f}", "sites": n, "influence": float(influence[f]),
          "status": "skipped: too few sites"} for f, n in sorted(motifs.skipped.items())],
        columns=table.columns,
    )
    return pd.concat([table, skipped], ignore_index=True) if len(skipped) else table.reset_index(drop=True)


def export_motifs(
    model,
    sequences,
    out_dir: str | os.PathLike,
    threshold: float | None = None,
    min_sites: int | None = None,
    db: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Extract, rank and name a model's first-layer motifs and write them to ``out_dir``.

    Writes ``motifs.meme``, ``motifs.jaspar``, ``motifs.transfac`` (the same
    matrices, flanks under ``motifs.trim_ic`` bits trimmed, most influential first) and ``filters.tsv`` (the returned table).

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
        Usually the bound sequences.
    threshold, min_sites : optional
        Default: the run's ``motifs`` config.
    db : path, optional
        A MEME file to name motifs against instead of JASPAR CORE vertebrates.

    Returns
    -------
    pandas.DataFrame
        See :func:`motif_table`.
    """
    cfg = model.run_config.motifs
    x = encode_for(model, sequences)
    motifs = extract_motifs(
        model, x,
        threshold=cfg.threshold if threshold is None else threshold,
        min_sites=cfg.min_sites if min_sites is None else min_sites,
        pseudocount=cfg.pseudocount,
    )
    influence = filter_influence(model, x)
    motifs = MotifList([trim(m, cfg.trim_ic) for m in motifs], motifs.skipped)
    matches = name_motifs(motifs, db=db) if len(motifs) else pd.DataFrame()
    table = motif_table(motifs, influence, matches)
    by_name = {m.name: m for m in motifs}
    ordered = [by_name[name] for name in table.loc[table["status"] == "exported", "motif"]]
    for m, (_, row) in zip(ordered, table.iterrows()):
        if row["jaspar_name"]:
            m.description = f"{row['jaspar_id']} {row['jaspar_name']}"
    out = Path(out_dir)
    for fmt, name in MOTIF_FILES.items():
        write_motifs(ordered, out / name, format=fmt)
    with atomic_open(out / "filters.tsv") as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.4g")
    return table
