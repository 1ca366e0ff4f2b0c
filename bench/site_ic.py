"""How many informative columns the real sites in a peak set carry: the ceiling for any motif learned from it.

Each peak's best match of a JASPAR matrix (both strands, log-odds of the
matrix itself) is cut out with ``--flank`` bases each side, put on the
matrix's strand, and the sites are counted into a PFM (pseudocount 1, as
``genocnn motifs`` counts its sites). Printed: the columns of at least 0.5
bit (the issue's "informative positions") for all sites and for the
strongest fractions of them, and the matrix's own count.

Run as ``python bench/site_ic.py data/ctcf_gm12878_top500.fa --matrix MA0139.1``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genocnn.encode import one_hot, reverse_complement  # noqa: E402
from genocnn.fasta import read_fasta  # noqa: E402
from genocnn.pwm import Motif, column_information  # noqa: E402
from genocnn.simulation import find_motif  # noqa: E402


def best_sites(seqs: list[str], pwm: np.ndarray, flank: int) -> tuple[np.ndarray, torch.Tensor]:
    """Best-match score (n,) and one-hot site with flanks (n, 4, w + 2 flank), on the matrix's strand."""
    w = pwm.shape[1]
    weight = torch.as_tensor(np.stack([pwm, pwm[::-1, ::-1].copy()]), dtype=torch.float32)
    scores, sites = [], []
    for seq in seqs:
        x = one_hot(seq)
        track = torch.nn.functional.conv1d(x, weight)[0]
        strand, at = divmod(int(track.argmax()), track.shape[1])
        if at - flank < 0 or at + w + flank > x.shape[2]:
            continue  # too near an end for the flanks
        site = x[:, :, at - flank : at + w + flank]
        sites.append(reverse_complement(site) if strand else site)
        scores.append(float(track.max()))
    return np.array(scores), torch.cat(sites)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fasta")
    parser.add_argument("--matrix", default="MA0139.1")
    parser.add_argument("--flank", type=int, default=5)
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.9, 0.7, 0.5])
    args = parser.parse_args()
    matrix = find_motif(args.matrix)
    seqs = [seq for _, seq in read_fasta(args.fasta)]
    scores, sites = best_sites(seqs, matrix.pwm, args.flank)
    order = np.argsort(-scores)
    own = column_information(matrix.ppm)
    print(f"{args.matrix} ({matrix.description}): {matrix.width} columns, {(own >= 0.5).sum()} of >= 0.5 bit")
    print(f"{len(seqs)} peaks, {len(scores)} best sites with {args.flank} bases each side")
    for fraction in args.fractions:
        keep = order[: max(1, int(round(fraction * len(order))))]
        counts = sites[torch.as_tensor(keep)].sum(0).double().numpy()
        ic = column_information(Motif("sites", counts, len(keep)).ppm)
        print(f"strongest {fraction:.0%} ({len(keep)} sites): {(ic >= 0.5).sum()} columns >= 0.5 bit; "
              f"IC per column {' '.join(f'{v:.2f}' for v in ic)}")


if __name__ == "__main__":
    main()
