"""Write files atomically: to a temporary name beside the target, then rename.

A crash or a user error mid-way leaves no half-written output behind. A full
disk (or quota, or file size limit) is one :class:`~genocnn.errors.GenocnnError`
naming the file, e.g. "no space left on device writing run/last.pt"; the file
it would have replaced is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import GenocnnError


#: Write errors that mean the disk (or the user's share of it) is full.
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _full(exc: OSError, target: Path) -> GenocnnError:
    return GenocnnError(f"{os.strerror(exc.errno).lower()} writing {target}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_parents(target: Path) -> None:
    for parent in (target.parent, *target.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise GenocnnError(f"{parent}: exists and is not a directory; cannot write {target}")
            break


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    Parameters
    ----------
    path : str or PathLike
        The final file name. Its parent folder is created if missing.

    Yields
    ------
    pathlib.Path
        Where to write. Removed if the block raises.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "out.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "out.txt").read_text()
    'hello'
    """
    target = Path(path)
    if target.is_dir():
        raise GenocnnError(f"{target}: is a directory; give a file name to write")
    _check_parents(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        if exc.errno in FULL:
            raise _full(exc, target) from None
        raise GenocnnError(f"{target}: cannot write ({exc.strerror})") from None
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the usual mode
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno in FULL:
            raise _full(exc, target) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator:
    """Open a temporary file for writing; it replaces ``path`` only if the block succeeds.

    A text-mode ``path`` ending in ``.gz`` is written gzip-compressed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_open(d / "a.tsv") as fh:
    ...     _ = fh.write("x\\n")
    >>> (d / "a.tsv").read_text()
    'x\\n'
    """
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz") and "b" not in mode:
            # no file name and time in the gzip header: the same table gives the same bytes
            with open(tmp, "wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as packed, \
                    io.TextIOWrapper(packed, **kwargs) as fh:
                yield fh
        else:
            with open(tmp, mode, **kwargs) as fh:
                yield fh


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; its contents appear in ``path`` only if the block succeeds.

    A new or empty ``path`` is replaced by renaming the folder. Into a folder
    that already holds files, each entry written replaces its namesake (a
    sub-folder as a whole) and other files are left alone. If the block
    raises (an error, a KeyboardInterrupt from Ctrl-C or SIGTERM) the
    temporary folder is removed and ``path`` is as it was. Error messages
    name the files under ``path``, not under the temporary folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_dir(d / "out") as tmp:
    ...     _ = (tmp / "a.txt").write_text("a")
    >>> sorted(p.name for p in d.iterdir()), (d / "out" / "a.txt").read_text()
    (['out'], 'a')
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise GenocnnError(f"{target}: exists and is not a directory")
    _check_parents(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise GenocnnError(f"{target}: cannot write ({exc.strerror})") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give outputs the usual mode
        try:
            yield tmp
        except GenocnnError as exc:
            raise GenocnnError(str(exc).replace(str(tmp), str(target))) from None
        _move_into(tmp, target)
    except OSError as exc:
        if exc.errno in FULL:
            raise _full(exc, target) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` onto ``target`` when that is new or empty, else move its entries in one by one."""
    if not target.exists() or not any(target.iterdir()):
        os.replace(tmp, target)
        return
    for entry in sorted(tmp.iterdir()):
        dest = target / entry.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(entry, dest)


def check_outputs(outputs: dict[str, str | os.PathLike | None], inputs: dict[str, str | os.PathLike | None],
                  run: str | os.PathLike | None = None) -> None:
    """Refuse outputs that would overwrite an input, a file of the run directory, or each other, and
    directories given where a file is written.

    Parameters
    ----------
    outputs, inputs : dict of flag -> path or None
        The command's output files and input files by the flag that names
        them (None: not given). Paths are compared after resolving links.
    run : path, optional
        Run directory whose files (:data:`~genocnn.rundir.RUN_FILES`) no output may replace.

    Raises
    ------
    GenocnnError
        Naming both flags, e.g. "--out in.fa is also the input (SEQS)".

    Examples
    --------
    >>> check_outputs({"--out": "a.tsv"}, {"SEQS": "a.fa"})
    >>> check_outputs({"--out": "a.fa"}, {"SEQS": "a.fa"})
    Traceback (most recent call last):
    ...
    genocnn.errors.GenocnnError: --out a.fa is also the input (SEQS); choose another name
    >>> check_outputs({"--out": "results/"}, {"SEQS": "a.fa"})
    Traceback (most recent call last):
    ...
    genocnn.errors.GenocnnError: --out results/ is a directory; give a file name
    """
    from .rundir import LOCK_FILE, RUN_FILES

    def key(path) -> Path:
        return Path(path).expanduser().resolve()

    protected = {key(p): flag for flag, p in inputs.items() if p is not None}
    if run is not None:
        protected |= {key(Path(run) / name): f"a file of the run directory {run}" for name in (*RUN_FILES, LOCK_FILE)}
    seen: dict[Path, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        if str(path) in ("", "-"):
            raise GenocnnError(f"{flag}: give a file name (got {str(path)!r})")
        if str(path).endswith(("/", os.sep)) or Path(path).is_dir():
            raise GenocnnError(f"{flag} {path} is a directory; give a file name")
        target = key(path)
        if target in protected:
            what = protected[target]
            what = what if what.startswith("a file of") else f"the input ({what})"
            raise GenocnnError(f"{flag} {path} is also {what}; choose another name")
        if target in seen:
            raise GenocnnError(f"{flag} {path} is also given as {seen[target]}; give each output its own name")
        seen[target] = flag
