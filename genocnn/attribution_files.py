"""The files of ``genocnn attribute``: the ``.npz`` of contribution maps, their plots, the seqlet motifs.

:func:`export_attributions` computes contribution maps
(:func:`~genocnn.attribution.attribute`), finds seqlet motifs in them
(:func:`~genocnn.seqlets.motifs_from_attributions`), names and writes those
through the export pipeline shared with ``genocnn motifs``
(:func:`~genocnn.export.export_named_motifs`), then saves the maps
(:func:`save_attributions`) and draws the first sequences' maps
(:func:`plot_attribution`).
"""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .atomic import atomic_dir, atomic_path
from .attribution import Attributions, attribute
from .errors import GenocnnError
from .export import Steps, export_named_motifs, name_columns, names_by_motif
from .logos import draw_contributions
from .naming import TABLE_COLUMNS
from .pwm import Motif
from .seqlets import motifs_from_attributions

NPZ_KEYS = ("ids", "one_hot", "attributions")
ATTRIBUTIONS_FILE = "attributions.npz"
SEQLET_STEM = "seqlet_motifs"
SEQLET_TABLE = "seqlets.tsv"
LOGO_DIR = "logos"
SEQLET_COLUMNS = ["motif", "seqlets", "sign", "width", "ic", "consensus", *TABLE_COLUMNS]


def save_attributions(path: str | os.PathLike, ids, x, attr) -> None:
    """Write ``ids``, ``one_hot`` and ``attributions`` to a compressed ``.npz``, atomically.

    Readable with ``np.load(path, allow_pickle=False)``: ids are stored as a
    unicode array, the arrays as float32.

    Parameters
    ----------
    path : str or PathLike
    ids : iterable of str, length N
    x : array-like, shape (N, 4, L)
        One-hot sequences.
    attr : array-like, shape (N, 4, L)
        Contributions.
    """
    ids = np.asarray(list(ids), dtype=str)
    x, attr = np.asarray(x, dtype=np.float32), np.asarray(attr, dtype=np.float32)
    if x.shape != attr.shape or len(ids) != len(x):
        raise GenocnnError(f"{path}: {len(ids)} ids, one-hot {x.shape} and attributions {attr.shape} do not match")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a handle: np.savez would append .npz
        np.savez_compressed(fh, ids=ids, one_hot=x, attributions=attr)


def load_attributions(path: str | os.PathLike) -> Attributions:
    """Read a file written by :func:`save_attributions`.

    Returns
    -------
    Attributions
        ``ids``, ``x`` and ``attr`` (both (N, 4, L), float32).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return Attributions([str(i) for i in data["ids"]], data["one_hot"], data["attributions"])
    except (OSError, ValueError, KeyError) as exc:
        raise GenocnnError(f"{path}: not a genocnn attributions file ({exc})") from None


def plot_attribution(seq_attr: np.ndarray, path: str | os.PathLike, title: str | None = None) -> None:
    """Draw one sequence's contribution map as a logo (logomaker) or, without it, bars; PNG.

    Parameters
    ----------
    seq_attr : np.ndarray, shape (4, L)
        Contributions (letters scaled by score; negative ones hang below 0).
    path : str or PathLike
        PNG file, written atomically.
    title : str, optional
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    a = np.asarray(seq_attr, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != 4:
        raise GenocnnError(f"expected a (4, L) contribution map, got {a.shape}")
    length = a.shape[1]
    fig = Figure(figsize=(min(max(4.0, 0.12 * length), 40.0), 2.2))
    ax = fig.subplots()
    draw_contributions(ax, a)
    ax.set_xlabel("position")
    ax.set_ylabel("contribution")
    if title:
        ax.set_title(title, fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _file_names(ids: list[str]) -> list[str]:
    """Safe, distinct file stems for sequence ids.

    Examples
    --------
    >>> _file_names(["chr1:5-9", "chr1:5-9", ".."])
    ['chr1_5-9', 'chr1_5-9_1', 'seq2']
    """
    names, seen = [], set()
    for i, name in enumerate(ids):
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or f"seq{i}"
        if stem in seen:
            stem = f"{stem}_{i}"
        seen.add(stem)
        names.append(stem)
    return names


def seqlet_table(motifs: list[Motif], names: pd.DataFrame) -> pd.DataFrame:
    """One row per seqlet motif with its name (only when confident) and best match.

    Parameters
    ----------
    motifs : list of Motif
        From :func:`~genocnn.seqlets.cluster_seqlets` (``extra["sign"]`` set).
    names : pandas.DataFrame
        :func:`~genocnn.naming.name_table` of the motifs.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SEQLET_COLUMNS` (the naming columns as in ``filters.tsv``,
        :func:`~genocnn.export.name_columns`).
    """
    by_motif = names_by_motif(names)
    rows = [{"motif": m.name, "seqlets": m.sites, "sign": m.extra["sign"], "width": m.width,
             "ic": round(m.information_content, 3), "consensus": m.consensus,
             **name_columns(by_motif.get(m.name))}
            for m in motifs]
    table = pd.DataFrame(rows, columns=SEQLET_COLUMNS)
    table["offset"] = table["offset"].astype("Int64")
    return table


def export_attributions(
    model,
    sequences,
    out_dir: str | os.PathLike,
    method: str = "ism",
    task: int | str = 0,
    max_seqs: int | None = None,
    plot: int = 5,
    db: str | os.PathLike | None = None,
    progress: bool = True,
    **options,
) -> pd.DataFrame:
    """Attribute, find seqlet motifs, name them and draw; write everything to ``out_dir``.

    Writes ``seqlet_motifs.meme``, ``.jaspar``, ``.transfac`` and ``.motif``
    (HOMER) (when any motif is found), ``seqlets.tsv`` (the returned table, one
    row per motif with its JASPAR (or ``db``) name when the calibrated rule of
    :mod:`genocnn.naming` gives one, and its best match),
    ``attributions.npz`` (:func:`save_attributions`) and ``logos/<id>.png``
    for the first ``plot`` sequences, through a temporary folder beside
    ``out_dir`` (:func:`~genocnn.atomic.atomic_dir`): nothing is written if the
    input or ``db`` is bad or the run is interrupted.

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
    out_dir : str or PathLike
    method, task, max_seqs
        As :func:`~genocnn.attribution.attribute`.
    plot : int
        Sequences to draw.
    db : path, optional
        Motif file to name the motifs against instead of JASPAR CORE.
    progress : bool
        Progress bars on stderr (on a terminal): the steps, and the plots.
    **options
        To :func:`~genocnn.seqlets.motifs_from_attributions`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SEQLET_COLUMNS`.
    """
    step = Steps("attribute", 5, progress)
    step(f"contributions ({method})")
    res = attribute(model, sequences, method, task, max_seqs)
    step("seqlet motifs")
    motifs = motifs_from_attributions(res.attr, res.x, **options)
    with atomic_dir(out_dir) as out:  # the folder appears whole, or not at all
        step("naming (Tomtom) and files")
        export = export_named_motifs(motifs, out, SEQLET_STEM, lambda names: seqlet_table(motifs, names),
                                     SEQLET_TABLE, db)
        step("saving the contribution maps")
        save_attributions(out / ATTRIBUTIONS_FILE, res.ids, res.x, res.attr)
        step("plots")
        stems = _file_names(res.ids[:plot])
        for i, stem in tqdm(enumerate(stems), total=len(stems), desc="plots", unit="plot", leave=False,
                            disable=None if progress else True):
            plot_attribution(res.attr[i], out / LOGO_DIR / f"{stem}.png", title=res.ids[i])
    step.close()
    return export.table
