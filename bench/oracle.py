"""Default settings against the oracle: a scan with the true PWM.

For each TF, ``genocnn simulate`` data (one JASPAR motif planted in bound
sequences, decoy motifs in every sequence) are split as in training; the
default model's test AUROC is compared with the oracle's AUROC on the same
test sequences, and the exported motifs are named with Tomtom against JASPAR
to see whether the planted matrix is recovered.

Usage::

    python bench/oracle.py [--tfs FOXA1,GATA1,SPI1,CTCF] [--n 2000] [--config default]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from genocnn.compare import jaspar_motifs, tomtom_matches
from genocnn.config import load_config
from genocnn.data import load_pos_neg
from genocnn.motifs import extract_motifs, filter_influence
from genocnn.simulation import oracle_scores, simulate
from genocnn.splits import split_indices
from genocnn.training import train


def recovery(model, pos: Path, planted_id: str, top: int = 10) -> tuple[int | None, float]:
    """Influence rank of the first exported motif whose top Tomtom matches include the planted matrix."""
    cfg = model.run_config.motifs
    motifs = extract_motifs(model, pos, cfg.threshold, cfg.min_sites, cfg.pseudocount)
    influence = filter_influence(model, pos)
    motifs = sorted(motifs, key=lambda m: -influence[m.extra["filter"]])
    hits = tomtom_matches(motifs, jaspar_motifs(), n_best=top)
    for rank, m in enumerate(motifs, start=1):
        mine = hits[(hits["query"] == m.name) & (hits["target_id"] == planted_id) & (hits["q_value"] < 0.05)]
        if len(mine):
            return rank, float(mine["p_value"].iloc[0])
    return None, float("nan")


def run_one(tf: str, n: int, config: str | None, seed: int, work: Path) -> dict:
    sim = simulate(work / tf, tf=tf, n=n, seed=seed)
    cfg = load_config(config)
    start = time.perf_counter()
    run = train(sim.pos, sim.neg, work / f"{tf}_run", cfg, seed=seed, device="cpu", progress=False)
    seconds = time.perf_counter() - start
    data = load_pos_neg(sim.pos, sim.neg, run.config.data.length)
    test = split_indices(data.y, cfg.data.valid_fraction, cfg.data.test_fraction, run.config.training.seed).test
    oracle = roc_auc_score(data.y[test, 0].numpy(), oracle_scores(data.x[test], sim.motif.pwm))
    rank, p_value = recovery(run.model, sim.pos, sim.motif.name)
    return {
        "tf": f"{sim.motif.description} ({sim.motif.name})",
        "oracle_auroc": round(oracle, 4),
        "model_auroc": round(run.metrics["auroc"], 4),
        "gap": round(oracle - run.metrics["auroc"], 4),
        "epochs": len(run.history),
        "train_s": round(seconds, 1),
        "motif_rank": rank,
        "motif_p": f"{p_value:.2g}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tfs", default="FOXA1,GATA1,SPI1,CTCF")
    parser.add_argument("--n", type=int, default=2000, help="bound and unbound sequences each")
    parser.add_argument("--config", default=None, help="preset or YAML (default: the defaults)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_one(tf, args.n, args.config, args.seed, Path(tmp)) for tf in args.tfs.split(",")]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(f"mean gap (oracle - model): {table['gap'].mean():.4f}; max gap: {table['gap'].max():.4f}")


if __name__ == "__main__":
    main()
