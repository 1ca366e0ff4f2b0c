"""VCF files, read with cyvcf2 (htslib) one ALT allele at a time, and scored copies written back.

The file (plain, gzip or bgzip; found by its first bytes) is read as text
line by line, so every record knows its line number; each record line is
parsed by htslib through cyvcf2 (``Writer.variant_from_string``) against the
file's own header. Reading stays streaming: nothing but the current record
is held.

Rules
-----
* The header must come first and end with the ``#CHROM`` line; a file whose
  first line is a record, or that has no ``#CHROM`` line, is refused (line 1).
  A missing ``##fileformat`` line is supplied.
* A record htslib cannot parse (too few columns, a non-integer position, ...)
  is refused with its line number. Blank lines are skipped.
* ``REF`` must be A/C/G/T/N (either case); so must every scored ``ALT``.
* ``QUAL`` must be ``.`` or a number (htslib would read other text as 0).
* A multi-allelic record gives one :class:`Allele` per ``ALT``.
* Symbolic ``ALT`` alleles (``<DEL>``, ``<*>``, the spanning deletion ``*``,
  breakends such as ``A[chr2:5[``) and a missing ``ALT`` (``.``) are skipped
  and counted in :attr:`VcfReader.skipped`.
* Chromosome names that differ from the genome's only by a ``chr`` prefix
  (``1`` and ``chr1``) are matched (:func:`match_chrom`).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from .errors import GenocnnError
from .fasta import open_text

__all__ = ["Allele", "Record", "VcfReader", "info_lines", "info_key", "is_qual", "is_symbolic", "match_chrom"]

_BASES = re.compile(r"^[ACGTNacgtn]+$")
_INFO_KEY = re.compile(r"[^0-9A-Za-z_.]")
_QUAL = re.compile(r"^(\.|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"  # missing, or a VCF float
                   r"|[-+]?(inf|infinity|nan))$", re.IGNORECASE)


class Allele(NamedTuple):
    """One ALT allele of a VCF record: ``pos`` 1-based as in the file, ``line`` its line number."""

    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    line: int
    alt_index: int  #: position of ``alt`` among the record's ALT alleles


class Record(NamedTuple):
    """A parsed VCF line (``variant``: a cyvcf2 Variant) and its alleles to score."""

    line: int
    variant: object
    alleles: list[Allele]


def is_symbolic(alt: str) -> bool:
    """Whether an ALT allele names no sequence: ``<DEL>``, ``*``, a breakend, or missing (``.``).

    Examples
    --------
    >>> [is_symbolic(a) for a in ("G", "<DEL>", "*", "A[chr2:5[", ".", "TTA")]
    [False, True, True, True, True, False]
    """
    return alt in ("*", ".", "") or alt.startswith("<") or "[" in alt or "]" in alt


def is_qual(text: str) -> bool:
    """Whether a ``QUAL`` column is ``.`` (missing) or a number, as VCF 4.3 writes floats.

    Examples
    --------
    >>> [is_qual(q) for q in (".", "50", "3.5", "1e3", "-2", ".5", "abc", "", "5x", "..")]
    [True, True, True, True, True, True, False, False, False, False]
    """
    return bool(_QUAL.match(text))


def match_chrom(name: str, names) -> str | None:
    """The genome's name for VCF chromosome ``name``: itself, or with a ``chr`` prefix added or removed.

    Examples
    --------
    >>> match_chrom("1", {"chr1", "chr2"}), match_chrom("chrX", {"X"}), match_chrom("chr3", {"chr1"})
    ('chr1', 'X', None)
    """
    if name in names:
        return name
    other = name[3:] if name.startswith("chr") else "chr" + name
    return other if other in names else None


def info_key(quantity: str, task: str) -> str:
    """INFO field name of a score, e.g. ``GENOCNN_LOGFC_bound`` (odd characters of the task become ``_``)."""
    return f"GENOCNN_{quantity.upper()}_{_INFO_KEY.sub('_', task)}"


def info_lines(fields: dict[str, str]) -> list[str]:
    """``##INFO`` header lines declaring float fields with one value per ALT (``Number=A``)."""
    return [f'##INFO=<ID={key},Number=A,Type=Float,Description="{text}">' for key, text in fields.items()]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with open_text(path) as handle:
            for number, raw in enumerate(handle, start=1):
                yield number, raw.rstrip("\r\n")
    except (UnicodeDecodeError, EOFError, OSError) as exc:
        raise GenocnnError(f"{path}: not a readable VCF text file ({type(exc).__name__})") from None


class VcfReader:
    """Stream a VCF's records with their alleles; optionally write each record back with INFO fields.

    Use as a context manager. ``out`` (with ``info``, extra ``##INFO`` header
    lines) opens a cyvcf2 writer (bgzip when ``compress``) whose records
    :meth:`write` sends out.

    Attributes
    ----------
    skipped : collections.Counter
        Skipped ALT alleles by kind (``"symbolic ALT"``, ``"missing ALT"``).
    records : int
        Records read so far.
    """

    def __init__(self, path: str | os.PathLike, out: str | os.PathLike | None = None,
                 info: Sequence[str] = (), compress: bool = False):
        import cyvcf2

        getattr(cyvcf2.cyvcf2, "set_htslib_log_level", lambda level: None)(0)  # htslib's own stderr lines; our errors say it in one
        self.path = Path(path)
        if self.path.is_dir():
            raise GenocnnError(f"{self.path}: is a directory, not a VCF file")
        if not self.path.is_file():
            raise GenocnnError(f"{self.path}: no such VCF file")
        self.skipped: Counter = Counter()
        self.records = 0
        self._lines = _lines(self.path)
        header = self._header()
        self._keep_samples = out is not None
        if not self._keep_samples:
            header[-1] = "\t".join(header[-1].split("\t")[:8])
        header[-1:-1] = list(info)
        text = "\n".join(header) + "\n"
        target, mode = (os.fspath(out), "wz" if compress else "w") if out is not None else (os.devnull, "w")
        try:
            self._writer = cyvcf2.Writer.from_string(target, text, mode=mode)
        except Exception as exc:  # htslib: "error parsing header"
            raise GenocnnError(f"{self.path}: lines 1-{len(header) - len(info)}: malformed VCF header "
                               f"({str(exc).splitlines()[0][:60]})") from None
        if out is not None:
            self._writer.write_header()

    def _header(self) -> list[str]:
        header: list[str] = []
        for number, line in self._lines:
            if not line.strip():
                continue
            if not line.startswith("#"):
                raise GenocnnError(f"{self.path}: line {number}: no VCF header before the first record "
                                   "(a VCF starts with ##fileformat=VCFv4.x and a #CHROM line)")
            header.append(line)
            if line.startswith("#CHROM"):
                if not header[0].startswith("##fileformat=VCF"):
                    header.insert(0, "##fileformat=VCFv4.2")
                return header
        raise GenocnnError(f"{self.path}: line {len(header) + 1}: no #CHROM header line; not a VCF file")

    def __enter__(self) -> VcfReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the writer (and its output file, if any)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __iter__(self) -> Iterator[Record]:
        for number, line in self._lines:
            if not line.strip():
                continue
            if not self._keep_samples:
                line = "\t".join(line.split("\t", 8)[:8])
            try:
                variant = self._writer.variant_from_string(line)
            except Exception:  # htslib: "error parsing: <line> (vcf_parse returned -2)"
                columns = len(line.split("\t"))
                raise GenocnnError(f"{self.path}: line {number}: malformed VCF record ({columns} tab-separated "
                                   f"columns: {line[:50]!r})") from None
            qual = (line.split("\t", 6) + ["."] * 6)[5]
            if not is_qual(qual):
                raise GenocnnError(f"{self.path}: line {number}: QUAL {qual[:20]!r} is not a number nor '.'")
            self.records += 1
            yield Record(number, variant, self._alleles(variant, number))

    def _alleles(self, variant, line: int) -> list[Allele]:
        ref, where = variant.REF, f"{self.path}: line {line}"
        if variant.POS < 1:
            raise GenocnnError(f"{where}: position {variant.POS}; VCF positions start at 1")
        if not _BASES.match(ref):
            raise GenocnnError(f"{where}: REF {ref[:20]!r} is not a DNA sequence (A, C, G, T, N)")
        alleles = []
        alts = variant.ALT or ["."]
        for k, alt in enumerate(alts):
            if is_symbolic(alt):
                self.skipped["missing ALT" if alt in (".", "") else "symbolic ALT"] += 1
                continue
            if not _BASES.match(alt):
                raise GenocnnError(f"{where}: ALT {alt[:20]!r} is not a DNA sequence nor a symbolic allele")
            alleles.append(Allele(variant.CHROM, variant.POS, variant.ID or ".", ref, alt, line, k))
        return alleles

    def write(self, record: Record, info: dict[str, list[float | None]] | None = None) -> None:
        """Write ``record`` to ``out``, with ``info[key]`` (one value per ALT, None for missing) set."""
        for key, values in (info or {}).items():
            record.variant.INFO[key] = ",".join("." if v is None else f"{v:.6g}" for v in values)
        try:
            self._writer.write_record(record.variant)
        except Exception as exc:  # htslib refuses records with tags the header does not declare
            raise GenocnnError(f"{self.path}: line {record.line}: cannot be copied to `out_vcf`: its INFO, FILTER "
                               f"or FORMAT tags are not all declared in the header ({exc})") from None
