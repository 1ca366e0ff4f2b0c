"""The epoch loop: AdamW, reverse-complement augmentation, early stopping, resumable state.

:func:`fit` trains a network on a split of a :class:`~genocnn.data.Dataset`;
:mod:`genocnn.training` prepares a run around it and saves what it returns.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .atomic import atomic_open
from .batches import BatchSource, codes_one_hot, positive_weights_of, split_labels, validation_rows
from .checkpoint import save_last
from .config import Config
from .data import Dataset
from .devices import Distributed
from .errors import GenocnnError
from .encode import reverse_complement
from .inference import predict_logits
from .metrics import evaluate
from .models import ConvNet


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def masked_bce(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy averaged over known labels; NaN labels are left out.

    Parameters
    ----------
    logits, y : torch.Tensor, shape (N, T)
    pos_weight : torch.Tensor, shape (T,), optional
    """
    known = ~torch.isnan(y)
    loss = nn.functional.binary_cross_entropy_with_logits(
        logits, torch.nan_to_num(y), pos_weight=pos_weight, reduction="none"
    )
    return (loss * known).sum() / known.sum().clamp(min=1)


def positive_weights(y: torch.Tensor) -> torch.Tensor:
    """Per-task weight of positives: known negatives / known positives, shape (T,)."""
    known = ~torch.isnan(y)
    positives = torch.nansum(y, 0)
    return (known.sum(0) - positives) / positives.clamp(min=1)


def train_step(
    net: nn.Module, optimiser: torch.optim.Optimizer, scaler: torch.amp.GradScaler, x: torch.Tensor,
    y: torch.Tensor, pos_weight: torch.Tensor | None = None, rc_augment: bool = True,
    amp_dtype: torch.dtype | None = None,
) -> float:
    """One optimiser step on a batch; returns its loss.

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L)
    y : torch.Tensor, shape (N, T), NaN = unknown
    rc_augment : bool
        Add the reverse complement of every sequence (same labels).
    amp_dtype : torch.dtype, optional
        Autocast to this type (bfloat16 / float16); None for full precision.

    Raises
    ------
    FloatingPointError
        When the loss is NaN or infinite; no step is taken then.
    """
    if rc_augment:
        x, y = torch.cat([x, reverse_complement(x)]), torch.cat([y, y])
    with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = net(x)
    loss = masked_bce(logits.float(), y, pos_weight)
    if not math.isfinite(float(loss.detach())):
        raise FloatingPointError(f"the loss is {float(loss.detach())}")
    optimiser.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimiser)
    scaler.update()
    return float(loss.detach())


def make_scheduler(optimiser: torch.optim.Optimizer, cfg) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule of ``training.scheduler``, stepped once per epoch (None for ``none``)."""
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimiser, mode="max", factor=cfg.lr_factor, patience=cfg.lr_patience - 1
        )
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg.epochs)
    return None


@dataclass
class Progress:
    """Early-stopping state carried between epochs and through ``last.pt``."""

    epoch: int = 0
    best_auroc: float = -1.0
    best_state: dict | None = None
    waited: int = 0
    rows: list | None = None
    stopped: bool = False


def fit(
    model: ConvNet,
    data: Dataset,
    split,
    config: Config,
    device: torch.device,
    progress: bool = True,
    last_path: Path | None = None,
    resume: dict | None = None,
    dist: Distributed | None = None,
    history_path: Path | None = None,
) -> tuple[ConvNet, pd.DataFrame]:
    """Train ``model`` on ``data[split.train]`` with early stopping on ``data[split.valid]``.

    After every epoch the full training state (weights, optimiser, LR schedule, RNG, early
    stopping) is written atomically to ``last_path``; passing that state back
    as ``resume`` continues to the same final weights as an uninterrupted run.
    The history so far is written (atomically) to ``history_path`` after it.
    A NaN or infinite loss stops training with a :class:`GenocnnError` naming
    the epoch and batch; ``last_path`` then still holds the previous epoch.

    Returns the best model (by validation AUROC, eval mode, CPU) and the
    per-epoch history.
    """
    cfg = config.training
    dist = dist or Distributed()
    generator = seed_everything(cfg.seed)
    model.to(device)
    net = model
    if dist.active:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile and device.type == "cuda":
        net = torch.compile(net)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(optimiser, cfg)
    source = BatchSource(data, split.train, device, cfg.seed)  # codes; one-hot per batch on the device
    valid_rows = validation_rows(split.valid, data.length)
    valid_x, valid_y = codes_one_hot(data, valid_rows), split_labels(data, valid_rows)
    pos_weight = positive_weights_of(data.labels, split.train).to(device)
    amp_dtype = torch.float16 if cfg.amp_dtype == "float16" else torch.bfloat16
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    state = Progress(rows=[])
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimiser.load_state_dict(resume["optimiser"])
        if resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler"])
        torch.set_rng_state(resume["torch_rng"])
        generator.set_state(resume["generator"])
        state = Progress(**resume["progress"])
    bar = tqdm(
        total=cfg.epochs, initial=state.epoch, desc="training", unit="epoch",
        disable=not (progress and dist.is_main), leave=True,
    )
    while state.epoch < cfg.epochs and not state.stopped:
        epoch = state.epoch + 1
        start = time.perf_counter()
        net.train()
        order = source.order(epoch, generator, cfg.batch_size, cfg.steps_per_epoch)
        total, count = 0.0, 0
        for batch, i in enumerate(range(0, len(order), cfg.batch_size), 1):
            idx = dist.shard(order[i : i + cfg.batch_size])
            xb, yb = source.batch(idx)
            try:
                loss = train_step(net, optimiser, scaler, xb, yb, pos_weight, cfg.rc_augment,
                                  amp_dtype if use_amp else None)
            except FloatingPointError as exc:
                bar.close()
                kept = f"{last_path} keeps epoch {state.epoch}" if last_path and state.epoch else "no epoch kept"
                raise GenocnnError(f"training stopped at epoch {epoch}, batch {batch}: {exc} ({kept}); "
                                   "lower training.lr (--set training.lr=...) and train again") from None
            n = len(xb) * (2 if cfg.rc_augment else 1)
            total += loss * n
            count += n
        logits = predict_logits(model, valid_x, device=device)
        valid = evaluate(valid_y, logits, data.tasks)
        state.rows.append(
            {
                "epoch": epoch,
                "train_loss": total / max(count, 1),
                "valid_loss": float(masked_bce(logits, valid_y)),
                "valid_auroc": valid["auroc"],
                "valid_auprc": valid["auprc"],
                "lr": optimiser.param_groups[0]["lr"],
                "seconds": time.perf_counter() - start,
            }
        )
        state.epoch = epoch
        if valid["auroc"] > state.best_auroc:
            state.best_auroc, state.waited = valid["auroc"], 0
            state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            state.waited += 1
            state.stopped = state.waited >= cfg.patience
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(valid["auroc"])
        elif scheduler is not None:
            scheduler.step()
        if last_path is not None and dist.is_main:
            save_last(last_path, model, optimiser, scaler, scheduler, generator, state, config, data.tasks)
        if history_path is not None and dist.is_main:
            with atomic_open(history_path) as fh:
                pd.DataFrame(state.rows).to_csv(fh, sep="\t", index=False)
        bar.update(1)
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}", val_auroc=f"{valid['auroc']:.4f}")
    bar.close()
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return model.cpu().eval(), pd.DataFrame(state.rows)
