"""Motif recovery on many-TF simulations: AUROC against oracles, filter match fraction, named distinct motifs.

Three designs, each simulated with :func:`genocnn.simulation.simulate_multitask`
(200 nt, multi-task 0/1 labels, sites sampled from the JASPAR matrices):

- ``multitask``: ``bench/multitask.py``'s 10 TFs, 0-3 sites per sequence,
  GC 0.42, 20,000 sequences (the set the defaults were tuned on).
- ``heldout``: 10 other TFs (never used for tuning), 0-3 sites, GC 0.50.
- ``koo-eddy``: after Koo & Eddy (2019, PLoS Comput Biol 15:e1007560):
  their 12 JASPAR motifs (Arid3a, CEBPB, FOSL1, GABPA, MAFK, MAX, MEF2A,
  NFYB, SP1, SRF, STAT1, YY1), 1-5 sites per sequence drawn with
  replacement, uniform background, 30,000 sequences. The latest JASPAR
  version of each matrix is planted.

The model is trained as ``genocnn train --fasta seqs.fa --labels labels.tsv``
does (the given config, default: the defaults). Reported:

- per task, test AUROC of the model and of the oracle (best log-odds score
  of the true PWM over both strands) on the same test split;
- ``match fraction``: the share of all first-layer filters whose motif
  (as ``genocnn motifs`` extracts and trims it; a filter with too few sites
  counts as unmatched) has a Tomtom match with E < 0.1 (p times the number
  of JASPAR CORE vertebrate matrices) to a planted TF (any matrix version of
  that TF name), Koo & Eddy's measure;
- ``named``: planted TFs named by at least one distinct motif of
  ``clusters.tsv`` (``genocnn motifs`` on the sequences that carry a site):
  by their name or another TF of their JASPAR family, or at family / class
  level by their family / class (``name_level``: ``tf``, ``family``,
  ``class``), as ``bench/names.py`` counts honest names; and the names
  that fit no planted TF.

Usage::

    python bench/recovery.py --design koo-eddy [--n 30000] [--config default] [--set model.conv.0.activation=exp]
    python bench/recovery.py --design koo-eddy --keep DIR [--reuse]   # keep the run; evaluate a kept run again
    python bench/recovery.py --design koo-eddy --keep DIR --reuse --set motifs.threshold=0.7  # other extraction
    python bench/recovery.py --design koo-eddy --device cuda          # train on a GPU
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from types import SimpleNamespace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from genocnn.checkpoint import load_model
from genocnn.compare import jaspar_motifs, tomtom_matches
from genocnn.config import apply_overrides, load_config
from genocnn.data import load_labelled
from genocnn.export import export_motifs
from genocnn.motifs import extract_motifs
from genocnn.pwm import trim
from genocnn.simulation import MULTITASK_TFS, oracle_scores, simulate_multitask
from genocnn.splits import split_indices
from genocnn.training import train
from names import allowed, honest, tf_key  # bench/names.py: the same honesty test

DESIGNS = {
    "multitask": dict(tfs=MULTITASK_TFS, n=20000, min_sites=0, max_sites=3, gc=0.42),
    "heldout": dict(tfs=("ESR1", "RUNX1", "NFKB1", "MEF2C", "PAX5", "EBF1", "IRF4", "TEAD1", "ZNF143", "ELK1"),
                    n=20000, min_sites=0, max_sites=3, gc=0.50),
    "koo-eddy": dict(tfs=("Arid3a", "CEBPB", "FOSL1", "GABPA", "MAFK", "MAX", "MEF2A", "NFYB", "SP1", "SRF",
                          "STAT1", "YY1"), n=30000, min_sites=1, max_sites=5, gc=0.50),
}


def match_fraction(model, x, planted, n_filters: int, min_sites: int, trim_ic: float,
                   e_value: float = 0.1, threshold: float = 0.5) -> tuple[float, pd.DataFrame]:
    """Share of first-layer filters whose trimmed motif matches a planted TF at Tomtom E < ``e_value``."""
    found = extract_motifs(model, x, threshold=threshold, min_sites=min_sites)
    motifs = [trim(m, trim_ic) for m in found]
    db = jaspar_motifs()
    hits = tomtom_matches(motifs, db, n_best=None)
    hits = hits[hits["p_value"] * len(db) < e_value]
    wanted = set().union(*(tf_key(m.description) for m in planted))
    hits = hits.assign(planted=[bool(tf_key(n) & wanted) for n in hits["target_name"]])
    matched = hits.groupby("query")["planted"].any()
    return float(matched.sum()) / n_filters, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", choices=sorted(DESIGNS), default="koo-eddy")
    parser.add_argument("--n", type=int, default=None, help="sequences (default: the design's)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None, help="keep the simulation, run and motifs in this folder")
    parser.add_argument("--reuse", action="store_true", help="evaluate the run kept in --keep again (no training)")
    parser.add_argument("--device", default="cpu", help="training device (auto, cpu, cuda)")
    args = parser.parse_args()
    design = {k: v for k, v in DESIGNS[args.design].items() if k != "n"}
    n = args.n or DESIGNS[args.design]["n"]
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(args.keep or tmp)
        sim = simulate_multitask(where / "sim", seed=args.seed, n=n, **design)
        cfg = apply_overrides(load_config(args.config), args.set)
        start = time.perf_counter()
        if args.reuse:  # the kept run of an earlier call: evaluate it again
            model = load_model(where / "run")
            run = SimpleNamespace(model=model, config=model.run_config,
                                  metrics=json.loads((where / "run" / "metrics.json").read_text()),
                                  history=pd.read_csv(where / "run" / "history.tsv", sep="\t"))
            if any(not item.startswith("motifs.") for item in args.set):
                parser.error("--reuse takes only motifs.* overrides (the model is not trained again)")
            model.run_config = cfg = apply_overrides(model.run_config, args.set)
            shutil.rmtree(where / "motifs", ignore_errors=True)
        else:
            run = train(out=where / "run", config=cfg, seed=args.seed, device=args.device, progress=False,
                        fasta=sim.fasta, labels=sim.labels)
        seconds = time.perf_counter() - start
        data = load_labelled(sim.fasta, sim.labels, run.config.data.length)
        test = split_indices(data.y, cfg.data.valid_fraction, cfg.data.test_fraction, run.config.training.seed).test
        bound = data.x[(data.y == 1).any(dim=1)][:5000]
        n_filters = run.model.conv_stages()[0].conv.out_channels
        fraction, hits = match_fraction(run.model, bound, sim.planted, n_filters, cfg.motifs.min_sites,
                                        cfg.motifs.trim_ic, threshold=cfg.motifs.threshold)
        table = export_motifs(run.model, bound, where / "motifs")
        clusters = table.attrs["clusters"]
        named = clusters[clusters["jaspar_name"].fillna("").astype(str) != ""]
        by_id = {m.name: m for m in jaspar_motifs()}
        rows = []
        for t, m in enumerate(sim.planted):
            truth = data.y[test, t].numpy()
            oracle = roc_auc_score(truth, oracle_scores(data.x[test], m.pwm))
            model = run.metrics["tasks"][data.tasks[t]]["auroc"]
            mine = by_id.get(m.name, m)
            by = named[[honest(r, allowed([mine]), by_id) for r in named.to_dict("records")]]
            # the most specific level any honest motif names it at (a class-level bZIP motif at rank 1
            # must not hide a family-level C/EBP motif further down)
            specific = {"tf": 0, "family": 1, "class": 2}
            level = min(by["name_level"], key=lambda v: specific.get(v, 3)) if len(by) else ""
            rows.append({"tf": f"{m.description} ({m.name}, {m.ppm.shape[1]} bp)", "oracle_auroc": round(oracle, 4),
                         "model_auroc": round(model, 4), "ratio": round(model / oracle, 4),
                         "filters": int(hits[hits["target_name"].map(lambda x: bool(tf_key(x) & tf_key(m.description)))]
                                        ["query"].nunique()),
                         "named_rank": int(by["rank"].min()) if len(by) else np.nan, "name_level": level})
    result = pd.DataFrame(rows)
    truth = allowed([by_id.get(m.name, m) for m in sim.planted])
    stray = [f"{r['rank']}:{r['jaspar_name']}" for r in named.to_dict("records") if not honest(r, truth, by_id)]
    by_filter = table[table["jaspar_name"].fillna("").astype(str) != ""].to_dict("records")
    filter_stray = [f"{r['motif']}:{r['jaspar_name']}" for r in by_filter if not honest(r, truth, by_id)]
    print(result.to_string(index=False))
    print(f"design {args.design}, n={n}, seed {args.seed}, config {args.config or 'default'} {' '.join(args.set)}")
    print(f"{len(run.history)} epochs, {seconds:.0f} s training on {args.device}")
    print(f"mean AUROC model {result['model_auroc'].mean():.4f} / oracle {result['oracle_auroc'].mean():.4f} = "
          f"{result['model_auroc'].mean() / result['oracle_auroc'].mean():.4f}")
    print(f"filter match fraction {fraction:.3f} ({round(fraction * n_filters)} of {n_filters} filters); "
          f"planted TFs named by a distinct motif "
          f"{int(result['named_rank'].notna().sum())}/{len(result)} (at TF level "
          f"{int((result['name_level'] == 'tf').sum())}); distinct motifs {len(clusters)}, named "
          f"{len(named)}, named after no planted TF: {len(stray)} {' '.join(stray)}")
    print(f"filters named (filters.tsv): {len(by_filter)}, after no planted TF: {len(filter_stray)} "
          f"{' '.join(filter_stray)}")


if __name__ == "__main__":
    main()
