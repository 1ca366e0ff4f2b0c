"""The one training loop: AdamW, early stopping on validation AUROC, checkpoints.

A run directory holds ``model.pt`` (weights plus everything needed to rebuild
the network; loadable with ``torch.load(weights_only=True)``), ``config.yaml``,
``history.tsv`` (one row per epoch) and ``metrics.json`` (test AUROC/AUPRC).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn
from tqdm.auto import tqdm

from . import __version__
from .atomic import atomic_open
from .checkpoint import check_inputs, file_record, load_last, save_checkpoint, save_last
from .config import Config, apply_overrides, config_from_dict, dump_config, load_config
from .data import Dataset, load_labelled, load_pos_neg, split_indices
from .devices import Distributed, resolve_device
from .errors import GenocnnError
from .genome import GenomeData, chrom_split, load_bed
from .models import ConvNet, build_model



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
    """AUROC and AUPRC per task over known labels, and their mean (NaN where a task has one class)."""
    per_task = {}
    for t, name in enumerate(tasks):
        known = ~torch.isnan(y[:, t])
        truth = y[known, t].numpy()
        score = logits[known, t].numpy()
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
    """
    if rc_augment:
        x, y = torch.cat([x, x.flip(-2, -1)]), torch.cat([y, y])
    with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = net(x)
    loss = masked_bce(logits.float(), y, pos_weight)
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
) -> tuple[ConvNet, pd.DataFrame]:
    """Train ``model`` on ``data[split.train]`` with early stopping on ``data[split.valid]``.

    After every epoch the full training state (weights, optimiser, LR schedule, RNG, early
    stopping) is written atomically to ``last_path``; passing that state back
    as ``resume`` continues to the same final weights as an uninterrupted run.

    Returns the best model (by validation AUROC, eval mode, CPU) and the
    per-epoch history.
    """
    cfg = config.training
    dist = dist or Distributed()
    generator = _seed_everything(cfg.seed)
    model.to(device)
    net = model
    if dist.active:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile and device.type == "cuda":
        net = torch.compile(net)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(optimiser, cfg)
    train_x, train_y = data.x[split.train], data.y[split.train]
    valid_x, valid_y = data.x[split.valid], data.y[split.valid]
    if device.type == "cuda":
        train_x, train_y = train_x.pin_memory(), train_y.pin_memory()
    pos_weight = positive_weights(train_y).to(device)
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
        order = torch.randperm(len(train_x), generator=generator)
        total, count = 0.0, 0
        for i in range(0, len(order), cfg.batch_size):
            idx = dist.shard(order[i : i + cfg.batch_size])
            xb = train_x[idx].to(device, non_blocking=True)
            yb = train_y[idx].to(device, non_blocking=True)
            loss = train_step(net, optimiser, scaler, xb, yb, pos_weight, cfg.rc_augment,
                              amp_dtype if use_amp else None)
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
        bar.update(1)
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}", val_auroc=f"{valid['auroc']:.4f}")
    bar.close()
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return model.cpu().eval(), pd.DataFrame(state.rows)


def load_dataset(
    cfg: Config, pos=None, neg=None, fasta=None, labels=None, *,
    bed=None, genome=None, negatives: str | None = None, skip_bad: bool = False,
) -> tuple[Dataset, GenomeData | None]:
    """The training data: ``pos`` [+ ``neg``] FASTA, ``fasta`` + ``labels`` TSV, or ``bed`` + ``genome``.

    Returns the Dataset and, for ``bed`` data, the :class:`GenomeData` that
    knows each row's chromosome (else None). Notes about the BED (skipped
    lines, padded windows) are printed to stderr.
    """
    if bed is not None or genome is not None:
        if bed is None or genome is None:
            raise GenocnnError("--bed and --genome go together")
        if any(p is not None for p in (pos, neg, fasta, labels)):
            raise GenocnnError("give either --bed/--genome, --pos/--neg or --fasta/--labels, not several")
        peaks = load_bed(bed, genome, cfg.data.length, cfg.data.max_length, negatives or "gc",
                         cfg.data.negatives_per_positive, cfg.training.seed, skip_bad)
        if int(os.environ.get("RANK", "0")) == 0:
            for note in peaks.notes:
                tqdm.write(f"genocnn: {note}", file=sys.stderr)
        return peaks.data, peaks
    if negatives is not None or skip_bad:
        raise GenocnnError("--negatives and --skip-bad apply to --bed/--genome data only")
    if labels is not None or fasta is not None:
        if fasta is None or labels is None:
            raise GenocnnError("--fasta and --labels go together")
        if pos is not None or neg is not None:
            raise GenocnnError("give either --pos/--neg or --fasta/--labels, not both")
        return load_labelled(fasta, labels, cfg.data.length, cfg.data.max_length), None
    if pos is None:
        raise GenocnnError(
            "no training data: give --pos (and optionally --neg), --fasta and --labels, or --bed and --genome"
        )
    data = load_pos_neg(
        pos, neg, cfg.data.length, cfg.data.max_length, cfg.data.negatives_per_positive, cfg.training.seed
    )
    return data, None


def train(
    pos: str | os.PathLike | None = None,
    neg: str | os.PathLike | None = None,
    out: str | os.PathLike = "run",
    config: Config | str | os.PathLike | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    device: str | torch.device | None = "auto",
    progress: bool = True,
    *,
    fasta: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    command: Sequence[str] | None = None,
    bed: str | os.PathLike | None = None,
    genome: str | os.PathLike | None = None,
    negatives: str | None = None,
    valid_chroms: Sequence[str] = (),
    test_chroms: Sequence[str] = (),
    skip_bad: bool = False,
) -> Run:
    """Train a binding model on bound vs unbound sequences, or on a labels table.

    Parameters
    ----------
    pos : path, optional
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
    fasta, labels : path, optional
        Multi-task data instead of pos/neg: a FASTA and a TSV whose first
        column is the sequence id and every other column a task (0/1/NA).
    overrides : list of str
        ``section.key=value`` config overrides, e.g. ``training.lr=3e-4``.
    resume : bool
        Continue the run in ``out`` from its ``last.pt`` (same data and config).
    command : list of str, optional
        Command line recorded in ``run.json``.
    bed, genome : path, optional
        Peaks (BED or narrowPeak) and the genome FASTA (plain or bgzip) to
        cut them from, instead of FASTA input: see :mod:`genocnn.genome`.
        The window length is ``data.length`` if set, else the median interval
        length capped at ``data.max_length``.
    negatives : {"gc", "shuffle"}, optional
        For ``bed`` data: GC-matched random genomic windows (default) or
        dinucleotide-shuffled positives; ``data.negatives_per_positive`` each.
    valid_chroms, test_chroms : list of str
        For ``bed`` data: hold out these chromosomes as the validation / test
        split (a part given none is drawn at random from the rest).
    skip_bad : bool
        For ``bed`` data: drop bad BED lines (counted on stderr) instead of failing.

    Returns
    -------
    Run
    """
    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise GenocnnError(f"{run_dir}: exists and is not a directory")
    last_path = run_dir / "last.pt"
    resume_state = load_last(last_path) if resume else None
    if resume_state is not None and config is None:
        cfg = config_from_dict(resume_state["config"], where=str(last_path))
    else:
        cfg = config if isinstance(config, Config) else load_config(config)
    extra = [*overrides]
    extra += [f"training.epochs={epochs}"] if epochs is not None else []
    extra += [f"training.seed={seed}"] if seed is not None else []
    if extra:
        cfg = apply_overrides(cfg, extra)
    dist = Distributed()
    dev = dist.setup(resolve_device(device))
    if dev.type == "cpu" and hasattr(os, "sched_getaffinity") and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // dist.world))  # every core we were given
    if (valid_chroms or test_chroms) and bed is None:
        raise GenocnnError("--valid-chroms/--test-chroms need --bed/--genome data (chromosome positions)")
    data, peaks = load_dataset(cfg, pos, neg, fasta, labels, bed=bed, genome=genome,
                               negatives=negatives, skip_bad=skip_bad)
    cfg = cfg.replace(data={"length": int(data.x.shape[-1])})
    if resume_state is not None and resume_state["config"] != cfg.to_dict():
        raise GenocnnError(f"{last_path}: the run was started with a different config or data length; "
                           "resume with the same options")
    if valid_chroms or test_chroms:
        split = chrom_split(peaks.chroms, data.y, valid_chroms, test_chroms, cfg.data.valid_fraction,
                            cfg.data.test_fraction, cfg.training.seed, known=peaks.genome_chroms)
    else:
        split = split_indices(data.y, cfg.data.valid_fraction, cfg.data.test_fraction, cfg.training.seed)
    if progress and dist.is_main:
        balance = ", ".join(f"{t}: {p} bound / {n} unbound" for t, (p, n) in data.class_balance().items())
        weights = ", ".join(f"{w:.2f}" for w in positive_weights(data.y[split.train]).tolist())
        tqdm.write(
            f"{len(data)} sequences of length {cfg.data.length} ({balance}); positive weights {weights}; "
            f"train {len(split.train)}, valid {len(split.valid)}, test {len(split.test)}; device {dev}"
            + (f" x {dist.world} processes" if dist.active else "")
        )
    inputs = [p for p in (pos, neg, fasta, labels, bed, genome) if p is not None]
    meta = {
        "genocnn_version": __version__,
        "torch_version": torch.__version__,
        "command": list(command) if command is not None else None,
        "device": str(dev),
        "world_size": dist.world,
        "inputs": [file_record(p) for p in inputs],
        "data_options": {"negatives": negatives, "valid_chroms": list(valid_chroms),
                         "test_chroms": list(test_chroms), "skip_bad": skip_bad},
        "config": cfg.to_dict(),
    }
    if dist.is_main:
        check_inputs(run_dir / "run.json", meta, resume)
        with atomic_open(run_dir / "run.json") as fh:
            json.dump(meta, fh, indent=2)
    _seed_everything(cfg.training.seed)
    model = build_model(cfg.model, len(data.tasks), cfg.data.length)
    # deterministic kernels on CPU; with one thread a seed gives bit-identical weights across runs
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        model, history = fit(model, data, split, cfg, dev, progress, last_path, resume_state, dist)
    finally:
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        dist.close()
    metrics = evaluate(data.y[split.test], predict_logits(model, data.x[split.test]), data.tasks)
    metrics.update(n_train=len(split.train), n_valid=len(split.valid), n_test=len(split.test))
    model.tasks, model.run_config = list(data.tasks), cfg
    if dist.is_main:
        save_checkpoint(model, cfg, data.tasks, run_dir / "model.pt")
        with atomic_open(run_dir / "config.yaml") as fh:
            fh.write(dump_config(cfg))
        with atomic_open(run_dir / "history.tsv") as fh:
            history.to_csv(fh, sep="\t", index=False)
        with atomic_open(run_dir / "metrics.json") as fh:
            json.dump(metrics, fh, indent=2)
    return Run(run_dir, model, cfg, metrics, history)


