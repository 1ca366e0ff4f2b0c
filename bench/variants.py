"""Variant effects: do SNVs that make or break a planted site stand out from random SNVs?

1. A model is trained the way a user would: ``genocnn.simulate`` (``--tf``,
   default CTCF; 2,000 bound + 2,000 unbound 200-bp sequences with decoys)
   and ``genocnn.train`` with the default config.
2. A genome the model never saw: three chromosomes (``--mbp`` in all, i.i.d.
   background at GC 0.42). Every 2 kb a slot holds, in turn, a planted site
   (sampled from the JASPAR matrix, random strand, its highest-information
   column set to the consensus base), a near-site (the consensus with that
   column set to its least likely base), or nothing.
3. A VCF of three classes of SNVs:
   (a) ``destroy``: at a planted site's highest-information base, ALT = that
   column's least likely base; (b) ``create``: at a near-site's broken base,
   ALT = the consensus base (the near-site becomes a consensus match);
   (c) ``random``: random positions at least 300 bp from any site or
   near-site, a random other base.
4. ``genocnn variants RUN --vcf calls.vcf --genome genome.fa --out effects.tsv
   --null 100`` scores it (the real command, in a subprocess).

Printed (and pasted into ``bench/RESULTS.md``): the AUROC of ``|logfc|``
separating (a)+(b) from (c), the mean ``logfc`` per class, and the fraction of
each class with an empirical p-value below 0.05.

Run as ``python bench/variants.py [--tf CTCF] [--sites 200] [--mbp 1] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

import genocnn
from genocnn.pwm import column_information
from genocnn.simulation import background, find_motif, sample_sites

SLOT = 2000
FAR = 300
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def revcomp(s: str) -> str:
    return s.translate(COMPLEMENT)[::-1]


def make_genome(motif, n_sites: int, mbp: float, rng: np.random.Generator):
    """Chromosome sequences and the VCF rows of the three classes."""
    ppm = motif.ppm
    best = int(np.argmax(column_information(ppm)))
    consensus = "".join("ACGT"[i] for i in ppm.argmax(0))
    worst = "ACGT"[int(ppm[:, best].argmin())]
    sizes = [int(mbp * 1e6 * f) for f in (0.4, 0.35, 0.25)]
    chroms = {f"chr{k + 1}": list(background(1, size, 0.42, rng)[0]) for k, size in enumerate(sizes)}
    slots = [(c, s) for c, seq in chroms.items() for s in range(SLOT // 2, len(seq) - SLOT // 2, SLOT)]
    if len(slots) < 2 * n_sites + 10:
        raise SystemExit(f"--mbp {mbp} has {len(slots)} slots, too few for {n_sites} sites and near-sites")
    order = rng.permutation(len(slots))
    rows, occupied = [], {c: [] for c in chroms}
    sampled = sample_sites(ppm, n_sites, rng)  # each on a random strand
    for k, i in enumerate(order[: 2 * n_sites]):
        chrom, start = slots[i]
        if k < n_sites:  # a sampled site, read on the motif's strand, its best column made consensus
            site = list(sampled[k] if _is_forward(sampled[k], ppm) else revcomp(sampled[k]))
            site[best], alt, kind = consensus[best], worst, "destroy"
        else:  # a near-site: the consensus with its best column broken
            site = list(consensus)
            site[best], alt, kind = worst, consensus[best], "create"
        forward = bool(rng.random() < 0.5)
        text = "".join(site) if forward else revcomp("".join(site))
        chroms[chrom][start : start + len(text)] = text
        at = start + (best if forward else len(text) - 1 - best)
        rows.append((chrom, at + 1, kind, chroms[chrom][at], alt if forward else alt.translate(COMPLEMENT)))
        occupied[chrom].append(start)
    names = list(chroms)
    while sum(r[2] == "random" for r in rows) < 2 * n_sites:
        chrom = names[int(rng.integers(len(names)))]
        at = int(rng.integers(FAR, len(chroms[chrom]) - FAR))
        if any(abs(at - s) < FAR + motif.width for s in occupied[chrom]):
            continue
        ref = chroms[chrom][at]
        alt = "ACGT".replace(ref, "")[int(rng.integers(3))]
        rows.append((chrom, at + 1, "random", ref, alt))
    return {c: "".join(s) for c, s in chroms.items()}, rows


def _is_forward(site: str, ppm: np.ndarray) -> bool:
    """Whether a sampled site reads better on the forward strand than reverse-complemented."""
    def score(s):
        return sum(np.log(ppm["ACGT".index(b), j] + 1e-3) for j, b in enumerate(s))
    return score(site) >= score(revcomp(site))


def write_inputs(folder: Path, chroms: dict[str, str], rows) -> tuple[Path, Path]:
    genome = folder / "genome.fa"
    genome.write_text("".join(f">{c}\n" + "\n".join(s[i : i + 80] for i in range(0, len(s), 80)) + "\n"
                              for c, s in chroms.items()))
    header = ["##fileformat=VCFv4.2", *(f"##contig=<ID={c},length={len(s)}>" for c, s in chroms.items()),
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    body = [f"{c}\t{p}\t{i}\t{r}\t{a}\t.\t.\t." for c, p, i, r, a in rows]
    vcf = folder / "calls.vcf"
    vcf.write_text("\n".join(header + body) + "\n")
    return genome, vcf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tf", default="CTCF")
    parser.add_argument("--sites", type=int, default=200, help="planted sites, near-sites, and 2x random SNVs")
    parser.add_argument("--mbp", type=float, default=1.0)
    parser.add_argument("--null", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the files in")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="genocnn-variants-"))
    folder.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    sim = genocnn.simulate(folder / "sim", tf=args.tf, n=2000, length=200, seed=args.seed)
    run = genocnn.train(sim.pos, sim.neg, out=folder / "run", seed=args.seed, device="cpu", progress=False)
    t_train = time.time() - t0
    motif = find_motif(args.tf)
    chroms, rows = make_genome(motif, args.sites, args.mbp, np.random.default_rng(args.seed + 1))
    genome, vcf = write_inputs(folder, chroms, rows)
    out = folder / "effects.tsv"
    command = [sys.executable, "-m", "genocnn", "variants", str(folder / "run"), "--vcf", str(vcf),
               "--genome", str(genome), "--out", str(out), "--null", str(args.null), "--top", "5", "--quiet"]
    t0 = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    t_score = time.time() - t0
    if done.returncode:
        raise SystemExit(done.stderr)
    table = pd.read_csv(out, sep="\t")
    changing = table["id"].isin(["destroy", "create"])
    auroc = roc_auc_score(changing, table["logfc_bound"].abs())
    print(f"{motif.name} {motif.description}: model test AUROC {run.metrics['auroc']:.4f} "
          f"(trained in {t_train:.0f} s); {len(table)} SNVs scored in {t_score:.1f} s "
          f"(--null {args.null}, 1 CPU thread)\n")
    print("| class | SNVs | mean logfc | median logfc | mean \\|logfc\\| | p < 0.05 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("destroy", "create", "random"):
        part = table[table["id"] == name]
        print(f"| {name} | {len(part)} | {part['logfc_bound'].mean():+.3f} | {part['logfc_bound'].median():+.3f} "
              f"| {part['logfc_bound'].abs().mean():.3f} | {(part['pvalue_bound'] < 0.05).mean():.2f} |")
    print(f"\nAUROC of |logfc|, site-changing (destroy + create) vs random: {auroc:.4f}")
    print(f"files in {folder}")


if __name__ == "__main__":
    main()
