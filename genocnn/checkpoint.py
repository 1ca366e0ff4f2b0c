"""Run directory files: ``model.pt`` (rebuildable, weights_only-safe), ``last.pt`` (resumable
training state) and input provenance for ``run.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import zipfile
from pathlib import Path

import torch

from . import __version__
from .atomic import atomic_open
from .config import Config, config_from_dict
from .devices import resolve_device
from .errors import GenocnnError
from .models import ConvNet, build_model

CHECKPOINT_FORMAT = "genocnn-checkpoint-v1"
LAST_FORMAT = "genocnn-last-v1"


def save_checkpoint(model: ConvNet, config: Config, tasks: list[str], path: str | os.PathLike) -> None:
    """Write weights and rebuild information as plain tensors/containers (weights_only-safe)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "genocnn_version": __version__,
        "config": config.to_dict(),
        "tasks": list(tasks),
        "length": int(model.length),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "calibration": model.calibration,
    }
    with atomic_open(path, "wb") as fh:  # a Python handle: a full disk raises OSError, not RuntimeError
        torch.save(state, fh)


def load_model(run_dir: str | os.PathLike, device: str | torch.device | None = "cpu") -> ConvNet:
    """Rebuild the trained network of a run directory (or a ``model.pt`` path).

    The checkpoint is read with ``torch.load(weights_only=True)``: a file that
    would execute code when unpickled is refused without running it.

    Returns
    -------
    ConvNet
        In eval mode, with attributes ``tasks`` (list of str), ``length`` (int)
        and ``run_config`` (:class:`Config`).
    """
    path = Path(run_dir)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file() and (path.parent / "last.pt").is_file():
        raise GenocnnError(f"{path.parent}: training did not finish (last.pt but no model.pt); "
                           f"finish it with: genocnn train --resume {path.parent}")
    if not path.is_file():
        raise GenocnnError(f"{run_dir}: not a genocnn run directory (no model.pt)")
    if not zipfile.is_zipfile(path):
        raise GenocnnError(f"{path}: not a readable genocnn checkpoint (not a torch zip file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise GenocnnError(
            f"{path}: refused: the checkpoint holds objects other than plain tensors "
            "(it could run code when loaded)"
        ) from None
    except Exception as exc:  # corrupt zip, truncated file, not a torch file
        raise GenocnnError(f"{path}: not a readable genocnn checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise GenocnnError(f"{path}: not a genocnn checkpoint (format {CHECKPOINT_FORMAT} expected)")
    config = config_from_dict(state["config"], where=str(path))
    model = build_model(config.model, len(state["tasks"]), int(state["length"]), list(state["tasks"]), config)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise GenocnnError(f"{path}: weights do not match the stored config: {first}") from None
    model.calibration = state.get("calibration")
    return model.to(resolve_device(device)).eval()


def save_last(path, model, optimiser, scaler, scheduler, generator, state, config: Config, tasks) -> None:
    """Write the resumable training state (plain tensors and containers only)."""
    payload = {
        "format": LAST_FORMAT,
        "config": config.to_dict(),
        "tasks": list(tasks),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimiser": optimiser.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "torch_rng": torch.get_rng_state(),
        "generator": generator.get_state(),
        "progress": dataclasses.asdict(state),
    }
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)


def load_last(path: Path) -> dict:
    """Read ``last.pt`` (weights_only) for ``--resume``."""
    if not path.is_file():
        raise GenocnnError(f"{path.parent}: nothing to resume (no last.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GenocnnError(f"{path}: unreadable resume state ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != LAST_FORMAT:
        raise GenocnnError(f"{path}: not a genocnn resume state")
    return state


#: Files larger than this are recorded by size and mtime, not hashed (genomes).
HASH_LIMIT = 100 * 2**20


def file_record(path: str | os.PathLike) -> dict:
    """Path, size and SHA-256 of an input file, for the run's provenance.

    A file over :data:`HASH_LIMIT` bytes (a genome) gets ``sha256: None`` and
    its ``mtime`` instead: hashing gigabytes would be slow.
    """
    size = os.path.getsize(path)
    if size > HASH_LIMIT:
        return {"path": str(path), "bytes": size, "sha256": None, "mtime": os.path.getmtime(path)}
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "bytes": os.path.getsize(path), "sha256": digest.hexdigest()}
