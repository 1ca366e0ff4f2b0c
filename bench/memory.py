"""Peak memory of ``genocnn train --fasta --labels`` against the number of sequences.

For each ``--n`` it writes (streaming, numpy blocks) N random 1000 bp
sequences and a labels TSV of ``--tasks`` tasks (about 5% bound, a few
unknown), runs ``python -m genocnn train --fasta --labels`` as a subprocess
with ``training.steps_per_epoch`` and few epochs, and samples the resident
memory of the process tree (psutil, every 50 ms). It prints the peak for
each N and the ratio of the largest to the smallest.

Run as ``python bench/memory.py --n 250000 1000000`` (needs ~1.2 GB of disk per
million sequences, twice with the store; ``--dir`` picks the folder).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

BLOCK = 10_000


def make_data(folder: Path, n: int, length: int, tasks: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``seqs.fa`` and ``labels.tsv`` for ``n`` random sequences, a block of rows at a time."""
    rng = np.random.default_rng(seed)
    fasta, labels = folder / "seqs.fa", folder / "labels.tsv"
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    spell = np.array(["0", "1", "NA"])
    with open(fasta, "wb") as fa, open(labels, "w") as tsv:
        tsv.write("id\t" + "\t".join(f"t{t}" for t in range(tasks)) + "\n")
        for start in range(0, n, BLOCK):
            m = min(BLOCK, n - start)
            seqs = letters[rng.integers(0, 4, size=(m, length))]
            body = np.full((m, length + 1), ord("\n"), dtype=np.uint8)
            body[:, :length] = seqs
            names = [f">s{start + i}\n".encode() for i in range(m)]
            fa.write(b"".join(h + row.tobytes() for h, row in zip(names, body)))
            codes = (rng.random((m, tasks)) < 0.05).astype(np.int64)
            codes[rng.random((m, tasks)) < 0.01] = 2
            cells = spell[codes]
            tsv.write("".join(f"s{start + i}\t" + "\t".join(row) + "\n" for i, row in enumerate(cells)))
    return fasta, labels


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and its children."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def peak_rss(cmd: list[str]) -> tuple[int, float, int]:
    """Run ``cmd``; return its peak tree RSS (bytes), wall seconds and exit status."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, tree_rss(ps))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    err = proc.stderr.read()
    if proc.returncode:
        print(err, file=sys.stderr)
    return peak, time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20, help="training.steps_per_epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="more config overrides for train (repeatable)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the data [default: a temporary one]")
    args = parser.parse_args()
    peaks = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n in args.n:
            folder = Path(tmp) / f"n{n}"
            folder.mkdir()
            t0 = time.perf_counter()
            fasta, labels = make_data(folder, n, args.length, args.tasks)
            made = time.perf_counter() - t0
            cmd = [sys.executable, "-m", "genocnn", "train", "--fasta", str(fasta), "--labels", str(labels),
                   "--out", str(folder / "run"), "--device", "cpu", "--quiet", "--epochs", str(args.epochs),
                   "--set", f"training.steps_per_epoch={args.steps}"]
            cmd += [a for o in args.overrides for a in ("--set", o)]
            peak, wall, rc = peak_rss(cmd)
            if rc:
                raise SystemExit(f"train failed with status {rc}")
            peaks[n] = peak
            print(f"n {n:>9,} x {args.length} bp, {args.tasks} tasks: data written in {made:.0f} s "
                  f"({fasta.stat().st_size / 1e9:.2f} GB FASTA); train {wall:.0f} s, peak RSS {peak / 2**20:,.0f} MiB",
                  flush=True)
            for path in (fasta, labels):
                path.unlink()
    small, large = min(peaks), max(peaks)
    print(f"peak RSS ratio {large:,} / {small:,} sequences: {peaks[large] / peaks[small]:.3f}")


if __name__ == "__main__":
    main()
