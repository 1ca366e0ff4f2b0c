"""Training and inference throughput (sequences/s) of the default model: CPU vs GPU, fp32 vs AMP.

Every device and precision available here is measured in the same run, on
the same random one-hot batches (200 bp unless ``--length``), with the same
training step as ``genocnn train`` (AdamW, masked BCE, reverse-complement
augmentation, autocast + grad scaler as configured); ratios are against the
CPU fp32 figure of this run. Without CUDA only the CPU rows are printed.

Usage::

    python bench/throughput.py [--length 200] [--batch 64] [--steps 50] [--tasks 10]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from genocnn.config import Config
from genocnn.models import build_model
from genocnn.fit import train_step

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(device: torch.device, dtype: torch.dtype | None, length: int, batch: int, steps: int,
            tasks: int, compile_model: bool = False) -> dict:
    """Train ``steps`` batches and predict as many, after two warm-up steps; sequences per second."""
    torch.manual_seed(0)
    model = build_model(Config().model, tasks, length).to(device)
    net = torch.compile(model) if compile_model else model
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (batch, length)), 4).transpose(1, 2).float().to(device)
    y = torch.randint(0, 2, (batch, tasks)).float().to(device)

    net.train()
    for _ in range(2):
        train_step(net, optimiser, scaler, x, y, amp_dtype=dtype)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(net, optimiser, scaler, x, y, amp_dtype=dtype)
    _sync(device)
    train_rate = steps * batch / (time.perf_counter() - start)
    net.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        big = x.repeat(4, 1, 1)
        net(big)
        _sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            net(big)
        _sync(device)
    predict_rate = steps * len(big) / (time.perf_counter() - start)
    return {"train_seq_s": round(train_rate), "predict_seq_s": round(predict_rate)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile on CUDA")
    args = parser.parse_args()
    cases = [("cpu", "fp32", False)]
    if torch.cuda.is_available():
        cases += [("cuda", p, False) for p in PRECISIONS]
        cases += [("cuda", p, True) for p in ("fp32", "bf16")] if args.compile else []
    rows = []
    for dev, precision, compiled in cases:
        figures = measure(torch.device(dev), PRECISIONS[precision], args.length, args.batch, args.steps,
                          args.tasks, compiled)
        rows.append({"device": dev, "precision": precision, "compile": compiled, **figures})
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    table["train_x_cpu"] = (table["train_seq_s"] / base["train_seq_s"]).round(1)
    table["predict_x_cpu"] = (table["predict_seq_s"] / base["predict_seq_s"]).round(1)
    print(table.to_string(index=False))
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, GPU: {gpu}; "
          f"batch {args.batch} (+ its reverse complement when training), length {args.length}, {args.tasks} tasks")


if __name__ == "__main__":
    main()
