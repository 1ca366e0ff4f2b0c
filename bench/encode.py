"""Benchmark reading + encoding FASTA to the stored form against a plain Biopython + NumPy baseline.

Writes a random FASTA file (``--n`` records of ``--length`` bp) to a
temporary folder and prints the best of ``--repeats`` runs, in Mbp/s, for

* baseline: ``SimpleFastaParser`` and, per record, ``np.frombuffer`` into a
  (256, 4) lookup table, stacked into an (N, 4, L) array;
* ours: ``encode_codes(seq for _, seq in read_fasta(path))``: every record
  validated, encoded to the 1-byte codes that training stores and expands on
  the device (checked equal to the baseline's one-hot through
  ``codes_to_one_hot``).

Run as ``python bench/encode.py --n 200000 --length 200``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from Bio.SeqIO.FastaIO import SimpleFastaParser

import torch

from genocnn.encode import codes_to_one_hot, encode_codes
from genocnn.fasta import read_fasta


def make_fasta(path: Path, n: int, length: int, seed: int = 0) -> None:
    """Write ``n`` random ACGT records of ``length`` bp, 60 bp per line."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    codes = letters[rng.integers(0, 4, size=(n, length))]
    with open(path, "w") as fh:
        for i, row in enumerate(codes):
            seq = row.tobytes().decode()
            body = "\n".join(seq[j : j + 60] for j in range(0, length, 60))
            fh.write(f">seq{i} random\n{body}\n")


def baseline(path: Path) -> np.ndarray:
    """Per-record NumPy lookup, the usual hand-written approach."""
    lut = np.zeros((256, 4), dtype=np.float32)
    for i, base in enumerate(b"ACGT"):
        lut[base, i] = lut[base + 32, i] = 1.0
    with open(path) as fh:
        arrays = [lut[np.frombuffer(seq.encode(), np.uint8)].T for _, seq in SimpleFastaParser(fh)]
    return np.stack(arrays)


def ours(path: Path) -> np.ndarray:
    """The package's reader and encoder, to the stored form (1-byte codes)."""
    seqs = [seq for _, seq in read_fasta(path)]
    return encode_codes(seqs, max(map(len, seqs)))


def best_of(
    func: Callable[[Path], np.ndarray], path: Path, repeats: int
) -> tuple[float, np.ndarray]:
    """Return the fastest wall time of ``repeats`` calls and the last result."""
    times = []
    result = None
    for _ in range(repeats):
        del result  # free the previous array before timing the next run
        start = time.perf_counter()
        result = func(path)
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    """Parse options, run both, print Mbp/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="number of records")
    parser.add_argument("--length", type=int, default=200, help="bp per record")
    parser.add_argument("--repeats", type=int, default=3, help="runs; the best is kept")
    args = parser.parse_args()
    mbp = args.n * args.length / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.fa"
        make_fasta(path, args.n, args.length)
        t_base, x_base = best_of(baseline, path, args.repeats)
        del x_base
        t_ours, x_ours = best_of(ours, path, args.repeats)
        # same numbers as the baseline
        check = baseline(path)
        assert np.array_equal(check, codes_to_one_hot(torch.from_numpy(x_ours)).numpy()), "ours and baseline disagree"
    print(f"records {args.n} x {args.length} bp = {mbp:.1f} Mbp, best of {args.repeats}")
    print(f"baseline  {t_base:7.3f} s  {mbp / t_base:8.1f} Mbp/s")
    print(f"ours      {t_ours:7.3f} s  {mbp / t_ours:8.1f} Mbp/s")
    print(f"ratio ours/baseline (speed)  {t_base / t_ours:.2f}")


if __name__ == "__main__":
    main()
