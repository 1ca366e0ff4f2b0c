"""The run directory of ``genocnn train``: who may write it, what a new run may replace, what a resume reuses.

A run directory holds the files of :data:`RUN_FILES` and a lock file,
:data:`LOCK_FILE`, held (``fcntl.flock`` through the ``filelock`` package)
by the one process that writes the run. The kernel drops the lock when that
process dies, so the lock file a killed run leaves behind does not block the
next writer. Temporary files of :mod:`genocnn.atomic` that a killed process
left (``.last.pt.<random>.tmp``) are removed by the next writer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .errors import GenocnnError

#: The files ``genocnn train`` writes, in the order a run writes them.
RUN_FILES = ("run.json", "last.pt", "history.tsv", "model.pt", "config.yaml", "metrics.json")
LOCK_FILE = ".genocnn.lock"
#: Input options of a run, by their :func:`~genocnn.training.train` parameter names.
INPUT_OPTIONS = ("pos", "neg", "fasta", "labels", "bed", "genome", "store")


def is_scratch(name: str) -> bool:
    """The lock file, or a temporary file of an atomic write of a run file.

    Examples
    --------
    >>> is_scratch(".genocnn.lock"), is_scratch(".last.pt.k2j4x.tmp"), is_scratch("notes.txt")
    (True, True, False)
    """
    return name == LOCK_FILE or (name.endswith(".tmp") and any(name.startswith(f".{f}.") for f in RUN_FILES))


def check_out(run_dir: Path, resume: bool = False, force: bool = False, probe: bool = True) -> None:
    """Refuse, without writing anything, a run directory that a new run must not write.

    A folder that exists and is not empty (the lock and stale temporary files
    aside) is refused unless ``force`` (overwrite its run) or ``resume``
    (continue it); a folder another process is writing is refused always
    (``probe``: try its lock; False when this process holds it).
    """
    if resume and force:
        raise GenocnnError("give `resume` or `force`, not both")
    if run_dir.exists() and not run_dir.is_dir():
        raise GenocnnError(f"{run_dir}: exists and is not a directory")
    if probe and (run_dir / LOCK_FILE).exists():
        RunLock(run_dir).acquire().release()  # refuses while another process holds it
    if resume or force or not run_dir.is_dir():
        return
    entries = sorted(n for n in os.listdir(run_dir) if not is_scratch(n))
    if entries:
        held = [n for n in RUN_FILES if n in entries]
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        what = f"already holds a run ({', '.join(held)})" if held else f"is not empty ({len(entries)} entries: {shown})"
        raise GenocnnError(f"{run_dir}: {what}; give `force` to overwrite it or `resume` to continue it")


class RunLock:
    """The lock on a run directory: one writing process at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._lock = FileLock(str(self.path), timeout=0)

    def acquire(self) -> RunLock:
        try:
            self._lock.acquire()
        except Timeout:
            raise GenocnnError(f"{self.run_dir}: another genocnn process is writing this run (it holds "
                               f"{self.path}); wait for it to end or choose another `out`") from None
        return self

    def release(self) -> None:
        self._lock.release()


def claim(run_dir: Path, resume: bool = False, force: bool = False) -> RunLock:
    """Create and lock the run directory; clear what a killed run left (and, with ``force``, the old run).

    Returns the held :class:`RunLock`; release it when the run is written.
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenocnnError(f"{run_dir}: cannot create the run directory ({exc.strerror})") from None
    lock = RunLock(run_dir).acquire()
    try:
        check_out(run_dir, resume, force, probe=False)  # again, now that no one else can write it
        stale = [n for n in os.listdir(run_dir) if is_scratch(n) and n != LOCK_FILE]
        for name in stale + (list(RUN_FILES) if force else []):
            (run_dir / name).unlink(missing_ok=True)
    except BaseException:
        lock.release()
        raise
    return lock


def recorded_run(run_dir: Path) -> dict | None:
    """The ``run.json`` of a run directory, or None when it has none."""
    path = run_dir / "run.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GenocnnError(f"{path}: unreadable run record ({exc})") from None
    if not isinstance(meta, dict) or "config" not in meta:
        raise GenocnnError(f"{path}: not a genocnn run record")
    return meta


def recorded_inputs(meta: dict, where: Path) -> tuple[dict, dict]:
    """The input files (by option) and data options a run was started with, from its ``run.json``."""
    records = meta.get("inputs", [])
    if not records or any("option" not in r for r in records):
        raise GenocnnError(f"{where}: the run does not record which option named each input file; "
                           "give the data options it was started with")
    inputs = dict.fromkeys(INPUT_OPTIONS)
    inputs.update({r["option"]: r["path"] for r in records})
    options = {"negatives": None, "valid_chroms": [], "test_chroms": [], "skip_bad": False}
    options.update(meta.get("data_options", {}))
    return inputs, options


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as ``{"training.lr": 0.001, "model.conv.0.filters": 8, ...}``."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat = {}
    for key, item in items:
        flat.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat or {prefix: value}


def check_resumed_config(before: dict, after: dict, epochs_done: int, where: Path) -> None:
    """Refuse a resume whose config differs from the run's, naming the first key that differs.

    Only ``training.epochs`` may change, and only upwards (not with the
    ``cosine`` schedule, which spans the epochs).

    Examples
    --------
    >>> check_resumed_config({"training": {"lr": 0.001}}, {"training": {"lr": 0.01}}, 3, Path("last.pt"))
    Traceback (most recent call last):
    ...
    genocnn.errors.GenocnnError: last.pt: training.lr differs: 0.001 in the run, 0.01 given; resume with the run's config (only `epochs` may be raised)
    """
    a, b = _flat(before), _flat(after)
    for key in sorted(a.keys() | b.keys()):
        old, new = a.get(key, "nothing"), b.get(key, "nothing")
        if old == new:
            continue
        if key == "training.epochs" and isinstance(new, int) and new >= old and new > epochs_done:
            if a.get("training.scheduler") != "cosine":
                continue
            raise GenocnnError(f"{where}: `epochs` cannot change on resume with training.scheduler=cosine "
                               "(the schedule spans the epochs)")
        raise GenocnnError(f"{where}: {key} differs: {old} in the run, {new} given; "
                           "resume with the run's config (only `epochs` may be raised)")


def _option(value) -> str:
    """A data option's value as the command line gives it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(value) or "none"
    return "not given" if value is None else str(value)


def _described(record: dict | None) -> str:
    if record is None:
        return "nothing"
    digest = (record.get("sha256") or "")[:12]
    return f"{record['path']} ({record['bytes']} bytes{', sha256 ' + digest if digest else ''})"


def check_recorded_inputs(before: dict, meta: dict, where: Path) -> None:
    """On resume, refuse input files or data options that differ from ``before`` (the run's ``run.json``).

    The message names the first option that differs and both values.
    """
    started = before.get("data_options", meta.get("data_options", {}))  # runs of 0.1.0 recorded none
    for key, value in meta.get("data_options", {}).items():
        if started.get(key) != value:
            raise GenocnnError(f"{where}: `{key}` differs: {_option(started.get(key))} in the run, "
                               f"{_option(value)} given; resume with the run's options (or give none of them)")
    old, new = before.get("inputs", []), meta["inputs"]
    if all("option" in r for r in old):
        old_by, new_by = {r["option"]: r for r in old}, {r["option"]: r for r in new}
        for key in INPUT_OPTIONS:
            a, b = old_by.get(key), new_by.get(key)
            if (a is None) != (b is None) or (a and (a["bytes"], a["sha256"]) != (b["bytes"], b["sha256"])):
                raise GenocnnError(f"{where}: `{key}` differs: {_described(a)} in the run, {_described(b)} given; "
                                   "resume with the run's input files (or give none of them)")
    elif [(f["bytes"], f["sha256"]) for f in old] != [(f["bytes"], f["sha256"]) for f in new]:
        raise GenocnnError(f"{where}: the input files differ from those the run was started with")
