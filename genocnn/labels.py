"""Labels TSV: an id column, then one 0/1/NA column per task, read into int8 codes (-1 unknown).

Read a bounded number of cells at a time (:func:`read_label_codes`); the
header's task names are checked before pandas would rename them.
"""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from .errors import GenocnnError
from .fasta import open_text

__all__ = ["RESERVED_TASKS", "LabelTable", "read_label_codes", "read_labels"]

#: Label spellings (lower-cased) and their values: 0/1, pandas' floats, R's logicals.
_LABEL_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1, "": -1, "na": -1, "nan": -1}
#: Exact spellings looked up before stripping and lower-casing (the common case, fast).
_EXACT = {**_LABEL_VALUES, "FALSE": 0, "TRUE": 1, "False": 0, "True": 1, "NA": -1, "NaN": -1}
#: Label cells parsed at a time (bounds the strings pandas holds).
_CELLS = 2_000_000


class LabelTable(NamedTuple):
    """A labels TSV as compact arrays.

    Attributes
    ----------
    ids : list of str, length N
        The first column, in file order.
    tasks : list of str, length T
    labels : numpy.ndarray, shape (N, T), int8
        1, 0, or -1 for unknown.
    """

    ids: list[str]
    tasks: list[str]
    labels: np.ndarray


def _label_block(chunk: pd.DataFrame, first_line: int) -> tuple[np.ndarray, tuple | None, int]:
    """int8 codes of one chunk's task columns, the first bad cell (line, column, value) or None, and the bad count."""
    cells = chunk.iloc[:, 1:]
    flat = pd.Series(cells.to_numpy().ravel())
    coded = flat.map(_EXACT)
    miss = coded.isna()
    if miss.any():
        coded[miss] = flat[miss].str.strip().str.lower().map(_LABEL_VALUES)
    bad = coded.isna().to_numpy()
    block = coded.fillna(-1).to_numpy(dtype=np.int8).reshape(cells.shape)
    if not bad.any():
        return block, None, 0
    row, col = divmod(int(np.flatnonzero(bad)[0]), cells.shape[1])
    return block, (first_line + row, cells.columns[col], cells.iat[row, col]), int(bad.sum())


def read_label_codes(path: str | os.PathLike) -> LabelTable:
    """Read a labels TSV into int8 codes, a bounded number of cells at a time.

    Values are 0, 1, or unknown (empty / ``NA``, code -1). ``0.0`` / ``1.0``
    (as pandas writes them) and ``FALSE`` / ``TRUE`` in any case (as R
    writes logicals) are read as 0 / 1. A UTF-8 byte-order mark is dropped.
    Memory: the (N, T) int8 codes, the ids, and one chunk of strings.

    Raises
    ------
    GenocnnError
        Unreadable file, no task column, duplicate ids (naming both lines), or
        values other than 0/1/NA (naming the line, column and count).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GenocnnError(f"{path}: no such labels file")
    ids: list[str] = []
    blocks: list[np.ndarray] = []
    first_bad, n_bad, tasks, columns = None, 0, None, []
    header = _check_header(path)
    try:
        with warnings.catch_warnings(), pd.read_csv(
                path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8-sig", index_col=False,
                chunksize=1024) as reader:  # then _CELLS cells a chunk
            warnings.simplefilter("error", pd.errors.ParserWarning)  # a row longer than the header
            for chunk in reader:
                columns = columns or list(chunk.columns)
                if chunk.shape[1] < 2:
                    break
                if tasks is None:
                    tasks = [str(c) for c in chunk.columns[1:]]
                    reader.chunksize = max(1, _CELLS // len(tasks))
                block, bad, count = _label_block(chunk, len(ids) + 2)
                first_bad, n_bad = first_bad or bad, n_bad + count
                ids.extend(chunk.iloc[:, 0].tolist())
                blocks.append(block)
    except pd.errors.ParserWarning:
        raise GenocnnError(f"{path}: {_long_row(path, len(header))}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        if isinstance(exc, pd.errors.ParserError) and "Expected" in str(exc) and header:  # a long row further down
            raise GenocnnError(f"{path}: {_long_row(path, len(header))}") from None
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenocnnError(f"{path}: not a readable tab-separated labels file: {detail}") from None
    if len(columns) < 2:
        raise GenocnnError(f"{path}: needs an id column and at least one task column (tab-separated)")
    index = pd.Index(ids)
    dup = index.duplicated()
    if dup.any():
        line = int(np.flatnonzero(dup)[0])
        first = ids.index(ids[line])
        raise GenocnnError(f"{path}: line {line + 2}: duplicate id {ids[line]!r}, also on line {first + 2} "
                           f"({int(dup.sum())} duplicate ids; ids must be unique)")
    if first_bad is not None:
        line, column, value = first_bad
        raise GenocnnError(f"{path}: line {line}, column {column!r}: value {value!r} "
                           f"is not 0, 1 or NA (nor 0.0/1.0, FALSE/TRUE) ({n_bad} such values)")
    tasks = tasks or [str(c) for c in columns[1:]]
    labels = np.concatenate(blocks) if blocks else np.zeros((0, len(tasks)), dtype=np.int8)
    return LabelTable(ids, tasks, labels)


#: Column names of ``genocnn predict``'s output that a task may not take.
RESERVED_TASKS = ("id", "mostly_n")


def _check_header(path: str) -> list[str]:
    """The labels file's header fields; refuses empty, duplicate or reserved task names (before pandas renames
    them ``Unnamed: 2`` or ``A.1``)."""
    try:
        with open_text(path) as handle:
            header = handle.readline().lstrip("\ufeff").rstrip("\r\n").split("\t")
    except (UnicodeDecodeError, EOFError, OSError, ValueError):  # not text, a broken gzip ...
        return []  # read_csv says what is wrong
    tasks = [t.strip() for t in header[1:]]
    for k, task in enumerate(tasks, start=2):
        if not task:
            raise GenocnnError(f"{path}: line 1, column {k}: empty task name")
        if task in RESERVED_TASKS:
            raise GenocnnError(f"{path}: line 1, column {k}: task name {task!r} is reserved (a column of the "
                               f"predictions); rename the task")
        if tasks.index(task) + 2 != k:
            raise GenocnnError(f"{path}: line 1, columns {tasks.index(task) + 2} and {k}: duplicate task name "
                               f"{task!r}")
    return header


def _long_row(path: str, width: int) -> str:
    """Where the first row with more tab-separated fields than the header is."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").count("\t") + 1
            if number > 1 and fields > width:
                return f"line {number}: {fields} tab-separated fields, but the header (line 1) has {width}"
    return f"a row has more tab-separated fields than the header ({width})"


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read a labels TSV as a table of floats indexed by id (NaN unknown); see :func:`read_label_codes`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.tsv"
    >>> _ = p.write_text("id\\tA\\tB\\ns1\\t1.0\\tTRUE\\ns2\\t0\\tNA\\n")
    >>> read_labels(p)
          A    B
    s1  1.0  1.0
    s2  0.0  NaN
    """
    table = read_label_codes(path)
    values = np.where(table.labels < 0, np.nan, table.labels.astype(float))
    return pd.DataFrame(values, index=table.ids, columns=table.tasks)
