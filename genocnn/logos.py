"""Sequence logos: a motif above its best database match, aligned as Tomtom aligned them.

Letter heights are the base probabilities times the column's information
content in bits (relative entropy to the motif's background), drawn the way
logomaker draws them (each letter's outline stretched to its box, smallest
letter at the bottom, logomaker's "classic" colours). ``logomaker.Logo``
builds two font paths and one patch per letter, which made 64 logos take
about 30 s; here each letter's outline is computed once, a logo is one
PatchCollection, letters under ``MIN_HEIGHT`` bits are skipped and one
figure is reused, so 64 logos take a few seconds. The tests check the letter
heights against ``logomaker.transform_matrix``. Figures are bare matplotlib
``Figure`` objects (no pyplot), so no backend is switched and no global state
is touched; PNGs are rendered by Agg.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath

from .atomic import atomic_path
from .pwm import ALPHABET, Motif, column_information, reverse_complement_motif

LOGO_DPI = 72
INCHES_PER_COLUMN = 0.32
ROW_HEIGHT = 1.45
# Letters shorter than this (in bits; under one pixel at the default size) are not drawn.
MIN_HEIGHT = 0.02
GLYPH_WIDTH = 0.9
# logomaker's "classic" scheme.
COLORS = {"A": "green", "C": "blue", "G": "orange", "T": "red"}


def information_matrix(motif: Motif) -> pd.DataFrame:
    """Letter heights of an information-content-scaled logo.

    Parameters
    ----------
    motif : Motif

    Returns
    -------
    pandas.DataFrame, shape (w, 4)
        Columns ``A, C, G, T``; row ``j`` is ``ppm[:, j] * IC_j`` in bits, so
        each row sums to the column's information content (at most 2 bits on a
        uniform background).

    Examples
    --------
    >>> m = Motif("m", np.array([[10.0, 0], [0, 5], [0, 0], [0, 5]]), pseudocount=0.0)
    >>> information_matrix(m).round(2).values.tolist()
    [[2.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.5]]
    """
    ppm = motif.ppm
    heights = ppm * column_information(ppm, motif.background)[None, :]
    return pd.DataFrame(np.clip(heights, 0, None).T, columns=list(ALPHABET))


class LogoWriter:
    """Writes logo PNGs with one reused matplotlib figure (two rows: motif, match).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.png"
    >>> with LogoWriter() as logos:
    ...     logos.write(path, Motif("m", np.eye(4) * 10))
    >>> path.stat().st_size > 0
    True
    """

    def __init__(self, dpi: int = LOGO_DPI) -> None:
        self.dpi = dpi
        self.figure = Figure(figsize=(6, 2 * ROW_HEIGHT))  # no pyplot: no global state, Agg on save
        self.axes = self.figure.subplots(2, 1)

    def __enter__(self) -> LogoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.figure.clear()

    def write(
        self,
        path: str | os.PathLike,
        motif: Motif,
        match: Motif | None = None,
        offset: int = 0,
        strand: str = "+",
        title: str = "",
        match_title: str = "",
    ) -> None:
        """Draw ``motif`` above ``match`` and save a PNG atomically.

        Parameters
        ----------
        path : str or PathLike
        motif : Motif
            The query (e.g. a filter's motif).
        match : Motif or None
            Its database match; None leaves the lower row with a note.
        offset : int
            Tomtom's offset: query column 0 faces column ``offset`` of the
            match (of its reverse complement when ``strand`` is ``"-"``).
        strand : {"+", "-"}
            ``"-"`` draws the match's reverse complement.
        title, match_title : str
            Row titles.
        """
        if match is not None and strand == "-":
            match = reverse_complement_motif(match)
        lo, hi = 0, motif.width
        if match is not None:
            lo, hi = min(lo, -offset), max(hi, match.width - offset)
        self.figure.set_size_inches(max(3.0, 1.0 + INCHES_PER_COLUMN * (hi - lo)), 2 * ROW_HEIGHT)
        top, bottom = self.axes
        for ax in self.axes:
            ax.cla()
        self._draw(top, motif, 0, title or motif.name)
        if match is None:
            bottom.text(0.5, 0.5, match_title or "no database match", ha="center", va="center",
                        transform=bottom.transAxes, fontsize=11, color="0.4")
            bottom.set_axis_off()
        else:
            bottom.set_axis_on()
            self._draw(bottom, match, -offset, match_title or match.name)
        for ax in self.axes:
            ax.set_xlim(lo - 0.5, hi - 0.5)
        self.figure.tight_layout(pad=0.3, h_pad=0.6)
        with atomic_path(path) as tmp:
            self.figure.savefig(tmp, dpi=self.dpi, format="png")

    @staticmethod
    def _draw(ax, motif: Motif, start: int, title: str) -> None:
        """Stack letters, smallest at the bottom, as one PatchCollection."""
        heights = information_matrix(motif).to_numpy()
        patches, colors = [], []
        for j, column in enumerate(heights):
            floor = 0.0
            for b in np.argsort(column, kind="stable"):
                if column[b] >= MIN_HEIGHT:
                    patches.append(PathPatch(_glyph(ALPHABET[b], start + j, floor, column[b])))
                    colors.append(COLORS[ALPHABET[b]])
                floor += column[b]
        ax.add_collection(PatchCollection(patches, facecolors=colors, edgecolors="none"))
        for spine in ("top", "right", "bottom"):
            ax.spines[spine].set_visible(False)
        ax.set_ylim(0, 2)
        ax.set_yticks([0, 1, 2])
        ax.set_ylabel("bits", fontsize=9)
        ax.set_xticks([])
        ax.tick_params(labelsize=8)
        ax.set_title(title, fontsize=11, loc="left")


@functools.lru_cache(maxsize=None)
def _unit_letter(letter: str) -> MplPath:
    """The outline of ``letter`` (DejaVu Sans Bold) scaled to fill the unit square."""
    path = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    box = path.get_extents()
    vertices = (path.vertices - [box.xmin, box.ymin]) / [box.width, box.height]
    return MplPath(vertices, path.codes)


def _glyph(letter: str, x: float, floor: float, height: float) -> MplPath:
    """``letter`` stretched over [x - width/2, x + width/2] x [floor, floor + height]."""
    unit = _unit_letter(letter)
    vertices = unit.vertices * [GLYPH_WIDTH, height] + [x - GLYPH_WIDTH / 2, floor]
    return MplPath(vertices, unit.codes)


def write_logos(
    out_dir: str | os.PathLike,
    motifs: Sequence[Motif],
    matches: Sequence[tuple[Motif, int, str] | None] | None = None,
    dpi: int = LOGO_DPI,
) -> list[Path]:
    """Write ``out_dir/<motif name>.png`` for every motif, with its match below.

    Parameters
    ----------
    out_dir : str or PathLike
        Created if missing.
    motifs : sequence of Motif
    matches : sequence of (Motif, offset, strand) or None, optional
        Per motif, its best database match and Tomtom's alignment; None for
        no match. Default: no matches.
    dpi : int

    Returns
    -------
    list of pathlib.Path
        The PNG files, in the order of ``motifs``.
    """
    out = Path(out_dir)
    matches = list(matches) if matches is not None else [None] * len(motifs)
    paths = []
    with LogoWriter(dpi) as logos:
        for motif, hit in zip(motifs, matches):
            path = out / f"{motif.name}.png"
            if hit is None:
                logos.write(path, motif, title=_title(motif))
            else:
                target, offset, strand = hit
                logos.write(path, motif, target, offset, strand, title=_title(motif),
                            match_title=f"{target.name} {target.description}  (strand {strand})")
            paths.append(path)
    return paths


def _title(motif: Motif) -> str:
    return f"{motif.name}  ({motif.information_content:.1f} bits, {motif.sites} sites)"


def draw_contributions(ax, seq_attr: np.ndarray, start: int = 0) -> None:
    """Draw one sequence's contribution map on ``ax`` as a logo: letters scaled by their score.

    Positive scores stack upwards from 0, negative ones hang below it (each
    column smallest first), in the colours and letter shapes of the motif
    logos, as one PatchCollection (a 2 x 200-column figure draws in well
    under a second, where ``logomaker.Logo`` took several).

    Parameters
    ----------
    ax : matplotlib Axes
    seq_attr : np.ndarray, shape (4, L)
        Contributions in A, C, G, T order.
    start : int
        x coordinate of the first column (columns are drawn at ``start``, ``start + 1``, ...).
    """
    a = np.asarray(seq_attr, dtype=np.float64)
    tiny = 1e-3 * max(float(np.abs(a).max(initial=0.0)), 1e-12)
    patches, colors = [], []
    for j, column in enumerate(a.T):
        up = down = 0.0
        for b in np.argsort(np.abs(column), kind="stable"):
            h = column[b]
            if abs(h) < tiny:
                continue
            floor = up if h > 0 else down + h
            patches.append(PathPatch(_glyph(ALPHABET[b], start + j, floor, abs(h))))
            colors.append(COLORS[ALPHABET[b]])
            up, down = (up + h, down) if h > 0 else (up, down + h)
    ax.add_collection(PatchCollection(patches, facecolors=colors, edgecolors="none"))
    low = min(np.minimum(a, 0).sum(0).min(initial=0.0), 0.0)
    high = max(np.maximum(a, 0).sum(0).max(initial=0.0), tiny)
    pad = 0.05 * (high - low)
    ax.set_xlim(start - 0.5, start + a.shape[1] - 0.5)
    ax.set_ylim(low - pad, high + pad)
    ax.axhline(0.0, color="black", linewidth=0.5)
