"""Motif files: MEME (minimal), JASPAR, TRANSFAC and HOMER writers and readers.

All four formats written from the same motifs describe the same matrices:

* the PFM is first rounded to ``COUNT_DECIMALS`` (2) decimals, the precision of
  Biopython's JASPAR writer (``%6.2f``), for every format;
* JASPAR and TRANSFAC files hold those counts (written by Biopython);
* the MEME file holds ``Motif(pfm=rounded counts, ...).ppm``, i.e. the counts
  plus the motif's pseudocount split by its background, normalised, written
  with ``PROB_DECIMALS`` (8) decimals.

Reading a JASPAR or TRANSFAC file back gives the counts with the default
pseudocount (1.0, uniform background), so its ``.ppm`` equals the MEME matrix
whenever the written motifs used those defaults. Pipeline counts (whole
windows, or quarters from ``N``) are unchanged by the rounding.

MEME files hold probabilities, not counts. A MEME motif is read as
``Motif(pfm=ppm * nsites, sites=nsites, pseudocount=0.0)`` so that ``.ppm``
reproduces the file's matrix; ``nsites`` defaults to 20 when the header lacks
it (the MEME suite's default).

HOMER ``.motif`` files hold probabilities too, written like the MEME matrix.
Each motif starts with ``>consensus<TAB>name description<TAB>threshold``,
where the threshold is the log-odds score (natural log, against the motif's
background) a site needs: ``HOMER_THRESHOLD_FRACTION`` (0.6) of the best
possible score, a common default of converters to HOMER. HOMER files have no
site count, so a HOMER motif is read as ``Motif(pfm=ppm * 20, sites=20,
pseudocount=0.0)``; rows are renormalised to sum to 1 (HOMER's own files are
rounded to 3 decimals). The MEME reader is our own: Biopython's
``minimal`` parser rounds ``p * nsites`` to whole counts and
``memelite.io.read_meme`` drops ``nsites``, the background and motifs whose
MOTIF lines repeat; both are used as references in the tests.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from Bio import motifs as bio_motifs
from Bio.motifs import transfac as bio_transfac

from genocnn.atomic import atomic_open
from genocnn.errors import GenocnnError
from genocnn.pwm import ALPHABET, UNIFORM_BACKGROUND, Motif, motif_from_counts

FORMATS = ("meme", "jaspar", "transfac", "homer")
SUFFIXES = {
    ".motif": "homer",
    ".homer": "homer",
    ".meme": "meme",
    ".txt": "meme",
    ".jaspar": "jaspar",
    ".transfac": "transfac",
    ".dat": "transfac",
}
COUNT_DECIMALS = 2
PROB_DECIMALS = 8
DEFAULT_NSITES = 20
HOMER_THRESHOLD_FRACTION = 0.6


def write_motifs(
    motifs: Sequence[Motif], path: str | os.PathLike, format: str | None = None
) -> None:
    """Write motifs to a MEME, JASPAR, TRANSFAC or HOMER file.

    Parameters
    ----------
    motifs : sequence of Motif
        At least one motif; names must be non-empty and free of whitespace.
    path : str or PathLike
        The output file, written atomically.
    format : {"meme", "jaspar", "transfac", "homer"} or None
        None infers it from the suffix (``.meme``/``.txt`` -> meme,
        ``.jaspar`` -> jaspar, ``.transfac``/``.dat`` -> transfac,
        ``.motif``/``.homer`` -> homer) and falls back to ``"meme"`` for any
        other suffix.

    Raises
    ------
    GenocnnError
        Unknown format, no motifs, a bad name or matrix, or (MEME) motifs
        with different backgrounds.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.meme"
    >>> write_motifs([Motif("m1", np.eye(4) * 10, sites=10)], path)
    >>> [m.name for m in read_motifs(path)]
    ['m1']
    """
    fmt = _resolve_format(path, format, default="meme")
    motifs = [_rounded(m, path) for m in motifs]
    if not motifs:
        raise GenocnnError(f"{path}: no motifs to write")
    writers = {"meme": _meme_text, "jaspar": _jaspar_text, "transfac": _transfac_text,
               "homer": _homer_text}
    text = writers[fmt](motifs, path)
    with atomic_open(path, "w") as fh:
        fh.write(text)


def read_motifs(path: str | os.PathLike, format: str | None = None) -> list[Motif]:
    """Read motifs from a MEME (minimal), JASPAR, TRANSFAC or HOMER file.

    Parameters
    ----------
    path : str or PathLike
        The motif file.
    format : {"meme", "jaspar", "transfac", "homer"} or None
        None infers it from the suffix (see ``write_motifs``), else from the
        content (``MEME version`` line; a ``>`` header with three or more
        tab-separated fields followed by a row of 4 numbers is HOMER, any
        other ``>`` header JASPAR; ``P0``/``PO`` line).

    Returns
    -------
    list of Motif
        In file order. MEME motifs: ``pfm = ppm * nsites``, ``pseudocount = 0``
        and the file's background. JASPAR/TRANSFAC motifs: the counts with
        Motif's default pseudocount and background, ``sites`` = the largest
        column total. HOMER motifs: ``pfm = ppm * 20``, ``sites = 20``,
        ``pseudocount = 0``.

    Raises
    ------
    GenocnnError
        Missing, empty or unparseable file, or a file with no motifs.
    """
    path = Path(path)
    fmt = _resolve_format(path, format, default=None)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is dropped
    except (OSError, UnicodeDecodeError) as exc:
        raise GenocnnError(f"{path}: cannot read motif file ({exc})") from exc
    if not text.strip():
        raise GenocnnError(f"{path}: motif file is empty")
    fmt = fmt or _sniff_format(text, path)
    reader = {"meme": _parse_meme, "jaspar": _parse_jaspar, "transfac": _parse_transfac,
              "homer": _parse_homer}[fmt]
    try:
        motifs = reader(text, path)
    except GenocnnError:
        raise
    except Exception as exc:  # Biopython raises ValueError, KeyError, IndexError...
        raise GenocnnError(f"{path}: not a valid {fmt} motif file ({exc})") from exc
    if not motifs:
        raise GenocnnError(f"{path}: no motifs found in {fmt} file")
    return motifs


# ---------------------------------------------------------------- formats


def _resolve_format(path, format: str | None, default: str | None) -> str | None:
    if format is None:
        return SUFFIXES.get(Path(path).suffix.lower(), default)
    fmt = format.lower()
    if fmt not in FORMATS:
        raise GenocnnError(f"unknown motif format {format!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _sniff_format(text: str, path) -> str:
    if re.search(r"^MEME version", text, re.M):
        return "meme"
    lines = [line for line in text.splitlines() if line.strip()]
    if (
        len(lines) > 1
        and lines[0].startswith(">")
        and len(lines[0].split("\t")) >= 3
        and _ROW.match(lines[1])
    ):
        return "homer"
    if text.lstrip().startswith(">"):
        return "jaspar"
    if re.search(r"^P[0O]\s", text, re.M):
        return "transfac"
    raise GenocnnError(
        f"{path}: cannot tell the motif format ({', '.join(FORMATS)} are read): no MEME header, "
        "no '>' record line, no TRANSFAC P0 row (the Python API's read_motifs also takes format=)"
    )


def _rounded(motif: Motif, path) -> Motif:
    """Check a motif for writing and return it with counts rounded to COUNT_DECIMALS."""
    if not motif.name or re.search(r"\s", motif.name):
        raise GenocnnError(f"{path}: motif name {motif.name!r} is empty or contains whitespace")
    pfm = np.round(motif.pfm, COUNT_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    if pfm.shape[1] == 0 or not np.all(np.isfinite(pfm)) or np.any(pfm < 0):
        raise GenocnnError(
            f"{path}: motif {motif.name} needs width >= 1 and finite non-negative counts"
        )
    out = Motif(
        name=motif.name,
        pfm=pfm,
        sites=motif.sites,
        background=motif.background,
        pseudocount=motif.pseudocount,
        description=motif.description,
        extra=dict(motif.extra),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        ppm = out.ppm
    if not np.all(np.isfinite(ppm)):
        raise GenocnnError(f"{path}: motif {motif.name} has a column with no counts")
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _nsites(motif: Motif) -> int:
    if motif.sites > 0:
        return int(motif.sites)
    return max(1, int(round(motif.pfm.sum(axis=0).max())))


# ---------------------------------------------------------------- MEME


def _meme_text(motifs: list[Motif], path) -> str:
    background = motifs[0].background
    for m in motifs:
        if not np.allclose(m.background, background, rtol=0, atol=1e-9):
            raise GenocnnError(
                f"{path}: a MEME file has one background; motif {m.name} has "
                f"{m.background}, motif {motifs[0].name} has {background}"
            )
    bg = " ".join(f"{b} {p:.{PROB_DECIMALS}g}" for b, p in zip(ALPHABET, background))
    lines = [
        "MEME version 4",
        "",
        f"ALPHABET= {ALPHABET}",
        "",
        "strands: + -",
        "",
        "Background letter frequencies",
        bg,
        "",
    ]
    for m in motifs:
        lines.append(f"MOTIF {m.name} {_one_line(m.description)}".rstrip())
        lines.append(
            f"letter-probability matrix: alength= 4 w= {m.width} nsites= {_nsites(m)} E= 0"
        )
        lines.extend(" ".join(f"{p:.{PROB_DECIMALS}f}" for p in col) for col in m.ppm.T)
        lines.append("")
    return "\n".join(lines) + "\n"


_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ROW = re.compile(rf"^\s*({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})\s+({_FLOAT})\s*$")


def _parse_meme(text: str, path) -> list[Motif]:
    lines = text.splitlines()
    if not any(line.startswith("MEME version") for line in lines):
        raise GenocnnError(f"{path}: no 'MEME version' line; not a MEME file")
    background = UNIFORM_BACKGROUND
    motifs: list[Motif] = []
    pending: tuple[str, str, int] | None = None  # name, description, line number
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if line.startswith("ALPHABET"):
            alphabet = line.split("=", 1)[-1].strip()
            if alphabet != ALPHABET:
                raise GenocnnError(f"{path}:{i}: only the DNA alphabet ACGT is supported")
        elif line.startswith("Background letter frequencies"):
            background, i = _meme_background(lines, i, path)
        elif line.startswith("MOTIF"):
            if pending is not None:
                raise GenocnnError(f"{path}:{pending[2]}: motif {pending[0]} has no matrix")
            fields = line.split(maxsplit=2)
            if len(fields) < 2:
                raise GenocnnError(f"{path}:{i}: MOTIF line without a name")
            pending = (fields[1], fields[2] if len(fields) > 2 else "", i)
        elif line.startswith("letter-probability matrix"):
            if pending is None:
                raise GenocnnError(f"{path}:{i}: matrix without a MOTIF line")
            ppm, nsites, i = _meme_matrix(lines, i, path)
            name, description, _ = pending
            motifs.append(
                Motif(
                    name=name,
                    pfm=ppm * nsites,
                    sites=int(round(nsites)),
                    background=background,
                    pseudocount=0.0,
                    description=description,
                )
            )
            pending = None
    if pending is not None:
        raise GenocnnError(f"{path}:{pending[2]}: motif {pending[0]} has no matrix")
    return motifs


def _meme_background(lines: list[str], i: int, path) -> tuple[tuple, int]:
    """Read 'A p C p G p T p' from the lines after the header, up to a blank line."""
    tokens: list[str] = []
    while i < len(lines) and lines[i].strip() and len(tokens) < 8:
        tokens.extend(lines[i].split())
        i += 1
    freqs = dict(zip(tokens[::2], tokens[1::2]))
    try:
        background = tuple(float(freqs[b]) for b in ALPHABET)
    except (KeyError, ValueError) as exc:
        raise GenocnnError(f"{path}:{i}: bad background letter frequencies") from exc
    if any(p < 0 for p in background) or abs(sum(background) - 1) > 0.01:
        raise GenocnnError(f"{path}:{i}: background frequencies must be >= 0 and sum to 1")
    return background, i


def _meme_matrix(lines: list[str], i: int, path) -> tuple[np.ndarray, float, int]:
    """Parse the letter-probability header at lines[i - 1] and its rows."""
    header = i
    params = dict(re.findall(r"(\w+)=\s*(\S+)", lines[i - 1]))
    try:
        width = int(params["w"]) if "w" in params else None
        nsites = float(params.get("nsites", DEFAULT_NSITES))
        alength = int(params.get("alength", 4))
    except ValueError as exc:
        raise GenocnnError(f"{path}:{header}: bad letter-probability header") from exc
    if alength != 4:
        raise GenocnnError(f"{path}:{header}: alength= {alength}; only DNA (4) is supported")
    if nsites <= 0:
        raise GenocnnError(f"{path}:{header}: nsites= must be positive")
    rows = []
    while i < len(lines) and (width is None or len(rows) < width):
        match = _ROW.match(lines[i])
        if not match:
            break
        rows.append([float(x) for x in match.groups()])
        i += 1
    if not rows or (width is not None and len(rows) != width):
        raise GenocnnError(
            f"{path}:{header}: expected {width or 'some'} rows of 4 probabilities, "
            f"found {len(rows)}"
        )
    ppm = np.array(rows).T
    if np.any(ppm < 0) or np.any(np.abs(ppm.sum(axis=0) - 1) > 0.01):
        raise GenocnnError(f"{path}:{header}: probabilities must be >= 0 and rows sum to 1")
    return ppm, nsites, i


# ---------------------------------------------------------------- JASPAR, TRANSFAC


def _bio_counts(motif: Motif) -> dict[str, list[float]]:
    return {b: [float(x) for x in row] for b, row in zip(ALPHABET, motif.pfm)}


def _jaspar_text(motifs: list[Motif], path) -> str:
    records = []
    for m in motifs:
        bio = bio_motifs.Motif(alphabet=ALPHABET, counts=_bio_counts(m))
        bio.matrix_id = m.name
        # JASPAR headers hold one word after the ID.
        bio.name = "_".join(m.description.split()) or m.name
        records.append(bio)
    return bio_motifs.write(records, "jaspar")


def _transfac_text(motifs: list[Motif], path) -> str:
    records = []
    for m in motifs:
        bio = bio_transfac.Motif(alphabet=ALPHABET, counts=_bio_counts(m))
        bio["ID"] = m.name
        if m.description.strip():
            bio["DE"] = _one_line(m.description)
        records.append(bio)
    return bio_motifs.write(records, "transfac")


def _parse_jaspar(text: str, path) -> list[Motif]:
    out = []
    for bio in bio_motifs.parse(io.StringIO(text), "jaspar"):
        name = bio.matrix_id or bio.name
        description = bio.name if bio.name and bio.name != name else ""
        out.append(motif_from_counts(bio.counts, name, description))
    return out


def _parse_transfac(text: str, path) -> list[Motif]:
    out = []
    for k, bio in enumerate(bio_motifs.parse(io.StringIO(text), "transfac"), start=1):
        name = bio.get("ID") or bio.get("AC") or f"motif_{k}"
        description = bio.get("DE") or bio.get("NA") or ""
        out.append(motif_from_counts(bio.counts, name, description))
    return out


# ---------------------------------------------------------------- HOMER


def homer_threshold(motif: Motif) -> float:
    """HOMER's detection threshold for ``motif``: a fraction of its best log-odds score.

    Returns
    -------
    float
        ``HOMER_THRESHOLD_FRACTION`` times the sum over columns of the largest
        natural-log odds ``ln(ppm / background)``, floored at 0.
    """
    log_odds = np.log(np.clip(motif.ppm, 1e-12, 1.0) / np.asarray(motif.background)[:, None])
    return max(0.0, HOMER_THRESHOLD_FRACTION * float(log_odds.max(axis=0).sum()))


def _homer_text(motifs: list[Motif], path) -> str:
    lines = []
    for m in motifs:
        name = f"{m.name} {_one_line(m.description)}".rstrip()
        lines.append(f">{m.consensus.upper()}\t{name}\t{homer_threshold(m):.6f}")
        lines.extend("\t".join(f"{p:.{PROB_DECIMALS}f}" for p in col) for col in m.ppm.T)
    return "\n".join(lines) + "\n"


def _parse_homer(text: str, path) -> list[Motif]:
    motifs: list[Motif] = []
    header: tuple[str, str, int] | None = None
    rows: list[list[float]] = []

    def finish() -> None:
        if header is None:
            return
        name, description, line_no = header
        if not rows:
            raise GenocnnError(f"{path}:{line_no}: motif {name} has no rows of 4 probabilities")
        ppm = np.array(rows).T
        totals = ppm.sum(axis=0)
        if np.any(ppm < 0) or np.any(np.abs(totals - 1) > 0.05):
            raise GenocnnError(f"{path}:{line_no}: motif {name}: probabilities must be >= 0 "
                               "and rows sum to 1")
        motifs.append(Motif(name=name, pfm=ppm / totals * DEFAULT_NSITES, sites=DEFAULT_NSITES,
                            pseudocount=0.0, description=description))

    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">"):
            finish()
            fields = line[1:].split("\t")
            label = fields[1].split(maxsplit=1) if len(fields) > 1 else []
            if len(fields) < 3 or not label:
                raise GenocnnError(f"{path}:{i}: HOMER header needs '>consensus<TAB>name<TAB>threshold'")
            header = (label[0], label[1] if len(label) > 1 else "", i)
            rows = []
            continue
        match = _ROW.match(raw)
        if header is None or not match:
            raise GenocnnError(f"{path}:{i}: expected a '>' header or a row of 4 probabilities")
        rows.append([float(x) for x in match.groups()])
    finish()
    return motifs
