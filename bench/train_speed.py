"""End-to-end ``genocnn train --fasta --labels`` wall time: CPU (all threads) against CUDA, same data.

The 10-TF benchmark data (``genocnn.simulation.simulate_multitask``: 10
JASPAR motifs, 20,000 x 200 bp unless ``--n``) are written once; then
``python -m genocnn train --fasta seqs.fa --labels labels.tsv --epochs 5``
runs as a separate process on ``--device cpu`` (every core this process may
use, unless ``--threads``) and, when CUDA is present, ``--device cuda``, with
the defaults of each device (batch, learning rate, precision). Wall time
covers the whole command (start-up, reading, training, test metrics,
calibration, writing the run); ``train_s`` is the sum of the epochs' times
and ``outside_epochs_s`` the rest (``python bench/fixed_costs.py`` breaks
part of it down). Prints each row, the test AUROC of each run and CPU time /
CUDA time; without CUDA only the CPU row, saying so.

Usage::

    python bench/train_speed.py [--n 20000] [--epochs 5] [--threads N] [--set KEY=VALUE ...] [--data DIR]

``--epochs 0`` runs the default command, trained to its early stop (on the 10-TF
benchmark the epochs then dominate, as in a user's run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from genocnn.simulation import MULTITASK_TFS, simulate_multitask

ROOT = Path(__file__).resolve().parent.parent


def run_train(fasta: Path, labels: Path, out: Path, device: str, epochs: int, sets: list[str],
              threads: int | None) -> dict:
    """Run ``genocnn train`` in a fresh process; wall seconds, epochs run and test AUROC."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, "-m", "genocnn", "train", "--fasta", str(fasta), "--labels", str(labels),
               "--out", str(out), "--device", device, "--quiet"] + (["--epochs", str(epochs)] if epochs else [])
    for item in sets:
        command += ["--set", item]
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    history = pd.read_csv(out / "history.tsv", sep="\t")
    training = json.loads((out / "run.json").read_text())["config"]["training"]
    batch = training["cuda_batch_size"] if device == "cuda" and training.get("cuda_batch_size") else training["batch_size"]
    return {"device": device, "seconds": round(seconds, 1), "epochs": len(history),
            "train_s": round(float(history["seconds"].sum()), 1),
            "outside_epochs_s": round(seconds - float(history["seconds"].sum()), 1),
            "batch": batch, "test_auroc": round(metrics["auroc"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5, help="0: the default command (early stopping)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all this process may use)")
    parser.add_argument("--set", action="append", default=[], help="config override for both runs")
    parser.add_argument("--data", type=Path, default=None,
                        help="folder with seqs.fa and labels.tsv made beforehand (genocnn simulate --tfs ...)")
    args = parser.parse_args()
    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is not None:
            fasta, labels = args.data.resolve() / "seqs.fa", args.data.resolve() / "labels.tsv"
        else:
            sim = simulate_multitask(Path(tmp) / "sim", MULTITASK_TFS, args.n, seed=0)
            fasta, labels = sim.fasta, sim.labels
        rows = [run_train(fasta, labels, Path(tmp) / "cpu", "cpu", args.epochs, args.set, args.threads)]
        if torch.cuda.is_available():
            rows.append(run_train(fasta, labels, Path(tmp) / "cuda", "cuda", args.epochs, args.set, None))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    epochs = f"{args.epochs} epochs" if args.epochs else "the default training (early stopping)"
    head = f"{args.n} x 200 bp, {len(MULTITASK_TFS)} tasks, {epochs}; CPU: {threads} threads"
    if torch.cuda.is_available():
        ratio = table["seconds"].iloc[0] / table["seconds"].iloc[1]
        train_ratio = table["train_s"].iloc[0] / table["train_s"].iloc[1]
        print(f"{head}; GPU: {torch.cuda.get_device_name(0)}; CUDA is {ratio:.1f}x the CPU end to end "
              f"({train_ratio:.1f}x in the epochs alone)")
    else:
        print(f"{head}; CUDA absent: CPU row only")


if __name__ == "__main__":
    main()
