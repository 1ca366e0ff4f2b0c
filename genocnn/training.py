"""A training run, in three stages: prepare the run -> fit (:mod:`genocnn.fit`) -> save the run.

A run directory holds ``model.pt`` (weights plus everything needed to rebuild
the network; loadable with ``torch.load(weights_only=True)``), ``config.yaml``,
``history.tsv`` (one row per epoch) and ``metrics.json`` (test AUROC/AUPRC).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import __version__
from .atomic import atomic_open
from .calibration import calibrate
from .checkpoint import file_record, load_last, save_checkpoint
from .config import Config, apply_overrides, config_from_dict, dump_config, load_config
from .batches import codes_one_hot, positive_weights_of, split_labels
from .data import Dataset, GenomeData, drop_pages, gather_rows, labels_to_float, load_bed, load_labelled, load_pos_neg
from .devices import Distributed, cpu_threads, resolve_device
from .errors import GenocnnError
from .genome import chrom_sizes, open_genome
from .fit import batch_and_lr, eval_batch_size, fit, seed_everything
from .inference import evaluating, predict_logits
from .metrics import evaluate
from .models import ConvNet, build_model
from .rundir import (LOCK_FILE, RunLock, check_out, check_recorded_inputs, check_resumed_config, claim,
                     recorded_inputs, recorded_run)
from .splits import Split, check_chroms, chrom_split, split_indices
from .store import open_store, store_for

#: ``train --fasta --labels`` with a FASTA larger than this (bytes, about the bases) builds or reuses a
#: memory-mapped store beside the run (``RUN.store/``) instead of holding the data in memory;
#: the environment variable ``GENOCNN_STORE_BYTES`` overrides it (0: always).
AUTO_STORE_BYTES = 200_000_000
#: Held-out bases read for the calibration background (evenly spaced rows), a multiple of what it uses.
CALIBRATION_POOL = 10
#: Rows one-hot encoded at a time when predicting the test split.
_PREDICT_ROWS = 4096


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

    @property
    def stopping(self) -> str:
        """One line: how many epochs ran, whether early stopping ended them, and which epoch was kept."""
        return stopping_sentence(self.history, self.config.training.epochs, self.config.training.patience)


def stopping_sentence(history: pd.DataFrame, epochs: int, patience: int) -> str:
    """How training ended and which epoch's weights were kept (the best validation AUROC, first of ties).

    Examples
    --------
    >>> h = pd.DataFrame({"epoch": [1, 2, 3, 4], "valid_auroc": [0.7, 0.9, 0.9, 0.8]})
    >>> stopping_sentence(h, 30, 2)
    'stopped early at epoch 4 of 30 (no better validation AUROC for 2 epochs); kept epoch 2 (validation AUROC 0.9000)'
    >>> stopping_sentence(h, 4, 5)
    'trained all 4 epochs; kept epoch 2 (validation AUROC 0.9000)'
    """
    if not len(history):
        return "trained no epoch"
    last = int(history["epoch"].iloc[-1])
    ran = (f"stopped early at epoch {last} of {epochs} (no better validation AUROC for {patience} epochs)"
           if last < epochs else f"trained all {last} epochs")
    auroc = history["valid_auroc"]
    if auroc.isna().all():
        return f"{ran}; kept the last epoch (no validation AUROC)"
    best = history.loc[auroc.idxmax()]
    return f"{ran}; kept epoch {int(best['epoch'])} (validation AUROC {best['valid_auroc']:.4f})"


def load_dataset(
    cfg: Config, pos=None, neg=None, fasta=None, labels=None, *,
    bed=None, genome=None, negatives: str | None = None, skip_bad: bool = False,
    dist: Distributed | None = None, store=None, cache: Path | None = None,
) -> tuple[Dataset, GenomeData | None]:
    """The training data: ``pos`` [+ ``neg``] FASTA, ``fasta`` + ``labels`` TSV, ``bed`` + ``genome``, or a ``store``.

    Returns the Dataset and, for ``bed`` data, the :class:`GenomeData` that
    knows each row's chromosome (else None). Notes about the BED (skipped
    lines, padded windows) are printed to stderr by the main process.
    ``fasta`` over :data:`AUTO_STORE_BYTES` goes through the store ``cache``
    (built, or reused when its sources and options match; by rank 0 under ``torchrun``).
    """
    if store is not None:
        if any(p is not None for p in (pos, neg, fasta, labels, bed, genome)):
            raise GenocnnError("give either `store` or input files, not both")
        data = open_store(store)
        if cfg.data.length is not None and cfg.data.length != data.length:
            raise GenocnnError(f"{store}: sequences of length {data.length}, data.length is {cfg.data.length}; "
                               "build the store again with that length")
        return data, None
    if bed is not None or genome is not None:
        if bed is None or genome is None:
            raise GenocnnError("`bed` and `genome` go together")
        if any(p is not None for p in (pos, neg, fasta, labels)):
            raise GenocnnError("give either `bed`/`genome`, `pos`/`neg` or `fasta`/`labels`, not several")
        peaks = load_bed(bed, genome, cfg.data.length, cfg.data.max_length, negatives or "gc",
                         cfg.data.negatives_per_positive, cfg.training.seed, skip_bad)
        if (dist or Distributed()).is_main:
            for note in peaks.notes:
                tqdm.write(f"genocnn: {note}", file=sys.stderr)
        return peaks.data, peaks
    if negatives is not None or skip_bad:
        raise GenocnnError("`negatives` and `skip_bad` apply to `bed`/`genome` data only")
    if labels is not None or fasta is not None:
        if fasta is None or labels is None:
            raise GenocnnError("`fasta` and `labels` go together")
        if pos is not None or neg is not None:
            raise GenocnnError("give either `pos`/`neg` or `fasta`/`labels`, not both")
        limit = int(os.environ.get("GENOCNN_STORE_BYTES", AUTO_STORE_BYTES))
        if cache is not None and os.path.isfile(fasta) and os.path.getsize(fasta) > limit:
            dist = dist or Distributed()
            if dist.is_main:  # under torchrun rank 0 builds (or checks) the store, the others wait, then map it
                data = store_for(cache, fasta=fasta, labels=labels, length=cfg.data.length,
                                 max_length=cfg.data.max_length)
            dist.barrier()
            return (data if dist.is_main else open_store(cache)), None
        return load_labelled(fasta, labels, cfg.data.length, cfg.data.max_length), None
    if pos is None:
        raise GenocnnError(
            "no training data: give `pos` (and optionally `neg`), `fasta` and `labels`, or `bed` and `genome`"
        )
    data = load_pos_neg(
        pos, neg, cfg.data.length, cfg.data.max_length, cfg.data.negatives_per_positive, cfg.training.seed
    )
    return data, None


@dataclass
class PreparedRun:
    """Everything :func:`train` decided before the first epoch."""

    run_dir: Path
    config: Config
    data: Dataset
    split: Split
    device: torch.device
    dist: Distributed
    resume_state: dict | None
    progress: bool
    lock: RunLock | None = None  #: held by the main process until the run is written

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


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
    force: bool = False,
    command: Sequence[str] | None = None,
    bed: str | os.PathLike | None = None,
    genome: str | os.PathLike | None = None,
    negatives: str | None = None,
    valid_chroms: Sequence[str] = (),
    test_chroms: Sequence[str] = (),
    skip_bad: bool = False,
    store: str | os.PathLike | None = None,
) -> Run:
    """Train a binding model on bound vs unbound sequences, or on a labels table.

    Parameters
    ----------
    pos : path, optional
        FASTA of bound sequences (e.g. ChIP-seq peaks).
    neg : path, optional
        FASTA of unbound sequences; default dinucleotide-shuffled positives.
    out : path
        Run directory to write: new or empty, unless ``force`` or ``resume``.
    config : Config, preset name or YAML path, optional
        Default: the built-in defaults.
    epochs, seed : int, optional
        Override ``training.epochs`` / ``training.seed``.
    device : str
        ``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    fasta, labels : path, optional
        Multi-task data instead of pos/neg: a FASTA and a TSV whose first
        column is the sequence id and every other column a task (0/1/NA).
        A FASTA over :data:`AUTO_STORE_BYTES` is read through a store in
        ``out + ".store"`` (built once, reused while the files are unchanged).
    store : path, optional
        A store from :func:`genocnn.store.build_store` (``genocnn prepare``)
        instead of input files.
    overrides : list of str
        ``section.key=value`` config overrides, e.g. ``training.lr=3e-4``.
    resume : bool
        Continue the run in ``out`` from its ``last.pt`` (from its start when
        it has none yet). Without input files the run's recorded inputs and
        data options are used; given ones must match them, and the config must
        match the run's except ``training.epochs``, which may be raised.
    force : bool
        Write into a folder that is not empty: the files of an old run there
        (``model.pt``, ``last.pt``, ...) are deleted first.
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
    inputs = dict(pos=pos, neg=neg, fasta=fasta, labels=labels, bed=bed, genome=genome, store=store)
    existed = Path(out).exists()
    run = prepare_run(out, config, epochs, seed, device, progress, inputs, overrides=overrides,
                      resume=resume, force=force, command=command, negatives=negatives,
                      valid_chroms=valid_chroms, test_chroms=test_chroms, skip_bad=skip_bad)
    try:
        model, history = fit_run(run)
        return save_run(run, model, history)
    except BaseException:
        if run.dist.is_main and not resume:
            _discard_unstarted(run, existed)
        raise
    finally:
        run.release()


def _discard_unstarted(run: PreparedRun, existed: bool) -> None:
    """A new run that failed before its first epoch was saved: remove its ``run.json`` (and the folder, when
    this run created it and nothing else is in it), so that the same command can be given again."""
    if (run.run_dir / "last.pt").exists():
        return  # resumable: keep it
    (run.run_dir / "run.json").unlink(missing_ok=True)
    run.release()
    if not existed and {p.name for p in run.run_dir.iterdir()} <= {LOCK_FILE}:
        (run.run_dir / LOCK_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            run.run_dir.rmdir()


def _resolve_config(config, recorded: dict | None, where: Path, overrides: Sequence[str]) -> Config:
    """The config of a run: the one recorded by the run when resuming without one, plus overrides."""
    if recorded is not None and config is None:
        cfg = config_from_dict(recorded, where=str(where))
    else:
        cfg = config if isinstance(config, Config) else load_config(config)
    return apply_overrides(cfg, overrides) if overrides else cfg


def prepare_run(
    out: str | os.PathLike,
    config,
    epochs: int | None,
    seed: int | None,
    device,
    progress: bool,
    inputs: dict,
    *,
    overrides: Sequence[str] = (),
    resume: bool = False,
    force: bool = False,
    command: Sequence[str] | None = None,
    negatives: str | None = None,
    valid_chroms: Sequence[str] = (),
    test_chroms: Sequence[str] = (),
    skip_bad: bool = False,
) -> PreparedRun:
    """Stage 1 of :func:`train`: config, device, data, split, the run directory's lock and ``run.json``.

    See :func:`train`. The main process holds the lock of the returned run
    (``PreparedRun.lock``) until :meth:`PreparedRun.release`.
    """
    run_dir = Path(out)
    check_out(run_dir, resume, force)
    last_path = run_dir / "last.pt"
    recorded = recorded_run(run_dir) if resume else None
    resume_state = load_last(last_path) if resume and (recorded is None or last_path.exists()) else None
    if resume and all(v is None for v in inputs.values()):
        if recorded is None:
            raise GenocnnError(f"{run_dir}: no run.json to take the input files from; give the data options")
        inputs, options = recorded_inputs(recorded, run_dir / "run.json")
        negatives, valid_chroms, test_chroms, skip_bad = (
            options["negatives"], options["valid_chroms"], options["test_chroms"], options["skip_bad"])
    extra = [*overrides]
    extra += [f"training.epochs={epochs}"] if epochs is not None else []
    extra += [f"training.seed={seed}"] if seed is not None else []
    started = recorded["config"] if recorded is not None else resume_state and resume_state["config"]
    cfg = _resolve_config(config, started, run_dir / "run.json", extra)
    dist = Distributed()
    dev = dist.setup(resolve_device(device))
    if dev.type == "cpu":
        cpu_threads(share=dist.world)  # every core we were given
    if (valid_chroms or test_chroms) and inputs.get("bed") is None:
        raise GenocnnError("`valid_chroms`/`test_chroms` need `bed`/`genome` data (chromosome positions)")
    if (valid_chroms or test_chroms) and inputs.get("genome") is not None:  # before any genome work
        with open_genome(inputs["genome"]) as fa:
            check_chroms(set(chrom_sizes(fa)), valid_chroms, test_chroms)
    cache = run_dir.with_name(run_dir.name + ".store")
    data, peaks = load_dataset(cfg, **inputs, negatives=negatives, skip_bad=skip_bad, dist=dist, cache=cache)
    cfg = cfg.replace(data={"length": data.length})
    if resume_state is not None:
        check_resumed_config(resume_state["config"], cfg.to_dict(), resume_state["progress"]["epoch"], last_path)
    elif recorded is not None:
        check_resumed_config(recorded["config"], cfg.to_dict(), 0, run_dir / "run.json")
    first_task = labels_to_float(data.labels[:, :1])  # what the splits stratify on
    drop_pages(data.labels)
    if valid_chroms or test_chroms:
        split = chrom_split(peaks.chroms, first_task, valid_chroms, test_chroms, cfg.data.valid_fraction,
                            cfg.data.test_fraction, cfg.training.seed, known=peaks.genome_chroms)
    else:
        try:
            split = split_indices(first_task, cfg.data.valid_fraction, cfg.data.test_fraction, cfg.training.seed)
        except GenocnnError as exc:  # name the data it was given
            given = ", ".join(str(inputs[k]) for k in ("pos", "neg", "fasta", "bed", "store") if inputs[k] is not None)
            raise GenocnnError(f"{given}: {exc}") from None
    if progress and dist.is_main:
        balance = ", ".join(f"{t}: {p} bound / {n} unbound" for t, (p, n) in data.class_balance().items())
        weights = ", ".join(f"{w:.2f}" for w in positive_weights_of(data.labels, split.train).tolist())
        batch, lr = batch_and_lr(cfg.training, dev)
        tqdm.write(
            f"{len(data)} sequences of length {cfg.data.length} ({balance}); positive weights {weights}; "
            f"train {len(split.train)}, valid {len(split.valid)}, test {len(split.test)}; device {dev}, "
            f"batch {batch}, lr {lr:.3g}"
            + (f" x {dist.world} processes" if dist.active else "")
        )
    meta = {
        "genocnn_version": __version__,
        "torch_version": torch.__version__,
        "command": list(command) if command is not None else None,
        "device": str(dev),
        "world_size": dist.world,
        "inputs": [_input_record(k, p) for k, p in inputs.items() if p is not None],
        "data_options": {"negatives": negatives, "valid_chroms": list(valid_chroms),
                         "test_chroms": list(test_chroms), "skip_bad": skip_bad},
        "config": cfg.to_dict(),
    }
    lock = None
    if dist.is_main:
        lock = claim(run_dir, resume, force)
        try:
            if recorded is not None:
                check_recorded_inputs(recorded, meta, run_dir / "run.json")
            with atomic_open(run_dir / "run.json") as fh:
                json.dump(meta, fh, indent=2)
        except BaseException:
            lock.release()
            raise
    return PreparedRun(run_dir, cfg, data, split, dev, dist, resume_state, progress, lock)


def _json_nulls(value):
    """``value`` with NaN floats as None, so that the file is strict JSON (``null``: a task with one class)."""
    if isinstance(value, dict):
        return {k: _json_nulls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_nulls(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def _input_record(option: str, path) -> dict:
    """What ``run.json`` records of an input: the file's size and hash; for a store, its manifest's."""
    if option == "store":
        return {"option": option, **file_record(os.path.join(path, "manifest.json")), "path": os.path.abspath(path)}
    return {"option": option, **file_record(os.path.abspath(path))}


def predict_rows(model: ConvNet, data: Dataset, rows: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
    """Logits of ``data``'s rows, shape (n, T), one-hot encoded a block of rows at a time (on ``device``)."""
    device = torch.device("cpu") if device is None else device
    batch = eval_batch_size(device, data.length)
    parts = [predict_logits(model, codes_one_hot(data, rows[i : i + _PREDICT_ROWS], device), batch, device)
             for i in range(0, len(rows), _PREDICT_ROWS)]
    return torch.cat(parts) if parts else torch.zeros(0, len(data.tasks))


def fit_run(run: PreparedRun) -> tuple[ConvNet, pd.DataFrame]:
    """Stage 2 of :func:`train`: build the seeded model and :func:`fit` it under :func:`kernel_settings`."""
    cfg = run.config
    seed_everything(cfg.training.seed)
    model = build_model(cfg.model, len(run.data.tasks), cfg.data.length, list(run.data.tasks), cfg)
    try:
        with kernel_settings(run.device):
            return fit(model, run.data, run.split, cfg, run.device, run.progress, run.run_dir / "last.pt",
                       run.resume_state, run.dist, run.run_dir / "history.tsv")
    finally:
        run.dist.close()


@contextlib.contextmanager
def kernel_settings(device: torch.device) -> Iterator[None]:
    """Kernel choices for training on ``device``, restored afterwards.

    CUDA: fp32 matrix products on TF32 tensor cores
    (``set_float32_matmul_precision("high")``; cuDNN convolutions use TF32 by
    default). cuDNN's autotuner stays off: on an H100 it cost 2.8 s in the
    first epoch (one tuning per new shape: training, last and validation
    batches) and gained nothing in the later ones on the default model. CPU: nothing.

    ``torch.use_deterministic_algorithms`` is left alone on both. On the CPU
    the model's kernels are deterministic without it: two trainings with the
    same seed wrote bit-identical weights with and without the switch, on 1
    and on 2 threads (the CLI test checks one thread), while the switch cost
    1.7-3.5 s per run (it imports ``torch._inductor``). On CUDA it would cost
    that and slower kernels.
    """
    before = torch.get_float32_matmul_precision()
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def save_run(run: PreparedRun, model: ConvNet, history: pd.DataFrame) -> Run:
    """Stage 3 of :func:`train`: test metrics, then ``model.pt``, ``config.yaml``, ``history.tsv``, ``metrics.json``."""
    data, split, cfg = run.data, run.split, run.config
    logits = predict_rows(model, data, split.test, run.device)
    metrics = evaluate(split_labels(data, split.test), logits, data.tasks)
    metrics.update(n_train=len(split.train), n_valid=len(split.valid), n_test=len(split.test))
    if cfg.training.calibration_bp > 0 and run.dist.is_main:
        held_out = np.sort(np.concatenate([split.valid, split.test]))
        pool = max(1, CALIBRATION_POOL * cfg.training.calibration_bp // data.length)
        if len(held_out) > pool:  # huge sets: evenly spaced rows, enough for the background
            held_out = held_out[np.linspace(0, len(held_out) - 1, pool).round().astype(np.int64)]
        with evaluating(model, run.device):  # the background scan runs where training ran
            model.calibration = calibrate(model, gather_rows(data.codes, held_out), cfg.training.calibration_bp,
                                          cfg.training.seed)
    if run.dist.is_main:
        save_checkpoint(model, cfg, data.tasks, run.run_dir / "model.pt")
        with atomic_open(run.run_dir / "config.yaml") as fh:
            fh.write(dump_config(cfg))
        with atomic_open(run.run_dir / "history.tsv") as fh:
            history.to_csv(fh, sep="\t", index=False)
        with atomic_open(run.run_dir / "metrics.json") as fh:
            json.dump(_json_nulls(metrics), fh, indent=2, allow_nan=False)
    return Run(run.run_dir, model, cfg, metrics, history)
