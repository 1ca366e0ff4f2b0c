"""Benchmark genome scanning: Mbp/s against the FLOP ceiling (default model), and site recall / memory.

Speed (always): the DEFAULT model (``build_model(Config().model, T, L)``, random
weights: speed does not depend on them; or ``--run RUN``'s model) scans a random
genome through :func:`genocnn.scanning.scan_genome` (device-side thresholding,
sites written as BED) at ``genocnn scan``'s default false-call rate (the random
model is calibrated first, as training calibrates a model). Its multiply-adds per bp are counted (every conv block
once per bp, as the fully convolutional scan computes them; the dense head once
per window; both strands), and the machine's achievable fp32 FLOP/s is measured
in the same run with a large torch matmul: ceiling = FLOP/s / FLOP per bp. Printed
per CPU thread count (``--threads 1 2``) and, when CUDA is present, on the card
(fp32 matmul ceiling; TF32 shown too). Best of ``--repeats`` runs each (shared
machines are noisy), matmul and scan interleaved.

Sites (``--sites``): the earlier check, in a subprocess per ``--mbp`` size: train a
tiny model (or take ``--run``), simulate a chromosome with planted sites, and report
fast vs naive bp/s, recall, precision and the scan's peak RSS.

Run as ``python bench/scan.py`` (CPU, and CUDA when present), or
``python bench/scan.py --sites --mbp 20 100``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # time this checkout's genocnn

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

    torch.set_num_threads(args.threads[0])
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


def flops_per_bp(model) -> float:
    """FLOPs (2 per multiply-add) per window start of a stride-1 scan, both strands when averaged."""
    macs = sum(c.in_channels * c.kernel_size[0] * c.out_channels for c, _, _ in model.conv_stages())
    macs += sum(m.in_features * m.out_features for m in model.head if isinstance(m, torch.nn.Linear))
    return 2.0 * macs * (2 if model.config.rc_average else 1)


def matmul_flops(device: torch.device, n: int, repeats: int) -> float:
    """Best fp32 FLOP/s of an ``n x n`` matmul (with the current TF32 setting on CUDA)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(3 if device.type == "cpu" else 20):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start) / (3 if device.type == "cpu" else 20))
    return 2 * n**3 / best


def scan_rate(model, genome: list, device: torch.device, out: Path) -> float:
    """bp/s of one :func:`scan_genome` over ``genome`` as ``genocnn scan`` runs it (its default false-call
    rate through the model's calibration, sites to ``out``)."""
    from genocnn.scanning import scan_genome

    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    scan_genome(model, genome, out, device=device, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return sum(len(s) for _, s in genome) / (time.perf_counter() - start)


def speed(args: argparse.Namespace) -> None:
    from genocnn.checkpoint import load_model
    from genocnn.config import Config
    from genocnn.models import build_model

    if args.run:
        model = load_model(args.run, "cpu")
    else:
        from genocnn.calibration import calibrate

        torch.manual_seed(0)
        model = build_model(Config().model, args.tasks, args.length).eval()
        # calibrated as training does, so the scan calls sites at its default rate (a fixed threshold such as
        # 0.5 would call every window of a random model: one run as long as each chunk)
        codes = np.random.default_rng(args.seed).integers(1, 5, size=(2500, args.length)).astype(np.uint8)
        model.calibration = calibrate(model, codes, 500_000, seed=args.seed)
    flop = flops_per_bp(model)
    print(f"model: {'run ' + args.run if args.run else 'default Config().model'}, {model.n_tasks} tasks, "
          f"L={model.length}: {flop / 1e3:.1f} kFLOP per bp (both strands; conv once per bp, head once per window)")
    rng = np.random.default_rng(args.seed)
    out = Path(tempfile.mkdtemp()) / "sites.bed"
    rows = []
    cpu_genome = [(f"chr{i}", random_dna(rng, int(args.cpu_mbp * 1e6 / 2)).decode()) for i in range(2)]
    for threads in args.threads:
        torch.set_num_threads(threads)
        cpu = torch.device("cpu")
        peak, rate = 0.0, 0.0
        scan_rate(model, [(n, s[:20_000]) for n, s in cpu_genome], cpu, out)  # warm-up
        for _ in range(args.repeats):
            peak = max(peak, matmul_flops(cpu, 1024, 1))
            rate = max(rate, scan_rate(model, cpu_genome, cpu, out))
        rows.append((f"cpu, {threads} thread{'s' if threads > 1 else ''}", threads, peak, rate))
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        name = torch.cuda.get_device_name(gpu)
        torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = matmul_flops(gpu, 8192, 2)
        torch.backends.cuda.matmul.allow_tf32 = False
        peak = matmul_flops(gpu, 8192, 2)
        genome = [(f"chr{i}", random_dna(rng, int(args.gpu_mbp * 1e6 / 4)).decode()) for i in range(4)]
        model.to(gpu)
        scan_rate(model, [(n, s[:5_000_000]) for n, s in genome[:1]], gpu, out)  # warm-up (cuBLAS, allocator)
        rate = max(scan_rate(model, genome, gpu, out) for _ in range(args.repeats))
        print(f"CUDA: {name}; TF32 matmul {tf32 / 1e12:.1f} TFLOP/s (the scan uses fp32)")
        rows.append((f"cuda {name}", 1, peak, rate))
    print(f"{'where':<28} {'fp32 matmul':>12} {'ceiling':>12} {'scan':>12} {'per thread':>11} {'of ceiling':>10}")
    for where, threads, peak, rate in rows:
        ceiling = peak / flop
        print(f"{where:<28} {peak / 1e9:>8.1f} GF/s {ceiling / 1e6:>7.2f} Mbp/s {rate / 1e6:>7.2f} Mbp/s "
              f"{rate / threads / 1e6:>7.3f} {rate / ceiling:>10.0%}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", action="store_true", help="also the site recall / memory check (trains a tiny model)")
    parser.add_argument("--tasks", type=int, default=10, help="outputs of the default model (speed)")
    parser.add_argument("--length", type=int, default=200, help="input length of the default model (speed)")
    parser.add_argument("--cpu-mbp", type=float, default=0.25, help="genome size scanned per CPU repeat (speed)")
    parser.add_argument("--gpu-mbp", type=float, default=400.0, help="genome size scanned per CUDA repeat (speed)")
    parser.add_argument("--repeats", type=int, default=5, help="best of this many (speed)")
    parser.add_argument("--mbp", type=float, nargs="+", default=[20.0], help="chromosome sizes, one subprocess each")
    parser.add_argument("--run", help="run directory to use instead of training a tiny model")
    parser.add_argument("--motif", default="TGACGTCATGCA")
    parser.add_argument("--site-every", type=int, default=10_000)
    parser.add_argument("--naive-kb", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=0.7,
                        help="the tiny model's probabilities are compressed (planted ~0.70-0.77, background median 0.57)")
    parser.add_argument("--train-n", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts to time (sites: the first)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    speed(args)
    if not args.sites:
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or str(train_model(Path(tmp), args.motif, args.train_n, args.epochs, args.seed))
        print(f"{'Mbp':>5} {'naive bp/s':>11} {'fast bp/s':>10} {'ratio':>6} {'max|diff|':>9} "
              f"{'whole bp/s':>10} {'planted':>7} {'called':>6} {'recall':>6} {'precision':>9} "
              f"{'RSS before':>10} {'peak':>7} {'scan +MB':>8}")
        for mbp in args.mbp:
            cmd = [sys.executable, __file__, "--child", "--run", run, "--mbp", str(mbp)]
            for key in ("motif", "site_every", "naive_kb", "threshold", "seed"):
                cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
            cmd += ["--threads", str(args.threads[0])]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            print(f"{r['mbp']:>5g} {r['naive_bp_s']:>11,.0f} {r['fast_sub_bp_s']:>10,.0f} "
                  f"{r['fast_sub_bp_s'] / r['naive_bp_s']:>5.0f}x {r['max_abs_diff']:>9.1e} "
                  f"{r['fast_bp_s']:>10,.0f} {r['planted']:>7} {r['called']:>6} {r['recall']:>6.3f} "
                  f"{r['precision']:>9.3f} {r['rss_before_mb']:>8.0f}MB {r['rss_peak_scan_mb']:>5.0f}MB "
                  f"{r['scan_extra_mb']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
