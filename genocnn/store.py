"""An on-disk store of encoded sequences: built once, streaming, then memory-mapped.

A store is a folder::

    codes.npy      (N, L) uint8   1-byte codes (:func:`genocnn.encode.encode_codes`), one row per sequence
    labels.npy     (N, T) int8    1 bound, 0 unbound, -1 unknown
    ids.npy        (N,)   bytes   the sequence ids (UTF-8, fixed width)
    manifest.json                 version, N, L, tasks, the options and the sources (path, size, mtime)

The format is NumPy's own ``.npy``, opened with ``np.load(mmap_mode="r")``:
no new dependency, readable by any NumPy, zero-copy random access to any row
(a batch is a gather of rows from the page cache), and the operating system
decides what stays in memory. zarr or HDF5 would add chunked compression,
which DNA codes barely need (2 bits of information in a byte) and which
would cost a decompression per random row.

:func:`build_store` reads FASTA + labels record by record: the codes go to
disk as they are read, so memory holds the labels (1 byte a cell), one row
index per sequence and a block of records, never the sequences. It builds
into a temporary folder beside ``out`` and renames it into place, so a
failed build leaves nothing. ``pos``/``neg`` and ``bed``/``genome`` data are
loaded in memory (:mod:`genocnn.data`) and written the same way.
:func:`store_for` reuses a store whose manifest matches the sources and
options, and rebuilds it otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .data import Dataset, choose_length, load_bed, load_pos_neg, read_label_codes
from .encode import PAD, fit_length
from .encode import _CODE_OF_BYTE  # noqa: PLC2701 (the one byte -> code table)
from .errors import GenocnnError
from .fasta import read_fasta

__all__ = ["STORE_VERSION", "StoredIds", "build_store", "is_store", "open_store", "store_for", "store_sources"]

STORE_VERSION = 1
MANIFEST = "manifest.json"
#: Records encoded and written at a time.
_BLOCK = 4096
#: Bound rows of a store that ``genocnn motifs`` reads (evenly spaced when there are more).
MOTIF_ROWS = 20_000
#: Header bytes reserved at the start of codes.npy (npy 1.0, padded to 64; room for any shape).
_HEADER = 128


class StoredIds(Sequence):
    """The ids of a store, read from ``ids.npy`` on demand (a list of a million ids costs ~70 MB)."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [v.decode() for v in self.raw[i]]
        return self.raw[i].decode()


def store_sources(**files) -> list[dict]:
    """Path, size and modification time of each given source file (by option name), as a manifest records them."""
    out = []
    for option, path in files.items():
        if path is None:
            continue
        st = os.stat(path)
        out.append({"option": option, "path": os.path.abspath(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def open_store(path: str | os.PathLike) -> Dataset:
    """Open a store as a :class:`~genocnn.data.Dataset` whose codes and labels are memory-mapped (read-only)."""
    path = Path(path)
    manifest = _manifest(path)
    if manifest is None:
        raise GenocnnError(f"{path}: not a genocnn store (no readable {MANIFEST}; build one with genocnn prepare)")
    if manifest.get("version") != STORE_VERSION:
        raise GenocnnError(f"{path}: store version {manifest.get('version')}, this genocnn reads version "
                           f"{STORE_VERSION}; build it again with genocnn prepare")
    try:
        codes = np.load(path / "codes.npy", mmap_mode="r")
        labels = np.load(path / "labels.npy", mmap_mode="r")
        ids = np.load(path / "ids.npy", mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise GenocnnError(f"{path}: unreadable store ({exc})") from None
    n, length = manifest["n"], manifest["length"]
    if codes.shape != (n, length) or labels.shape != (n, len(manifest["tasks"])) or ids.shape != (n,):
        raise GenocnnError(f"{path}: store files do not match its {MANIFEST} (an interrupted copy?)")
    return Dataset(StoredIds(ids), codes, labels, list(manifest["tasks"]))


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding a store's manifest (what ``predict`` and ``motifs`` accept for FASTA)."""
    return (Path(path) / MANIFEST).is_file()


def _manifest(path: Path) -> dict | None:
    try:
        meta = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def store_for(
    out: str | os.PathLike, *, fasta, labels, length: int | None = None, max_length: int = 1000,
) -> Dataset:
    """The store at ``out`` for these FASTA + labels files: reused when its manifest matches, else (re)built."""
    out = Path(out)
    options = {"length": length, "max_length": max_length}
    meta = _manifest(out)
    wanted = store_sources(fasta=fasta, labels=labels)
    if not (meta and meta.get("version") == STORE_VERSION and meta.get("sources") == wanted
            and meta.get("options") == options):
        build_store(out, fasta=fasta, labels=labels, length=length, max_length=max_length)
    return open_store(out)


def build_store(
    out: str | os.PathLike, *, fasta=None, labels=None, pos=None, neg=None, bed=None, genome=None,
    length: int | None = None, max_length: int = 1000, negatives: str = "gc", negatives_per_positive: int = 1,
    seed: int = 0, skip_bad: bool = False,
) -> Path:
    """Build a store at ``out`` (replacing one there) from ``fasta`` + ``labels``, ``pos`` [+ ``neg``] or ``bed`` + ``genome``.

    Parameters
    ----------
    out : path
        The store folder; built in a temporary folder beside it, then renamed.
    length, max_length : int
        As for training: ``length`` if given, else the longest sequence up to ``max_length``.
    negatives, negatives_per_positive, seed
        For ``pos`` without ``neg`` and for ``bed`` data, as :mod:`genocnn.data`.
    skip_bad : bool, default False
        For ``bed`` data: drop bad BED lines (counted in a warning) instead of
        raising, as :func:`genocnn.data.load_bed`.

    Returns
    -------
    pathlib.Path
        ``out``.

    Warns
    -----
    UserWarning
        For ``bed`` data, one per note of :func:`genocnn.data.load_bed`
        (skipped lines, padded windows, intervals past a chromosome end).

    Raises
    ------
    GenocnnError
        Bad inputs (as the loaders of :mod:`genocnn.data` say), a wrong
        combination of sources, or ``out`` being a file or a folder that is
        not a store.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and _manifest(out) is None)):
        raise GenocnnError(f"{out}: exists and is not a genocnn store; choose another `out`")
    given = {k for k, v in dict(fasta=fasta, labels=labels, pos=pos, neg=neg, bed=bed, genome=genome).items()
             if v is not None}
    kinds = [{"fasta", "labels"}, {"pos", "neg"}, {"bed", "genome"}]
    if not given or sum(bool(given & k) for k in kinds) != 1:
        raise GenocnnError("give `fasta` and `labels`, `pos` (and optionally `neg`), or `bed` and `genome`")
    if given & {"fasta", "labels"} and given != {"fasta", "labels"}:
        raise GenocnnError("`fasta` and `labels` go together")
    if given & {"bed", "genome"} and given != {"bed", "genome"}:
        raise GenocnnError("`bed` and `genome` go together")
    if "neg" in given and "pos" not in given:
        raise GenocnnError("`neg` needs `pos`")
    if skip_bad and "bed" not in given:
        raise GenocnnError("`skip_bad` applies to `bed`/`genome` data only")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
    except OSError as exc:
        raise GenocnnError(f"{out}: cannot create the store ({exc.strerror})") from None
    options = {"length": length, "max_length": max_length}
    try:
        if fasta is not None:
            n, L, tasks = _build_labelled(tmp, fasta, labels, length, max_length)
        else:
            if pos is not None:
                data = load_pos_neg(pos, neg, length, max_length, negatives_per_positive, seed)
            else:
                data = _bed_data(bed, genome, length, max_length, negatives, negatives_per_positive, seed, skip_bad)
                options.update(skip_bad=skip_bad)
            made = negatives if pos is None else ("file" if neg is not None else "shuffle")  # what was used
            options.update(negatives=made, negatives_per_positive=negatives_per_positive, seed=seed)
            _write_dataset(tmp, data)
            n, L, tasks = len(data), data.length, data.tasks
        sources = store_sources(fasta=fasta, labels=labels, pos=pos, neg=neg, bed=bed, genome=genome)
        manifest = {"version": STORE_VERSION, "n": n, "length": L, "tasks": tasks, "options": options,
                    "sources": sources}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        _replace_dir(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == 28:
            raise GenocnnError(f"no space left on device writing {out}") from None
        raise GenocnnError(f"{out}: cannot write the store ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _bed_data(bed, genome, length, max_length, negatives, negatives_per_positive, seed, skip_bad) -> Dataset:
    """:func:`~genocnn.data.load_bed`'s Dataset; its notes become warnings (shown by the caller of build_store)."""
    loaded = load_bed(bed, genome, length, max_length, negatives, negatives_per_positive, seed, skip_bad)
    for note in loaded.notes:
        warnings.warn(note, UserWarning, stacklevel=3)
    return loaded.data


def _replace_dir(new: Path, out: Path) -> None:
    """Move the finished folder ``new`` to ``out``; an old store there is moved aside first, then deleted."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        os.rename(out, old)
    os.rename(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _npy_header(fh, shape: tuple, dtype) -> None:
    """Write a version 1.0 ``.npy`` header of exactly :data:`_HEADER` bytes at the file's start."""
    fh.seek(0)
    np.lib.format.write_array_header_1_0(
        fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})
    if fh.tell() != _HEADER:
        raise AssertionError(f"npy header of {fh.tell()} bytes, expected {_HEADER}")


def _write_dataset(folder: Path, data: Dataset) -> None:
    np.save(folder / "codes.npy", np.ascontiguousarray(data.codes))
    np.save(folder / "labels.npy", np.ascontiguousarray(data.labels, dtype=np.int8))
    np.save(folder / "ids.npy", np.array([i.encode() for i in data.ids], dtype=bytes))


def _blocks(fasta) -> Iterator[list[tuple[str, str]]]:
    block = []
    for record in read_fasta(fasta, check_duplicates=False):  # repeats are found through the label rows
        block.append(record)
        if len(block) == _BLOCK:
            yield block
            block = []
    if block:
        yield block


def _build_labelled(folder: Path, fasta, labels, length: int | None, max_length: int) -> tuple[int, int, list]:
    """Stream ``fasta`` into ``folder`` with the rows of ``labels``; returns (N, L, tasks)."""
    table = read_label_codes(labels)
    index = pd.Index(table.ids)
    record_of_row = np.zeros(len(table.ids), dtype=np.int64)  # 1-based record number, 0 = not seen
    rows, lengths, unlabelled, n_unlabelled, number = [], [], [], 0, 0
    flat_path, ids_path = folder / "flat.u8", folder / "ids.txt"
    with open(flat_path, "wb") as flat, open(ids_path, "w", encoding="utf-8") as id_file:
        flat.write(b"\0" * _HEADER)
        for block in _blocks(fasta):
            names = [name for name, _ in block]
            found = index.get_indexer(names)
            missing = found < 0
            if missing.any():
                n_unlabelled += int(missing.sum())
                unlabelled += [n for n, m in zip(names, missing) if m][: 3 - len(unlabelled)]
            numbers = np.arange(number + 1, number + len(block) + 1)
            number += len(block)
            if n_unlabelled:
                continue  # only counted from here on
            seen = record_of_row[found]
            if seen.any() or len(set(found.tolist())) < len(found):
                _refuse_repeat(fasta, names, found, numbers, record_of_row)
            record_of_row[found] = numbers
            rows.append(found)
            lengths.append(np.fromiter((len(s) for _, s in block), dtype=np.int64, count=len(block)))
            flat.write("".join(s for _, s in block).encode("ascii", errors="replace").translate(_CODE_OF_BYTE))
            id_file.write("".join(n + "\n" for n in names))
    absent = np.flatnonzero(record_of_row == 0)
    if len(absent) and not n_unlabelled:
        shown = ", ".join(repr(table.ids[i]) for i in absent[:3])
        raise GenocnnError(f"{labels}: {len(absent)} id(s) not in {fasta}, e.g. {shown}")
    if n_unlabelled:
        raise GenocnnError(f"{fasta}: {n_unlabelled} record(s) without a row in {labels}, "
                           f"e.g. {', '.join(map(repr, unlabelled))}")
    rows_all, lengths_all = np.concatenate(rows), np.concatenate(lengths)
    del index
    L = choose_length(lengths_all.tolist(), length, max_length)
    n = len(rows_all)
    _fit_codes(folder, flat_path, lengths_all, L)
    with open(folder / "labels.npy", "wb") as fh:
        _npy_header(fh, (n, len(table.tasks)), np.int8)
        for start in range(0, n, 1 << 16):
            fh.write(np.ascontiguousarray(table.labels[rows_all[start : start + (1 << 16)]]).tobytes())
    _ids_npy(ids_path, folder / "ids.npy", n)
    return n, L, table.tasks


def _refuse_repeat(fasta, names, found, numbers, record_of_row) -> None:
    """Raise for the first record whose id an earlier record had (as :func:`~genocnn.fasta.read_fasta` would)."""
    first_in_block: dict[int, int] = {}
    for name, row, number in zip(names, found.tolist(), numbers.tolist()):
        first = int(record_of_row[row]) or first_in_block.get(row)
        if first:
            raise GenocnnError(f"{fasta}: duplicate record id {name!r}: records {first} and {number} "
                               "(ids must be unique: predictions and labels are matched by id)")
        first_in_block[row] = number


def _fit_codes(folder: Path, flat_path: Path, lengths: np.ndarray, L: int) -> None:
    """Turn the flat codes (every record end to end) into codes.npy of shape (N, L)."""
    n = len(lengths)
    if (lengths == L).all():  # the flat file is already the matrix: write its header and rename it
        with open(flat_path, "r+b") as fh:
            _npy_header(fh, (n, L), np.uint8)
        os.rename(flat_path, folder / "codes.npy")
        return
    ends = np.cumsum(lengths)
    with open(flat_path, "rb") as src, open(folder / "codes.npy", "wb") as dst:
        _npy_header(dst, (n, L), np.uint8)
        for start in range(0, n, _BLOCK):
            stop = min(start + _BLOCK, n)
            lo, hi = int(ends[start] - lengths[start]), int(ends[stop - 1])
            src.seek(_HEADER + lo)
            chunk = src.read(hi - lo)
            out = np.zeros((stop - start, L), dtype=np.uint8)  # code 0 = the pad
            for j, i in enumerate(range(start, stop)):
                a = int(ends[i] - lengths[i]) - lo
                row = chunk[a : a + int(lengths[i])]
                fitted = fit_length(row.decode("latin-1"), L)  # codes as characters: crop/pad by the one rule
                out[j] = np.frombuffer(fitted.replace(PAD, "\0").encode("latin-1"), dtype=np.uint8)
            dst.write(out.tobytes())
    flat_path.unlink()


def _ids_npy(text: Path, target: Path, n: int) -> None:
    """ids.txt (one id a line) -> ids.npy (fixed-width UTF-8 bytes), in blocks."""
    width = 1
    with open(text, encoding="utf-8") as fh:
        for line in fh:
            width = max(width, len(line.rstrip("\n").encode()))
    with open(text, encoding="utf-8") as src, open(target, "wb") as dst:
        _npy_header(dst, (n,), f"S{width}")
        block = []
        for line in src:
            block.append(line.rstrip("\n").encode())
            if len(block) == 1 << 16:
                dst.write(np.array(block, dtype=f"S{width}").tobytes())
                block = []
        if block:
            dst.write(np.array(block, dtype=f"S{width}").tobytes())
    text.unlink()
