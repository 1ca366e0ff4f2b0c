"""Fixed costs of ``genocnn train`` outside its epochs: imports, the CPU's deterministic switch, calibration.

Each import (and the first ``torch.use_deterministic_algorithms`` call) is
timed in a fresh process, best of ``--repeats``. Then the end-of-training
calibration (:func:`genocnn.calibration.calibrate`) of the default model
(random weights, ``--tasks`` tasks, 200 bp) on ``--bp`` of dinucleotide
shuffles of random sequences, on ``--device``: the whole call, and apart its
shuffling (``background_sequences``) and its threshold curves (from the
scores of one scan), the scan being the rest. Prints one table.

Usage::

    python bench/fixed_costs.py [--device cpu] [--tasks 10] [--bp 2000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import torch

from genocnn.calibration import BACKGROUND_BP, _task_curve, background_sequences, calibrate
from genocnn.config import Config
from genocnn.models import build_model
from genocnn.scanning import scan

IMPORTS = {
    "import torch": "import torch",
    "import genocnn.training": "import genocnn.training",
    "deterministic switch (first use)": "import torch; torch.use_deterministic_algorithms(True, warn_only=True)",
}


def fresh_process_seconds(code: str, repeats: int) -> float:
    """Best wall time of ``python -c code`` minus that of an empty interpreter."""
    def best(source: str) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", source], check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    empty = best("pass")
    base = best("import torch") if code.startswith("import torch;") else empty
    return best(code) - base


def best_of(fn, repeats: int) -> float:
    """Best wall seconds of ``fn()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--bp", type=int, default=BACKGROUND_BP)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = [(name, fresh_process_seconds(code, args.repeats)) for name, code in IMPORTS.items()]
    model = build_model(Config().model, args.tasks, 200).to(args.device).eval()
    x = np.random.default_rng(0).integers(1, 5, size=(2000, 200)).astype(np.uint8)  # codes A/C/G/T
    whole = best_of(lambda: calibrate(model, x, args.bp), args.repeats)
    pieces = background_sequences(x, args.bp)
    shuffling = best_of(lambda: background_sequences(x, args.bp), args.repeats)
    kept = [b.probs.copy() for b in scan(model, pieces, progress=False)]
    curves = best_of(lambda: [_task_curve([k[:, t] for k in kept], model.length) for t in range(args.tasks)],
                     args.repeats)
    rows += [(f"calibrate() on {args.device}, {args.bp / 1e6:g} Mbp, {args.tasks} tasks", whole),
             ("  shuffling", shuffling), ("  curves", curves), ("  scan (the rest)", whole - shuffling - curves)]
    table = pd.DataFrame(rows, columns=["stage", "seconds"]).round({"seconds": 2})
    print(table.to_string(index=False))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads")


if __name__ == "__main__":
    main()
