"""The CUDA scan engine alone: one chunk of the default model, the Triton window max against torch's ops.

Times :meth:`genocnn.scanengine.Engine.chunk_scores` on one chunk of random
DNA (``CHUNK["cuda"]`` windows; default model, ``--tasks`` tasks, 200 bp,
random weights), best of ``--repeats``, synchronised, three ways in one run:
the window max by log-doubling in torch ops, by two strided reductions in
torch ops (the fallback where Triton is absent), and by
:func:`genocnn.windowmax.window_max` (the default on CUDA). Prints ms per
chunk, Mbp/s and the largest probability difference from the first. What
``bench/scan.py`` adds on top (reading, encoding, runs, sites) is its
end-to-end rate against this one.

Usage::

    python bench/scan_engine.py [--tasks 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # time this checkout's genocnn

import genocnn.scanengine as se  # noqa: E402
from genocnn.config import Config  # noqa: E402
from genocnn.encode import encode_codes  # noqa: E402
from genocnn.models import build_model  # noqa: E402


def timed(engine: se.Engine, codes: torch.Tensor, count: int, repeats: int) -> tuple[float, torch.Tensor]:
    with torch.inference_mode():
        probs, _ = engine.chunk_scores(codes, count)  # warm-up (kernel build, allocator)
        best = float("inf")
        for _ in range(repeats):
            torch.cuda.synchronize()
            start = time.perf_counter()
            engine.chunk_scores(codes, count)
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return best, probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("CUDA absent: nothing to time")
        return
    torch.manual_seed(0)
    model = build_model(Config().model, args.tasks, 200).eval().cuda()
    count = se.CHUNK["cuda"]
    text = np.frombuffer(b"ACGT", np.uint8)[np.random.default_rng(0).integers(0, 4, count + 199)].tobytes().decode()
    codes = torch.from_numpy(encode_codes(text, len(text))[0]).cuda()
    rows, keep = [], se.sliding_max
    for name, max_fn, kernel in [("torch ops, log-doubling max", se.doubling_max, False),
                                 ("torch ops, strided max (fallback)", keep, False),
                                 ("Triton window max (default)", keep, True)]:
        se.sliding_max = max_fn
        engine = se.Engine(model, 1, 256, torch.device("cuda"))
        engine._kernel = kernel
        seconds, probs = timed(engine, codes, count, args.repeats)
        rows.append((name, seconds, probs, engine._kernel == kernel))
        se.sliding_max = keep
    first = rows[0][2]
    print(f"{torch.cuda.get_device_name(0)}, {count} windows per chunk, default model, {args.tasks} tasks")
    for name, seconds, probs, as_asked in rows:
        note = "" if as_asked else "  (kernel unavailable: torch ops ran)"
        print(f"{name:<36} {seconds * 1e3:7.2f} ms  {count / seconds / 1e6:7.1f} Mbp/s  "
              f"max |dp| {(probs - first).abs().max().item():.1e}{note}")


if __name__ == "__main__":
    main()
