"""Honest names in ``clusters.tsv``: what ``genocnn motifs`` names, against what was planted.

For each trained run (one TF planted, decoy motifs in every sequence, or
real peaks with an expected matrix), ``genocnn motifs`` is run as the CLI
runs it (:func:`genocnn.export.export_motifs` on the bound sequences), and
``clusters.tsv`` is checked:

- ``named``: distinct motifs given a name; ``honest``: names of the planted
  TF, of a decoy, or of another TF of their JASPAR family (the issue's
  test: "the planted TF's family or a decoy's"), or at ``family`` /
  ``class`` level their family / class (pyjaspar annotations);
- ``rank 1``: whether the rank-1 motif is the planted matrix (among its
  10 best Tomtom matches at q < 0.05, as ``bench/oracle.py``), and its name;
- ``core``: the share of the planted matrix's informative columns
  (>= 0.5 bit) that the rank-1 motif covers in its Tomtom alignment with
  the planted matrix (1.00: the full JASPAR core), and the rank-1 motif's
  width / informative columns.

Usage::

    python bench/names.py RUN FASTA --planted MA0139.2 [--decoys MA0035.5,MA0079.5]
    python bench/names.py --index /path/INDEX.tsv      # many runs (columns name, planted_id, decoy_ids, ...)
    python bench/names.py --index /path/INDEX.tsv --threshold 0.7   # another motifs.threshold
"""

from __future__ import annotations

import argparse
import re
import tempfile

import numpy as np
import pandas as pd

from genocnn.checkpoint import load_model
from genocnn.compare import jaspar_motifs, tomtom_matches
from genocnn.export import export_motifs
from genocnn.motif_io import read_motifs
from genocnn.naming import INFORMATIVE_BITS, alignment_coverage
from genocnn.pwm import column_information

COLUMNS = ["run", "planted", "distinct", "named", "honest", "stray names", "rank 1 planted", "rank-1 name",
           "core", "width / inf.", "filters named", "filters honest", "stray filter names"]


def tf_key(name: str) -> set[str]:
    """Upper-case TF names of a JASPAR name (``MAX::MYC`` -> {MAX, MYC})."""
    return {part.strip().upper() for part in re.split(r"::|/|,", str(name)) if part.strip()}


def families(m) -> set[str]:
    """JASPAR families of a matrix (pyjaspar annotations)."""
    return set(m.extra.get("tf_family", []))


def allowed(motifs: list) -> tuple[set[str], set[str], set[str]]:
    """TF names, families and classes of the planted and decoy matrices."""
    names, fams, classes = set(), set(), set()
    for m in motifs:
        names |= tf_key(m.description)
        fams |= families(m)
        classes |= set(m.extra.get("tf_class", []))
    return names, fams, classes


def honest(row, truth: tuple[set[str], set[str], set[str]], by_id: dict) -> bool:
    """A name is honest when it names a planted or decoy TF, or another TF of their family (the
    issue's test), or, at family / class level, their family / class."""
    names, fams, classes = truth
    label = set(str(row["jaspar_name"]).split("|"))
    if row["name_level"] == "family":
        return bool(label & fams)
    if row["name_level"] == "class":
        return bool(label & classes)
    named = by_id.get(row["jaspar_id"])
    return bool(tf_key(row["jaspar_name"]) & names) or (named is not None and bool(families(named) & fams))


def rank1(motif, planted, db: list) -> tuple[bool, float]:
    """Whether ``motif`` matches ``planted`` (top 10, q < 0.05), and the planted core it covers."""
    hits = tomtom_matches([motif], db, n_best=10)
    mine = hits[(hits["target_id"] == planted.name) & (hits["q_value"] < 0.05)]
    if mine.empty:
        return False, 0.0
    r = mine.iloc[0]
    target = column_information(planted.ppm, planted.background) >= INFORMATIVE_BITS
    target = target[::-1] if r["strand"] == "-" else target
    query = column_information(motif.ppm, motif.background) >= INFORMATIVE_BITS
    return True, alignment_coverage(query, target, int(r["offset"]))[1]


def check_run(name: str, run: str, fasta: str, planted_id: str, decoys: list[str], db: list,
              threshold: float | None = None) -> dict:
    """One row of the table for one run (``threshold``: ``motifs.threshold``, None: the run's)."""
    model = load_model(run)
    with tempfile.TemporaryDirectory() as tmp:
        table = export_motifs(model, fasta, tmp, threshold=threshold, progress=False)
        clusters = table.attrs["clusters"]
        motifs = read_motifs(f"{tmp}/clusters.meme")
    by_id = {m.name: m for m in db}
    planted = by_id[planted_id]
    truth = allowed([by_id[i] for i in [planted_id, *decoys]])
    named = clusters[clusters["jaspar_name"].fillna("").astype(str) != ""]
    ok = [honest(r, truth, by_id) for r in named.to_dict("records")]
    by_filter = table[table["jaspar_name"].fillna("").astype(str) != ""]
    filter_ok = [honest(r, truth, by_id) for r in by_filter.to_dict("records")]
    is_planted, core = rank1(motifs[0], planted, db)
    first = clusters.iloc[0]
    inf = int((column_information(motifs[0].ppm, motifs[0].background) >= INFORMATIVE_BITS).sum())
    return {"run": name, "planted": f"{planted.description} ({planted_id})", "distinct": len(clusters),
            "named": len(named), "honest": int(np.sum(ok)),
            "stray names": " ".join(f"{r}:{n}" for r, n, o in zip(named["rank"], named["jaspar_name"], ok) if not o),
            "rank 1 planted": "yes" if is_planted else "no", "rank-1 name": first["jaspar_name"] or "(none)",
            "core": f"{core:.2f}", "width / inf.": f"{motifs[0].width} / {inf}",
            "filters named": len(by_filter), "filters honest": int(np.sum(filter_ok)),
            "stray filter names": " ".join(f"{m}:{n}" for m, n, o in zip(by_filter["motif"], by_filter["jaspar_name"],
                                                                       filter_ok) if not o)}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?")
    ap.add_argument("fasta", nargs="?")
    ap.add_argument("--planted", help="JASPAR id of the planted (expected) matrix")
    ap.add_argument("--decoys", default="", help="JASPAR ids of the decoy matrices, comma-separated")
    ap.add_argument("--index", help="TSV of runs: name, planted_id, decoy_ids, run_dir, pos_fasta")
    ap.add_argument("--threshold", type=float, default=None,
                    help="motifs.threshold for the filter motifs (default: each run's config)")
    args = ap.parse_args(argv)
    db = jaspar_motifs()
    if args.index:
        runs = pd.read_csv(args.index, sep="\t", dtype=str).fillna("")
        todo = [(r["name"], r["run_dir"], r["pos_fasta"].split(" ")[0], r["planted_id"] or "MA0139.2",
                 [d for d in r["decoy_ids"].split(",") if d]) for r in runs.to_dict("records")]
    else:
        todo = [(args.run, args.run, args.fasta, args.planted, [d for d in args.decoys.split(",") if d])]
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + " --- |" * len(COLUMNS), flush=True)
    rows = []
    for item in todo:
        row = check_run(*item, db, threshold=args.threshold)
        rows.append(row)
        print("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |", flush=True)
    table = pd.DataFrame(rows)
    print(f"names honest: {table['honest'].sum()} of {table['named'].sum()} "
          f"({table['honest'].sum() / max(table['named'].sum(), 1):.1%}); planted motif at rank 1 in "
          f"{(table['rank 1 planted'] == 'yes').sum()} of {len(table)} runs; full core covered in "
          f"{(table['core'] == '1.00').sum()} of {len(table)}; filters.tsv names honest "
          f"{table['filters honest'].sum()} of {table['filters named'].sum()}")
    return table


if __name__ == "__main__":
    main()
