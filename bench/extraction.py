"""Koo & Eddy's filter match fraction of a kept ``bench/recovery.py`` run under other motif-extraction settings.

No training: the model kept by ``recovery.py --keep DIR`` is loaded, its
first-layer site counts are taken once per activation threshold on the same
sequences ``recovery.py`` uses (the first 5,000 that carry a site), and for
each ``motifs.threshold`` x ``motifs.trim_ic`` x ``motifs.min_sites`` the
share of all first-layer filters whose trimmed motif has a Tomtom match
with E < 0.1 to a planted TF is reported (``recovery.match_fraction``'s
measure), with the mean information content and width of the trimmed
motifs and the number of planted TFs matched by at least one filter.

Usage::

    python bench/extraction.py --design koo-eddy --keep DIR [--threshold 0.5 0.6 0.7] [--trim-ic 0.3 0.5] [--min-sites 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from genocnn.checkpoint import load_model
from genocnn.compare import jaspar_motifs, tomtom_matches
from genocnn.data import load_labelled
from genocnn.motifs import filter_site_counts
from genocnn.pwm import UNIFORM_BACKGROUND, Motif, trim
from genocnn.simulation import simulate_multitask
from names import tf_key  # bench/names.py
from recovery import DESIGNS


def sweep(model, x, planted, thresholds, trim_ics, min_sites, e_value: float = 0.1) -> pd.DataFrame:
    """One row per (threshold, trim_ic, min_sites): match fraction, planted TFs hit, mean IC and width."""
    db = jaspar_motifs()
    wanted = set().union(*(tf_key(m.description) for m in planted))
    pseudocount = model.run_config.motifs.pseudocount
    rows = []
    for threshold in thresholds:
        counts, sites = filter_site_counts(model, x, threshold)
        n_filters = len(sites)
        for trim_ic in trim_ics:
            motifs = [trim(Motif(name=f"filter_{f}", pfm=counts[f], sites=int(sites[f]),
                                 background=UNIFORM_BACKGROUND, pseudocount=pseudocount), trim_ic)
                      for f in range(n_filters) if sites[f] > 0]
            hits = tomtom_matches(motifs, db, n_best=None)
            hits = hits[hits["p_value"] * len(db) < e_value]
            hits = hits.assign(tfs=[tf_key(n) & wanted for n in hits["target_name"]])
            hits = hits.loc[np.array([bool(t) for t in hits["tfs"]], dtype=bool)]
            for floor in min_sites:
                kept = {m.name for m in motifs if m.sites >= floor}
                mine = hits.loc[hits["query"].isin(kept).to_numpy(dtype=bool)] if len(hits) else hits
                rows.append({"threshold": threshold, "trim_ic": trim_ic, "min_sites": floor,
                             "match_fraction": round(mine["query"].nunique() / n_filters, 3),
                             "tfs_hit": len(set().union(*mine["tfs"])) if len(mine) else 0,
                             "exported": len(kept),
                             "median_sites": int(np.median(sites)),
                             "mean_ic": round(float(np.mean([m.information_content for m in motifs if m.name in kept])), 2),
                             "mean_width": round(float(np.mean([m.width for m in motifs if m.name in kept])), 1)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", choices=sorted(DESIGNS), default="koo-eddy")
    parser.add_argument("--keep", required=True, help="folder kept by recovery.py --keep")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, nargs="+", default=[0.5])
    parser.add_argument("--trim-ic", type=float, nargs="+", default=[0.3])
    parser.add_argument("--min-sites", type=int, nargs="+", default=[10])
    args = parser.parse_args()
    where = Path(args.keep)
    design = {k: v for k, v in DESIGNS[args.design].items() if k != "n"}
    sim = simulate_multitask(where / "sim", seed=args.seed, n=DESIGNS[args.design]["n"], **design)
    model = load_model(where / "run")
    data = load_labelled(sim.fasta, sim.labels, model.run_config.data.length)
    bound = data.x[(data.y == 1).any(dim=1)][:5000]
    table = sweep(model, bound, sim.planted, args.threshold, args.trim_ic, args.min_sites)
    print(f"design {args.design}, run {where}, {model.first_conv.out_channels} filters, "
          f"{len(sim.planted)} planted TFs")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
