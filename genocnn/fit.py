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


_TORCH = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
#: Steps between checks of the accumulated losses for NaN/inf (one host sync each; always at the epoch's end).
CHECK_EVERY = 500


def batch_and_lr(cfg, device: torch.device) -> tuple[int, float]:
    """The batch size and learning rate used on ``device`` (``cfg``: the ``training`` section).

    On CUDA, ``cuda_batch_size`` (when set) replaces ``batch_size`` and the
    learning rate is scaled by ``sqrt(cuda_batch_size / batch_size)`` (the
    square-root rule for Adam); elsewhere both are used as given.

    Examples
    --------
    >>> from genocnn.config import TrainingConfig
    >>> batch_and_lr(TrainingConfig(), torch.device("cpu"))
    (64, 0.001)
    >>> b, lr = batch_and_lr(TrainingConfig(), torch.device("cuda"))
    >>> b, round(lr, 6)
    (256, 0.002)
    """
    if device.type != "cuda" or cfg.cuda_batch_size is None:
        return cfg.batch_size, cfg.lr
    return cfg.cuda_batch_size, cfg.lr * math.sqrt(cfg.cuda_batch_size / cfg.batch_size)


def eval_batch_size(device: torch.device, length: int) -> int:
    """Sequences per validation forward pass: about 1 Mbp per batch on a GPU, 256 on the CPU."""
    return 256 if device.type == "cpu" else max(256, 2**20 // max(length, 1))


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


def make_optimiser(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW, fused (one kernel, step count on the device) where this torch has it for ``device``.

    The fused kernel can skip a step on the device (:func:`train_step` uses
    that for non-finite losses); elsewhere (MPS, torch < 2.4 on the CPU) the
    default foreach implementation is used.
    """
    fused = device.type == "cuda" or (device.type == "cpu" and _TORCH >= (2, 4))
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused or None)


def train_step(
    net: nn.Module, optimiser: torch.optim.Optimizer, scaler: torch.amp.GradScaler, x: torch.Tensor,
    y: torch.Tensor, pos_weight: torch.Tensor | None = None, rc_augment: bool = True,
    amp_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """One optimiser step on a batch; returns its loss as a 0-d tensor on the batch's device.

    Nothing here waits for the device (no ``float(loss)``): callers accumulate
    the returned losses and check them for NaN/inf now and then.

    A non-finite loss (or non-finite gradients) takes no step, decided on the
    device: a fused AdamW (:func:`make_optimiser`) is handed the flag as its
    ``found_inf`` and leaves weights, moments and step count as they were;
    with the gradient scaler (float16) the scaler skips the step; any other
    optimiser gets zero gradients for that step (its momentum and weight
    decay still move the weights once).

    Parameters
    ----------
    x : torch.Tensor, shape (N, 4, L)
    y : torch.Tensor, shape (N, T), NaN = unknown
    rc_augment : bool
        Add the reverse complement of every sequence (same labels).
    amp_dtype : torch.dtype, optional
        Autocast to this type (bfloat16 / float16); None for full precision.

    Returns
    -------
    torch.Tensor, shape ()
        The batch's loss (detached); NaN or inf when the step was skipped.
    """
    if rc_augment:
        x, y = torch.cat([x, reverse_complement(x)]), torch.cat([y, y])
    with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = net(x)
    loss = masked_bce(logits.float(), y, pos_weight)
    optimiser.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if scaler.is_enabled():
        scaler.step(optimiser)  # skips steps with inf/NaN gradients itself
        scaler.update()
        return loss.detach()
    grads = [p.grad for group in optimiser.param_groups for p in group["params"] if p.grad is not None]
    bad = ~torch.isfinite(loss.detach())
    if grads:
        bad = bad | ~torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()
    if getattr(optimiser, "_step_supports_amp_scaling", False):  # fused: skipped inside the kernel
        optimiser.grad_scale, optimiser.found_inf = None, bad.float()
        try:
            optimiser.step()
        finally:
            optimiser.found_inf = None
    else:
        keep = (~bad).to(grads[0].dtype) if grads else None
        for g in grads:
            g.nan_to_num_(0.0, 0.0, 0.0).mul_(keep)
        optimiser.step()
    return loss.detach()


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
    batch_size, lr = batch_and_lr(cfg, device)
    optimiser = make_optimiser(model, lr, cfg.weight_decay, device)
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
        order = source.order(epoch, generator, batch_size, cfg.steps_per_epoch)
        losses, sizes = [], []  # device losses and host batch sizes: no sync per step
        for batch, i in enumerate(range(0, len(order), batch_size), 1):
            idx = dist.shard(order[i : i + batch_size])
            xb, yb = source.batch(idx)
            losses.append(train_step(net, optimiser, scaler, xb, yb, pos_weight, cfg.rc_augment,
                                     amp_dtype if use_amp else None))
            sizes.append(len(xb) * (2 if cfg.rc_augment else 1))
            if batch % CHECK_EVERY == 0:
                _check_losses(losses, dist, epoch, state.epoch, last_path, bar)
        train_loss = _check_losses(losses, dist, epoch, state.epoch, last_path, bar, sizes)
        logits = predict_logits(model, valid_x, eval_batch_size(device, valid_x.shape[-1]), device,
                                on_device=True).cpu()  # one transfer
        valid = evaluate(valid_y, logits, data.tasks)
        state.rows.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
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
        bar.set_postfix(loss=f"{train_loss:.4f}", val_auroc=f"{valid['auroc']:.4f}")
    bar.close()
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return model.cpu().eval(), pd.DataFrame(state.rows)


def _check_losses(losses: list, dist: Distributed, epoch: int, kept_epoch: int, last_path: Path | None,
                  bar, sizes: list | None = None) -> float:
    """Raise :class:`GenocnnError` at the epoch's first non-finite loss; else the size-weighted mean loss.

    ``losses`` are the epoch's 0-d device losses so far (one host transfer
    here); under ``torchrun`` they are summed over the ranks first, so every
    rank stops at the same batch. ``sizes`` (sequences per batch) weight the
    mean; without them only the check is made (0.0 is returned).
    """
    if not losses:
        return float("nan")
    values = torch.stack(losses)
    if dist.active:
        torch.distributed.all_reduce(values)
    values = values.cpu()
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):
        batch = int(bad[0, 0]) + 1
        bar.close()
        kept = f"{last_path} keeps epoch {kept_epoch}" if last_path and kept_epoch else "no epoch kept"
        raise GenocnnError(f"training stopped at epoch {epoch}, batch {batch}: the loss is {float(values[batch - 1])} "
                           f"({kept}); lower training.lr (--set training.lr=...) and train again")
    if sizes is None:
        return 0.0
    weights = torch.tensor(sizes, dtype=values.dtype)
    mean = float((values * weights).sum() / weights.sum())
    return mean / dist.world if dist.active else mean
