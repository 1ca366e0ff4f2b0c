"""Many TFs at once: the default model on 10-TF simulated data against per-TF oracles.

``genocnn simulate --tfs ...`` data (each sequence carries 0-3 planted sites of
10 JASPAR motifs; labels TSV) are split as in training; the default model's
per-task test AUROC is compared with oracle scans using the true PWMs, and the
exported motifs are named against JASPAR to count recovered TFs.

Usage::

    python bench/multitask.py [--n 20000] [--config default] [--epochs N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import roc_auc_score

from genocnn.compare import jaspar_motifs, tomtom_matches
from genocnn.config import apply_overrides, load_config
from genocnn.data import load_labelled
from genocnn.motifs import extract_motifs
from genocnn.pwm import trim
from genocnn.simulation import MULTITASK_TFS, oracle_scores, simulate_multitask
from genocnn.splits import split_indices
from genocnn.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tfs", default=",".join(MULTITASK_TFS))
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sim = simulate_multitask(Path(tmp) / "sim", tuple(args.tfs.split(",")), args.n, seed=args.seed)
        cfg = apply_overrides(load_config(args.config), args.set)
        start = time.perf_counter()
        run = train(out=Path(tmp) / "run", config=cfg, seed=args.seed, device="cpu", progress=False,
                    fasta=sim.fasta, labels=sim.labels)
        seconds = time.perf_counter() - start
        data = load_labelled(sim.fasta, sim.labels, run.config.data.length)
        test = split_indices(data.y, cfg.data.valid_fraction, cfg.data.test_fraction, run.config.training.seed).test
        motifs = extract_motifs(run.model, data.x[:5000], min_sites=run.config.motifs.min_sites)
        motifs = [trim(m, run.config.motifs.trim_ic) for m in motifs]
        hits = tomtom_matches(motifs, jaspar_motifs(), n_best=10)
        hits = hits[hits["q_value"] < 0.05]
        rows = []
        for t, m in enumerate(sim.planted):
            truth = data.y[test, t].numpy()
            oracle = roc_auc_score(truth, oracle_scores(data.x[test], m.pwm))
            model = run.metrics["tasks"][data.tasks[t]]["auroc"]
            rows.append({"tf": f"{m.description} ({m.name})", "oracle_auroc": round(oracle, 4),
                         "model_auroc": round(model, 4), "ratio": round(model / oracle, 4),
                         "recovered": bool((hits["target_id"] == m.name).any())})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(f"n={args.n} sequences, {len(run.history)} epochs, {seconds:.0f} s training on CPU")
    print(f"mean AUROC model {table['model_auroc'].mean():.4f} / oracle {table['oracle_auroc'].mean():.4f}"
          f" = {table['model_auroc'].mean() / table['oracle_auroc'].mean():.4f}; "
          f"motifs recovered {int(table['recovered'].sum())}/{len(table)}")


if __name__ == "__main__":
    main()
