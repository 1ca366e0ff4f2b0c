"""The one training loop: AdamW, early stopping on validation AUROC, checkpoints.

A run directory holds ``model.pt`` (weights plus everything needed to rebuild
the network; loadable with ``torch.load(weights_only=True)``), ``config.yaml``,
``history.tsv`` (one row per epoch) and ``metrics.json`` (test AUROC/AUPRC).
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from . import __version__
from .atomic import atomic_open, atomic_path
from .config import Config, config_from_dict, dump_config, load_config
from .data import Dataset, load_pos_neg, split_indices
from .errors import GenocnnError
from .models import ConvNet, build_model

CHECKPOINT_FORMAT = "genocnn-checkpoint-v1"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto``/None -> CUDA if available, else MPS, else CPU; also ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise GenocnnError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise GenocnnError(f"device {device!r} requested but CUDA is not available")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise GenocnnError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise GenocnnError(f"device {device!r} requested but MPS is not available")
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise GenocnnError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    return resolved


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256, device: torch.device | None = None) -> torch.Tensor:
    """Eval-mode logits for an encoded batch, computed in chunks.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L)

    Returns
    -------
    torch.Tensor, shape (N, T), float32, on the CPU
    """
    device = device or next(model.parameters()).device
    model.eval()
    out = [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, 1)


def evaluate(y: torch.Tensor, logits: torch.Tensor, tasks: list[str]) -> dict:
    """AUROC and AUPRC per task and their mean (NaN where a task has one class)."""
    per_task = {}
    for t, name in enumerate(tasks):
        truth = y[:, t].numpy()
        score = logits[:, t].numpy()
        if len(np.unique(truth)) < 2:
            per_task[name] = {"auroc": float("nan"), "auprc": float("nan")}
            continue
        per_task[name] = {
            "auroc": float(roc_auc_score(truth, score)),
            "auprc": float(average_precision_score(truth, score)),
        }
    return {
        "auroc": float(np.nanmean([m["auroc"] for m in per_task.values()])),
        "auprc": float(np.nanmean([m["auprc"] for m in per_task.values()])),
        "tasks": per_task,
    }


@dataclass
class Run:
    """A finished training run.

    Attributes
    ----------
    run_dir : pathlib.Path
    model : ConvNet
        Best model (eval mode, on the CPU).
    config : Config
        The config used, with ``data.length`` resolved.
    metrics : dict
        Test-split ``auroc``, ``auprc`` and per-task figures.
    history : pandas.DataFrame
        One row per epoch.
    """

    run_dir: Path
    model: ConvNet
    config: Config
    metrics: dict
    history: pd.DataFrame


def _seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def fit(
    model: ConvNet,
    data: Dataset,
    split,
    config: Config,
    device: torch.device,
    progress: bool = True,
) -> tuple[ConvNet, pd.DataFrame]:
    """Train ``model`` on ``data[split.train]`` with early stopping on ``data[split.valid]``.

    Returns the best model (by validation AUROC) and the per-epoch history.
    """
    cfg = config.training
    generator = _seed_everything(cfg.seed)
    model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    train_x, train_y = data.x[split.train], data.y[split.train]
    valid_x, valid_y = data.x[split.valid], data.y[split.valid]
    positives = train_y.sum(0)
    pos_weight = ((len(train_y) - positives) / positives.clamp(min=1)).to(device)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    use_amp = cfg.amp and device.type == "cuda"
    best_auroc, best_state, waited, rows = -1.0, None, 0, []
    bar = tqdm(range(1, cfg.epochs + 1), desc="training", unit="epoch", disable=not progress, leave=True)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        total, count = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb, yb = train_x[idx].to(device), train_y[idx].to(device)
            if cfg.rc_augment:
                xb, yb = torch.cat([xb, xb.flip(-2, -1)]), torch.cat([yb, yb])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(model(xb).float(), yb)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(xb)
            count += len(xb)
        logits = predict_logits(model, valid_x, device=device)
        valid = evaluate(valid_y, logits, data.tasks)
        valid_loss = float(nn.functional.binary_cross_entropy_with_logits(logits, valid_y))
        rows.append(
            {
                "epoch": epoch,
                "train_loss": total / max(count, 1),
                "valid_loss": valid_loss,
                "valid_auroc": valid["auroc"],
                "valid_auprc": valid["auprc"],
                "seconds": time.perf_counter() - start,
            }
        )
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}", val_auroc=f"{valid['auroc']:.4f}")
        if valid["auroc"] > best_auroc:
            best_auroc, best_state, waited = valid["auroc"], copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= cfg.patience:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.cpu().eval(), pd.DataFrame(rows)


def save_checkpoint(model: ConvNet, config: Config, tasks: list[str], path: str | os.PathLike) -> None:
    """Write weights and rebuild information as plain tensors/containers (weights_only-safe)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "genocnn_version": __version__,
        "config": config.to_dict(),
        "tasks": list(tasks),
        "length": int(model.length),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


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
    model = build_model(config.model, len(state["tasks"]), int(state["length"]))
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise GenocnnError(f"{path}: weights do not match the stored config: {first}") from None
    model.tasks = list(state["tasks"])
    model.run_config = config
    return model.to(resolve_device(device)).eval()


def train(
    pos: str | os.PathLike,
    neg: str | os.PathLike | None = None,
    out: str | os.PathLike = "run",
    config: Config | str | os.PathLike | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    device: str | torch.device | None = "auto",
    progress: bool = True,
) -> Run:
    """Train a binding model on bound (``pos``) vs unbound (``neg``) sequences.

    Parameters
    ----------
    pos : path
        FASTA of bound sequences (e.g. ChIP-seq peaks).
    neg : path, optional
        FASTA of unbound sequences; default dinucleotide-shuffled positives.
    out : path
        Run directory to write.
    config : Config, preset name or YAML path, optional
        Default: the built-in defaults.
    epochs, seed : int, optional
        Override ``training.epochs`` / ``training.seed``.
    device : str
        ``auto`` (CUDA with mixed precision when present), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

    Returns
    -------
    Run
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    overrides = {k: v for k, v in {"epochs": epochs, "seed": seed}.items() if v is not None}
    if overrides:
        cfg = config_from_dict({**cfg.to_dict(), "training": {**cfg.to_dict()["training"], **overrides}})
    dev = resolve_device(device)
    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise GenocnnError(f"{run_dir}: exists and is not a directory")
    data = load_pos_neg(
        pos, neg, cfg.data.length, cfg.data.max_length, cfg.data.negatives_per_positive, cfg.training.seed
    )
    cfg = cfg.replace(data={"length": int(data.x.shape[-1])})
    split = split_indices(data.y, cfg.data.valid_fraction, cfg.data.test_fraction, cfg.training.seed)
    if progress:
        balance = ", ".join(f"{t}: {p} bound / {n} unbound" for t, (p, n) in data.class_balance().items())
        tqdm.write(
            f"{len(data)} sequences of length {cfg.data.length} ({balance}); "
            f"train {len(split.train)}, valid {len(split.valid)}, test {len(split.test)}; device {dev}"
        )
    _seed_everything(cfg.training.seed)
    model = build_model(cfg.model, len(data.tasks), cfg.data.length)
    model, history = fit(model, data, split, cfg, dev, progress)
    metrics = evaluate(data.y[split.test], predict_logits(model, data.x[split.test]), data.tasks)
    metrics.update(n_train=len(split.train), n_valid=len(split.valid), n_test=len(split.test))
    model.tasks, model.run_config = list(data.tasks), cfg
    save_checkpoint(model, cfg, data.tasks, run_dir / "model.pt")
    with atomic_open(run_dir / "config.yaml") as fh:
        fh.write(dump_config(cfg))
    with atomic_open(run_dir / "history.tsv") as fh:
        history.to_csv(fh, sep="\t", index=False)
    with atomic_open(run_dir / "metrics.json") as fh:
        json.dump(metrics, fh, indent=2)
    return Run(run_dir, model, cfg, metrics, history)
