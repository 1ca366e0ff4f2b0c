"""The files of ``genocnn variants``: the effects table, the scored VCF, ISM logos of the top variants.

:func:`write_variant_effects` streams :func:`~genocnn.variants.iter_effects`
into the table (and the VCF) block by block, keeping only the ``top``
variants' windows; it then draws, for each of those, the in-silico
mutagenesis map (:func:`~genocnn.attribution.ism`, as ``genocnn attribute``
computes it) of the reference and the alternative window as two logos, one
above the other, on one x axis (:func:`plot_variant_logos`), into the folder
``<out stem>_logos/`` beside the table. Every file is written under a
temporary name and renamed at the end: an error leaves none of them behind.
The logo folder is filled as :func:`~genocnn.atomic.atomic_dir` does: each
logo replaces its namesake, other files there are left alone, and a regular
file of the folder's name is refused. Rows not scored (``mostly_n``) are
never among the top variants and are ``.`` in the scored VCF.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from .atomic import atomic_dir, atomic_open, atomic_path
from .attribution import ism
from .encode import one_hot
from .errors import GenocnnError, check_count
from .genome import open_genome
from .logos import draw_contributions
from .variants import QUANTITIES, Chunk, Tally, default_batch_size, empty_table, iter_effects
from .vcf import VcfReader, info_key, info_lines

__all__ = ["VariantFiles", "check_logo_dir", "logo_dir", "plot_variant_logos", "write_variant_effects"]

_DESCRIPTIONS = {"ref": "genocnn probability of {t}, REF window", "alt": "genocnn probability of {t}, ALT window",
                 "diff": "genocnn p(ALT) - p(REF) for {t}", "logfc": "genocnn log-odds ALT - REF for {t}",
                 "pvalue": "genocnn empirical p-value of |logfc| for {t} against random matched SNVs"}


class VariantFiles(NamedTuple):
    """What :func:`write_variant_effects` wrote and found."""

    scored: int  #: ALT alleles scored (rows of the table not ``mostly_n``)
    records: int  #: VCF records read
    skipped: dict  #: skipped alleles by reason
    notes: list[str]  #: lines for the user
    logos: list[Path]  #: the PNG files of the top variants
    top: pd.DataFrame  #: the top rows (by largest |logfc| over tasks), best first
    mostly_n: int = 0  #: rows not scored: a window less than MIN_BASE_FRACTION A/C/G/T (column ``mostly_n``)


class _Top(NamedTuple):
    score: float
    order: int
    row: dict
    windows: tuple[str, str]
    lefts: tuple[int, int]
    task: str


def logo_dir(out: str | os.PathLike) -> Path:
    """The logo folder beside the table: ``effects.tsv`` -> ``effects_logos/``."""
    out = Path(out)
    return out.with_name(f"{out.name.split('.')[0] or 'effects'}_logos")


def _keep_top(heap: list[_Top], chunk: Chunk, tasks: list[str], top: int, counter: itertools.count) -> None:
    if not top or not len(chunk.table):
        return
    logfc = np.abs(chunk.table[[f"logfc_{t}" for t in tasks]].to_numpy(dtype=np.float64))
    score = logfc.max(axis=1)  # NaN for rows not scored (mostly_n): never drawn
    scored = np.flatnonzero(np.isfinite(score))
    best = scored[np.argsort(-score[scored], kind="stable")[:top]]
    for i in best:
        item = _Top(float(logfc[i].max()), -next(counter), chunk.table.iloc[i].to_dict(),
                    (chunk.refs[i], chunk.alts[i]), chunk.lefts[i], tasks[int(logfc[i].argmax())])
        (heapq.heappush if len(heap) < top else heapq.heappushpop)(heap, item)


def _info(chunk: Chunk, quantities: list[str], tasks: list[str]) -> dict[int, dict[str, list]]:
    """Per record of the chunk: INFO key -> one value per ALT (None where the ALT was not scored)."""
    info: dict[int, dict[str, list]] = {}
    values = {(q, t): chunk.table[f"{q}_{t}"].to_numpy() for q in quantities for t in tasks}
    for row, (r, k) in enumerate(chunk.keys):
        n_alt = max(len(chunk.records[r].variant.ALT), 1)
        fields = info.setdefault(r, {info_key(q, t): [None] * n_alt for q in quantities for t in tasks})
        for (q, t), column in values.items():
            v = float(column[row])
            fields[info_key(q, t)][k] = None if np.isnan(v) else v
    return info


def plot_variant_logos(ref_attr: np.ndarray, alt_attr: np.ndarray, lefts: tuple[int, int],
                       path: str | os.PathLike, title: str = "") -> None:
    """Draw the ISM maps of a variant's two windows as aligned logos (REF above ALT); PNG, atomically.

    Parameters
    ----------
    ref_attr, alt_attr : np.ndarray, shape (4, L)
        Contribution maps of the reference and alternative windows.
    lefts : (int, int)
        Genome bases before the allele in each window: x = 0 is the VCF ``POS``
        in both rows, so left flanks line up base for base (an indel's right
        flank is shifted by its length).
    path : path
    title : str
    """
    from matplotlib.figure import Figure

    length = ref_attr.shape[1]
    fig = Figure(figsize=(min(max(4.0, 0.12 * length), 40.0), 4.2))
    axes = fig.subplots(2, 1, sharex=True, sharey=True)
    for ax, attr, left, label in zip(axes, (ref_attr, alt_attr), lefts, ("REF", "ALT")):
        draw_contributions(ax, attr, start=-left)
        ax.axvspan(-0.5, 0.5, color="grey", alpha=0.15, linewidth=0)
        ax.set_ylabel(f"{label}\ncontribution")
    both = np.stack([ref_attr, alt_attr])
    low, high = min(np.minimum(both, 0).sum(1).min(), 0.0), max(np.maximum(both, 0).sum(1).max(), 1e-6)
    axes[0].set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))  # one scale for both rows
    axes[0].set_xlim(-max(lefts) - 0.5, length - min(lefts) - 0.5)
    axes[1].set_xlabel("position relative to POS")
    if title:
        axes[0].set_title(title, fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


#: The names :func:`_draw_top` gives its logos (rank, variant); others in the folder are the user's.
LOGO_NAME = re.compile(r"\d{2,}_[\w.-]+_\d+_[\w.-]+_[\w.-]+\.png", re.ASCII)  # NN_chrom_pos_ref_alt.png


def _draw_top(model, items: list[_Top], folder: Path, batch_size: int) -> list[Path]:
    paths = []
    for rank, item in enumerate(items, start=1):
        x = one_hot(list(item.windows), length=model.length)
        attr = ism(model, x, item.task, batch_size)
        row = item.row
        stem = f"{rank:02d}_{row['chrom']}_{row['pos']}_{row['ref'][:10]}_{row['alt'][:10]}"
        stem = "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in stem)
        title = (f"{row['chrom']}:{row['pos']} {row['ref'][:10]}>{row['alt'][:10]} ({row['id']})  {item.task}: "
                 f"p(ref) {row['ref_' + item.task]:.3f}, p(alt) {row['alt_' + item.task]:.3f}, "
                 f"logfc {row['logfc_' + item.task]:.2f}")
        paths.append(folder / f"{stem}.png")
        plot_variant_logos(attr[0], attr[1], item.lefts, paths[-1], title)
    return paths


def check_logo_dir(folder: str | os.PathLike) -> None:
    """Refuse a logo folder path that is taken by something other than a folder (checked before scoring).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> check_logo_dir(d / "effects_logos")
    >>> _ = (d / "taken").write_text("mine")
    >>> check_logo_dir(d / "taken")
    Traceback (most recent call last):
    ...
    genocnn.errors.GenocnnError: ...taken: exists and is not a directory; the `top` logos go in a folder of that name
    """
    folder = Path(folder)
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        raise GenocnnError(f"{folder}: exists and is not a directory; the `top` logos go in a folder of that name")


def write_variant_effects(
    model,
    vcf: str | os.PathLike,
    genome: str | os.PathLike,
    out: str | os.PathLike,
    out_vcf: str | os.PathLike | None = None,
    null: int = 0,
    skip_ref_mismatch: bool = False,
    top: int = 10,
    batch_size: int | None = None,
    device=None,
    seed: int = 0,
    progress: bool = False,
) -> VariantFiles:
    """Score a VCF (:func:`~genocnn.variants.variant_effects`) into files, streaming.

    Writes ``out`` (TSV, the columns of :func:`~genocnn.variants.variant_effects`),
    ``out_vcf`` if given (the input VCF with the same scores as ``Number=A``
    INFO fields ``GENOCNN_<REF|ALT|DIFF|LOGFC|PVALUE>_<task>``, declared in
    its header; bgzip when the name ends in ``.gz``), and for the ``top``
    alleles with the largest ``|logfc|`` (over tasks) two aligned ISM logos
    each in :func:`logo_dir` (``effects_logos/`` for ``effects.tsv``; an
    earlier run's ranked logos there are removed, other files are kept), for the task
    where that variant's ``|logfc|`` is largest. Rows not scored
    (``mostly_n``) get ``.`` in the VCF and no logo.

    Returns
    -------
    VariantFiles

    Raises
    ------
    GenocnnError
        As :func:`~genocnn.variants.variant_effects`; also when the logo
        folder's path is a regular file (before anything is scored).
    """
    check_count("batch_size", batch_size)
    check_count("null", null, 0)
    check_count("top", top, 0)
    tasks = model.tasks
    quantities = list(QUANTITIES) + (["pvalue"] if null else [])
    info = info_lines({info_key(q, t): _DESCRIPTIONS[q].format(t=t) for q in quantities for t in tasks})
    heap: list[_Top] = []
    counter = itertools.count()
    if top:
        check_logo_dir(logo_dir(out))
    with contextlib.ExitStack() as stack:
        fa = stack.enter_context(open_genome(genome))
        vcf_tmp = stack.enter_context(atomic_path(out_vcf)) if out_vcf is not None else None
        compress = str(out_vcf).endswith((".gz", ".bgz"))
        reader = stack.enter_context(VcfReader(vcf, vcf_tmp, info if vcf_tmp else (), compress))
        fh = stack.enter_context(atomic_open(out))
        tally = Tally(str(vcf), str(genome))
        header = True
        batch_size = batch_size or default_batch_size(model, device)
        for chunk in iter_effects(model, reader, fa, tally, null, skip_ref_mismatch, batch_size, device, seed,
                                  progress):
            chunk.table.to_csv(fh, sep="\t", index=False, header=header, float_format="%.6g")
            header = False
            _keep_top(heap, chunk, tasks, top, counter)
            if vcf_tmp is not None:
                by_record = _info(chunk, quantities, tasks)
                for r, record in enumerate(chunk.records):
                    reader.write(record, by_record.get(r))
        if header:
            empty_table(tasks, null).to_csv(fh, sep="\t", index=False)
        tally.skipped.update(reader.skipped)
        best = sorted(heap, reverse=True)
        logos: list[Path] = []
        if best:  # nothing to draw: no folder
            folder = logo_dir(out)
            with atomic_dir(folder) as tmp:
                logos = [folder / p.name for p in _draw_top(model, best, tmp, batch_size)]
            for stale in set(folder.iterdir()) - set(logos):
                if LOGO_NAME.fullmatch(stale.name) and stale.is_file():  # an earlier run's ranked logo
                    stale.unlink()
    top_table = pd.DataFrame([item.row for item in best])
    return VariantFiles(tally.scored, reader.records, dict(tally.skipped), tally.notes(skip_ref_mismatch),
                        logos, top_table, tally.mostly_n)
