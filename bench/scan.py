"""Benchmark genome scanning: fast (fully convolutional) vs naive sliding windows, site recall, memory.

1. Train a tiny model (or take ``--run``): ``--train-n`` bound 100 bp windows with a
   planted motif (``--motif``, either strand) vs as many random ones, a few epochs
   with :func:`genocnn.training.train`.
2. For each ``--mbp`` size, in its own subprocess (so peak RSS is per run):
   simulate a chromosome (i.i.d. background, one motif site every ~``--site-every``
   bp, either strand), then

   * fast (best of 3) vs naive bp/s on the same first ``--naive-kb`` kb (naive: the
     model on every window, ``one_hot`` + batched forward), and their ratio;
   * fast bp/s over the whole chromosome with stride 1, streaming into
     :class:`~genocnn.sites.SiteCaller`;
   * recall (planted sites inside a called site) and precision (called sites
     holding a planted site);
   * memory: RSS just before the scan (the chromosome string is already in memory)
     and the peak RSS during the scan, sampled every 5 ms; their difference is the
     scan's own working memory, which must not grow with the chromosome.

Run as ``python bench/scan.py --mbp 20 100``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from genocnn.encode import one_hot, reverse_complement_sequence

LETTERS = np.frombuffer(b"ACGT", dtype=np.uint8)


def random_dna(rng: np.random.Generator, n: int) -> bytearray:
    return bytearray(LETTERS[rng.integers(0, 4, size=n)].tobytes())


def chromosome(mbp: float, motif: str, every: int, seed: int) -> tuple[str, np.ndarray]:
    """An i.i.d. chromosome with one site (random strand) per ``every`` bp; returns it and the site starts."""
    rng = np.random.default_rng(seed)
    n = int(mbp * 1e6)
    seq = random_dna(rng, n)
    starts = np.arange(every // 2, n - every // 2, every) + rng.integers(-every // 4, every // 4, size=len(range(every // 2, n - every // 2, every)))
    rc = reverse_complement_sequence(motif).encode()
    for i, s in enumerate(starts):
        seq[s : s + len(motif)] = rc if rng.random() < 0.5 else motif.encode()
    return seq.decode(), starts


def train_model(out: Path, motif: str, n: int, epochs: int, seed: int) -> Path:
    from genocnn.config import config_from_dict
    from genocnn.fasta import write_fasta
    from genocnn.training import train

    rng = np.random.default_rng(seed)
    pos = []
    for i in range(n):
        s = random_dna(rng, 100)
        at = int(rng.integers(0, 100 - len(motif)))
        site = motif if rng.random() < 0.5 else reverse_complement_sequence(motif)
        s[at : at + len(motif)] = site.encode()
        pos.append((f"p{i}", s.decode()))
    neg = [(f"n{i}", random_dna(rng, 100).decode()) for i in range(n)]
    write_fasta(pos, out / "pos.fa")
    write_fasta(neg, out / "neg.fa")
    config = config_from_dict({
        "model": {"conv": [{"filters": 8, "kernel_size": 12, "pool_size": 4, "dropout": 0.0}], "dense": [8]},
        "training": {"epochs": epochs, "patience": epochs, "lr": 0.01, "batch_size": 64, "seed": seed},
    })
    run = train(out / "pos.fa", out / "neg.fa", out / "run", config, device="cpu", progress=False)
    print(f"trained tiny model: test AUROC {run.metrics['auroc']:.4f}", flush=True)
    return run.run_dir


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Sample the current RSS in a thread; ``peak`` is the highest value seen."""

    def __enter__(self) -> PeakRSS:
        self.before = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


@torch.inference_mode()
def naive_probs(model, seq: str, batch: int = 256) -> np.ndarray:
    length = model.length
    out = []
    for i in range(0, len(seq) - length + 1, batch):
        windows = [seq[j : j + length] for j in range(i, min(i + batch, len(seq) - length + 1))]
        out.append(torch.sigmoid(model(one_hot(windows))).numpy())
    return np.concatenate(out)


def child(args: argparse.Namespace) -> dict:
    from genocnn.fasta import write_fasta
    from genocnn.scanning import scan
    from genocnn.sites import SiteCaller
    from genocnn.checkpoint import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.run, "cpu")
    seq, planted = chromosome(args.mbp[0], args.motif, args.site_every, args.seed)
    sub = seq[: args.naive_kb * 1000]
    start = time.perf_counter()
    naive = naive_probs(model, sub)
    naive_s = time.perf_counter() - start
    fast_sub_s = float("inf")
    for _ in range(3):  # best of 3: the sub-region takes milliseconds
        start = time.perf_counter()
        fast = np.concatenate([b.probs for b in scan(model, [("sub", sub)], progress=False)])
        fast_sub_s = min(fast_sub_s, time.perf_counter() - start)
    # scan from a FASTA file, as users do: the chromosome is read through its .fai chunk by chunk
    fasta = Path(tempfile.mkdtemp()) / "chrSim.fa"
    write_fasta([("chrSim", seq)], fasta, width=60)
    n_bp = len(seq)
    del seq
    gc.collect()
    caller = SiteCaller(args.threshold, 0)
    with PeakRSS() as memory:
        start = time.perf_counter()
        for block in scan(model, fasta, progress=False):
            caller.add(block)
        scan_s = time.perf_counter() - start
    shutil.rmtree(fasta.parent)
    sites = caller.finish()
    begin, end = sites["start"].to_numpy(), sites["end"].to_numpy()
    site_end = planted + len(args.motif)
    i = np.searchsorted(begin, planted, side="right") - 1  # sites sorted by start; last one starting before
    inside = (i >= 0) & (np.maximum.accumulate(end)[np.maximum(i, 0)] >= site_end) if len(sites) else np.zeros(len(planted), bool)
    j = np.searchsorted(planted, begin)  # first planted start >= site start
    holds = (j < len(planted)) & (site_end[np.minimum(j, len(planted) - 1)] <= end)
    return {
        "mbp": args.mbp[0],
        "naive_bp_s": len(sub) / naive_s,
        "fast_sub_bp_s": len(sub) / fast_sub_s,
        "max_abs_diff": float(np.abs(naive - fast).max()),
        "fast_bp_s": n_bp / scan_s,
        "scan_s": scan_s,
        "planted": len(planted),
        "called": len(sites),
        "recall": float(inside.mean()),
        "precision": float(holds.mean()) if len(sites) else float("nan"),
        "rss_before_mb": memory.before / 2**20,
        "rss_peak_scan_mb": memory.peak / 2**20,
        "scan_extra_mb": (memory.peak - memory.before) / 2**20,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbp", type=float, nargs="+", default=[20.0], help="chromosome sizes, one subprocess each")
    parser.add_argument("--run", help="run directory to use instead of training a tiny model")
    parser.add_argument("--motif", default="TGACGTCATGCA")
    parser.add_argument("--site-every", type=int, default=10_000)
    parser.add_argument("--naive-kb", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=0.7,
                        help="the tiny model's probabilities are compressed (planted ~0.70-0.77, background median 0.57)")
    parser.add_argument("--train-n", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids oversubscribing a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or str(train_model(Path(tmp), args.motif, args.train_n, args.epochs, args.seed))
        print(f"{'Mbp':>5} {'naive bp/s':>11} {'fast bp/s':>10} {'ratio':>6} {'max|diff|':>9} "
              f"{'whole bp/s':>10} {'planted':>7} {'called':>6} {'recall':>6} {'precision':>9} "
              f"{'RSS before':>10} {'peak':>7} {'scan +MB':>8}")
        for mbp in args.mbp:
            cmd = [sys.executable, __file__, "--child", "--run", run, "--mbp", str(mbp)]
            for key in ("motif", "site_every", "naive_kb", "threshold", "threads", "seed"):
                cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            print(f"{r['mbp']:>5g} {r['naive_bp_s']:>11,.0f} {r['fast_sub_bp_s']:>10,.0f} "
                  f"{r['fast_sub_bp_s'] / r['naive_bp_s']:>5.0f}x {r['max_abs_diff']:>9.1e} "
                  f"{r['fast_bp_s']:>10,.0f} {r['planted']:>7} {r['called']:>6} {r['recall']:>6.3f} "
                  f"{r['precision']:>9.3f} {r['rss_before_mb']:>8.0f}MB {r['rss_peak_scan_mb']:>5.0f}MB "
                  f"{r['scan_extra_mb']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
