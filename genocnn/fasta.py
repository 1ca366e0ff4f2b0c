"""Read and write DNA FASTA files, plain or gzipped.

Reading streams record by record and checks every record; bad input raises
:class:`~genocnn.errors.GenocnnError` with the file name and the record.

Allowed sequence characters are the IUPAC DNA codes ``ACGTUNRYSWKMBDHV`` in
upper or lower case (lower case is soft-masking and is kept). Gaps (``-``,
``.``), ``*``, digits, protein-only letters and anything else are refused.
Spaces and line breaks inside a record are dropped; ``\\r\\n`` line endings,
blank lines and a UTF-8 byte-order mark are fine. Record ids must be unique
within a file (predictions and labels are matched by id): a repeated id is
refused, naming both records.
"""

from __future__ import annotations

import gzip
import itertools
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from Bio.SeqIO.FastaIO import SimpleFastaParser

from genocnn.atomic import atomic_open
from genocnn.errors import GenocnnError

__all__ = ["DNA_LETTERS", "dna_problem", "open_text", "read_fasta", "write_fasta"]

#: Characters allowed in a sequence: IUPAC DNA codes plus U, either case.
DNA_LETTERS = "ACGTUNRYSWKMBDHV" + "ACGTUNRYSWKMBDHV".lower()
_DELETE_VALID = str.maketrans("", "", DNA_LETTERS)
_PROTEIN_ONLY = set("EFILPQXZJO*efilpqxzjo")
_GZIP_MAGIC = b"\x1f\x8b"


def read_fasta(path: str | os.PathLike, check_duplicates: bool = True) -> Iterator[tuple[str, str]]:
    """Yield ``(id, sequence)`` for each record of a FASTA file.

    Parameters
    ----------
    path : str or PathLike
        A FASTA file, plain or gzip-compressed (found by its magic bytes,
        whatever its name).
    check_duplicates : bool, default True
        Refuse a repeated id (this keeps every id in memory); a caller that
        finds repeats itself, with less memory, passes False.

    Yields
    ------
    id : str
        The first whitespace-delimited word of the header.
    sequence : str
        The sequence with line breaks removed and case kept.

    Raises
    ------
    GenocnnError
        If the file is missing, a folder, empty, not FASTA (FASTQ, HTML,
        binary), a corrupt gzip, or has a record with no id, an empty
        sequence, characters outside :data:`DNA_LETTERS` or the id of an
        earlier record. Records before the bad one have already been yielded.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.fa"
    >>> _ = p.write_text(">s1 first\\nACGT\\nnnRY\\n>s2\\nTTTT\\n")
    >>> list(read_fasta(p))
    [('s1', 'ACGTnnRY'), ('s2', 'TTTT')]
    """
    path = Path(path)
    if not path.exists():
        text = str(path)
        if len(text) > 40 and set(text) <= set(DNA_LETTERS):  # a sequence passed where a file is expected
            raise GenocnnError(f"{text[:20]}...{text[-10:]} ({len(text)} letters): no such file; to give "
                               "sequences rather than a FASTA file, pass a list: [seq] or [(id, seq)]")
        raise GenocnnError(f"{path}: no such file")
    if path.is_dir():
        raise GenocnnError(f"{path}: is a directory, expected a FASTA file")
    number = 0
    seen: dict[str, int] = {}
    try:
        with open_text(path) as handle:
            first = next((line for line in handle if line.strip()), None)
            if first is None:
                raise GenocnnError(f"{path}: empty file, expected FASTA records")
            _check_first_line(path, first)
            for number, (title, seq) in enumerate(
                SimpleFastaParser(itertools.chain([first], handle)), start=1
            ):
                name, seq = _check_record(path, number, title, seq)
                first = seen.setdefault(name, number) if check_duplicates else number
                if first != number:
                    raise GenocnnError(
                        f"{path}: duplicate record id {name!r}: records {first} and {number} "
                        "(ids must be unique: predictions and labels are matched by id)"
                    )
                yield name, seq
    except UnicodeDecodeError:
        where = f" after record {number}" if number else ""
        raise GenocnnError(
            f"{path}: not a FASTA file (looks like binary data: not UTF-8 text{where})"
        ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise GenocnnError(f"{path}: truncated or corrupt gzip data ({exc})") from None
    except OSError as exc:  # unreadable: permissions, I/O error
        raise GenocnnError(f"{path}: cannot read ({exc.strerror or exc})") from None


def iter_records(fasta_or_sequences: str | os.PathLike | Iterable) -> Iterator[tuple[str, str]]:
    """A FASTA path -> its records; strings (or ASCII bytes) -> ``seq0, seq1, ...``; (id, seq) pairs pass
    through; anything else raises :class:`GenocnnError` naming the item."""
    if isinstance(fasta_or_sequences, (str, os.PathLike)):
        yield from read_fasta(fasta_or_sequences)
        return
    for i, item in enumerate(fasta_or_sequences):
        name, seq = item if isinstance(item, (tuple, list)) and len(item) == 2 else (f"seq{i}", item)
        if isinstance(seq, bytes):
            seq = seq.decode("ascii", errors="replace")
        if isinstance(seq, str):
            yield str(name), seq
        else:
            raise GenocnnError(f"sequence {i + 1}: expected a str or an (id, sequence) pair, got "
                               f"{type(item).__name__}")


def write_fasta(
    records: Iterable[tuple[str, str]], path: str | os.PathLike, width: int | None = None
) -> None:
    """Write ``(id, sequence)`` pairs to a FASTA file, atomically.

    Parameters
    ----------
    records : iterable of (str, str)
        Headers (written after ``>`` as given) and sequences.
    path : str or PathLike
        Output file; gzip-compressed if it ends with ``.gz``.
    width : int or None, default None
        Line width for sequences; ``None`` writes each on one line.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.fa.gz"
    >>> write_fasta([("x", "ACGTAC")], p, width=4)
    >>> list(read_fasta(p))
    [('x', 'ACGTAC')]
    """
    if width is not None and width < 1:
        raise GenocnnError(f"{path}: FASTA line width must be at least 1, got {width}")
    gz = str(path).endswith(".gz")
    with atomic_open(path, "wb") as raw:
        handle = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if gz else raw
        try:
            for name, seq in records:
                step = width or max(len(seq), 1)
                body = "\n".join(seq[i : i + step] for i in range(0, len(seq), step))
                handle.write(f">{name}\n{body}\n".encode())
        finally:
            if gz:
                handle.close()


def open_text(path: Path) -> TextIO:
    """Open ``path`` as UTF-8 text (a byte-order mark is dropped), through gzip when its first bytes say so."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _check_first_line(path: Path, line: str) -> None:
    """Refuse a file whose first non-blank line is not a FASTA header."""
    if line.startswith(">"):
        return
    if "\x00" in line:
        kind = " (looks like binary data)"
    elif line.startswith("@"):
        kind = " (looks like FASTQ)"
    elif line.lstrip().startswith("<"):
        kind = " (looks like HTML/XML)"
    else:
        kind = ""
    raise GenocnnError(
        f"{path}: not a FASTA file{kind}: first line {line.strip()[:40]!r} "
        "does not start with '>'"
    )


def _check_record(path: Path, number: int, title: str, seq: str) -> tuple[str, str]:
    """Return ``(id, seq)`` or raise naming the file and the record."""
    words = title.split(maxsplit=1)
    if not words:
        raise GenocnnError(f"{path}: record {number} has an empty header (no id)")
    name = words[0]
    if not seq:
        raise GenocnnError(f"{path}: record {number} ({name!r}) has an empty sequence")
    problem = dna_problem(seq)
    if problem:
        raise GenocnnError(f"{path}: record {number} ({name!r}) {problem}")
    return name, seq


def dna_problem(seq: str) -> str | None:
    """None if ``seq`` holds only :data:`DNA_LETTERS`, else what is wrong with it.

    Examples
    --------
    >>> dna_problem("ACGTnR") is None
    True
    >>> dna_problem("MKVLE")
    "has characters that are not IUPAC DNA (protein sequence?): 'E', 'L'"
    """
    bad = seq.translate(_DELETE_VALID)
    if not bad:
        return None
    chars = sorted(set(bad))
    hint = " (protein sequence?)" if _PROTEIN_ONLY.issuperset(chars) else ""
    shown = ", ".join(repr(c) for c in chars[:10])
    return f"has characters that are not IUPAC DNA{hint}: {shown}"
