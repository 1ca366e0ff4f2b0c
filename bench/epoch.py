"""Fraction of a training epoch spent outside forward/backward/optimiser step, with the real ``fit`` loop.

On the 10-TF benchmark shape (``genocnn simulate``-style data of 10 JASPAR
motifs, 20,000 x 200 bp unless ``--n``/``--length``; default model and
config), for the CPU and, when present, CUDA:

* ``epoch_s``: one epoch of :func:`genocnn.fit.fit` as ``genocnn train``
  runs it (batch gathering, host-to-device copies, loss bookkeeping and
  NaN check, validation, ``last.pt`` and ``history.tsv``), device batch
  size and learning rate as the config gives them for that device;
* ``steps_s``: the same number of :func:`genocnn.fit.train_step` calls on
  the same batches made beforehand on the device (the best of two timings);
* ``outside``: ``1 - steps_s / epoch_s``, the share of the epoch that is not
  forward, backward and optimiser step (target < 10 % on the CPU);
  ``valid_s`` is the part of it spent on validation.

The device is synchronised only around the timed blocks.

Usage::

    python bench/epoch.py [--n 20000] [--length 200] [--devices cpu,cuda] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from genocnn.config import Config
from genocnn.data import load_labelled
from genocnn.devices import cpu_threads
from genocnn.batches import positive_weights_of
from genocnn.fit import batch_and_lr, eval_batch_size, fit, make_optimiser, train_step
from genocnn.inference import predict_logits
from genocnn.models import build_model
from genocnn.simulation import MULTITASK_TFS, simulate_multitask
from genocnn.splits import split_indices
from genocnn.training import kernel_settings


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, work) -> float:
    _sync(device)
    start = time.perf_counter()
    work()
    _sync(device)
    return time.perf_counter() - start


def pure_steps(data, split, cfg: Config, device: torch.device) -> float:
    """Seconds for one epoch's train steps on batches already on the device (best of two)."""
    batch, lr = batch_and_lr(cfg.training, device)
    torch.manual_seed(0)
    model = build_model(cfg.model, len(data.tasks), data.x.shape[-1], list(data.tasks), cfg).to(device).train()
    optimiser = make_optimiser(model, lr, cfg.training.weight_decay, device)
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    train_x, train_y = data.x[split.train], data.y[split.train]  # the training gather of fit, made once here
    pos_weight = positive_weights_of(data.labels, split.train).to(device)
    order = torch.randperm(len(train_x))
    batches = [(train_x[order[i : i + batch]].to(device), train_y[order[i : i + batch]].to(device))
               for i in range(0, len(order), batch)]

    def run() -> None:
        for xb, yb in batches:
            train_step(model, optimiser, scaler, xb, yb, pos_weight, cfg.training.rc_augment)

    for xb, yb in batches[:3]:  # warm-up (allocator, cuDNN autotuner)
        train_step(model, optimiser, scaler, xb, yb, pos_weight, cfg.training.rc_augment)
    return min(_timed(device, run), _timed(device, run)), len(batches), batch


def measure(data, split, device: torch.device, tmp: Path) -> dict:
    cfg = Config().replace(training={"epochs": 1})
    with kernel_settings(device):
        steps_s, steps, batch = pure_steps(data, split, cfg, device)
        torch.manual_seed(0)
        model = build_model(cfg.model, len(data.tasks), data.x.shape[-1], list(data.tasks), cfg)
        epoch_s = _timed(device, lambda: fit(model, data, split, cfg, device, progress=False,
                                            last_path=tmp / f"last_{device.type}.pt",
                                            history_path=tmp / f"history_{device.type}.tsv"))
        valid_x = data.x[split.valid]
        model.to(device)
        valid_s = _timed(device, lambda: predict_logits(model, valid_x, eval_batch_size(device, valid_x.shape[-1]),
                                                         device, on_device=True).cpu())
    return {"device": device.type, "batch": batch, "steps": steps, "epoch_s": round(epoch_s, 2),
            "steps_s": round(steps_s, 2), "valid_s": round(valid_s, 2),
            "outside": f"{100 * (1 - steps_s / epoch_s):.1f} %"}


def _data(args, tmp: Path) -> tuple[Path, Path]:
    """``--data``'s FASTA and labels, else the 10-TF simulation written to ``tmp``."""
    if args.data is not None:
        return args.data / "seqs.fa", args.data / "labels.tsv"
    sim = simulate_multitask(tmp / "sim", MULTITASK_TFS, args.n, length=args.length, seed=0)
    return sim.fasta, sim.labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--devices", default="cpu,cuda", help="cuda is skipped where absent")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder with seqs.fa and labels.tsv made beforehand (genocnn simulate --tfs ...)")
    args = parser.parse_args()
    threads = cpu_threads()
    devices = [torch.device(d) for d in args.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    with tempfile.TemporaryDirectory() as tmp:
        fasta, labels = _data(args, Path(tmp))
        data = load_labelled(fasta, labels, args.length)
        split = split_indices(data.y, 0.1, 0.1, 0)
        rows = [measure(data, split, device, Path(tmp)) for device in devices]
    print(pd.DataFrame(rows).to_string(index=False))
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CUDA absent"
    print(f"{args.n} x {args.length} bp, {len(MULTITASK_TFS)} tasks, default model; torch {torch.__version__}, "
          f"{threads} CPU threads; GPU: {gpu}")


if __name__ == "__main__":
    main()
