"""Distinct motifs against seqlet motifs and raw filter motifs, on a trained run.

For one run directory and the FASTA of its bound sequences, the motifs of

* ``distinct``: :func:`genocnn.clusters.distinct_motifs` (one site-based motif
  per group of filters, ranked by group influence; groups of influence > 0),
* ``filters``: the per-filter motifs (trimmed, ranked by influence: what
  ``genocnn motifs`` exported before the distinct motifs),
* ``ism`` / ``grad``: the seqlet motifs of ``genocnn attribute``
  (:func:`genocnn.seqlets.attribution_motifs`, ranked by seqlet count),

are named by Tomtom against JASPAR CORE vertebrates (latest release), and for
each method one row is printed (markdown): the number of motifs, the rank-1
motif (consensus, best match, q-value of the planted matrix), the first rank
whose top-10 matches hold the planted matrix at q < 0.05 (as
``bench/oracle.py``), how many motifs match it (copies), and the rank-1
motif's width and informative (>= 0.5 bit) columns against the planted
matrix's.

Usage::

    python bench/distinct.py RUN FASTA [--planted SIM/motif.meme | --planted-id MA0139.2]
        [--methods distinct,filters,ism,grad] [--max-seqs 300] [--set threshold=0.6 ...]

``--max-seqs`` limits the sequences of ``ism`` / ``grad`` only; ``--set``
passes options to ``distinct_motifs`` (``threshold=0.8``, ``vote=0`` for the
union of member windows, ``regroup=0``). Figures: ``bench/RESULTS.md``,
"Distinct motifs".
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from genocnn.checkpoint import load_model
from genocnn.clusters import distinct_motifs
from genocnn.compare import jaspar_motifs, tomtom_matches
from genocnn.inference import encode_for
from genocnn.motif_io import read_motifs
from genocnn.motifs import extract_motifs, filter_influence
from genocnn.pwm import column_information, trim
from genocnn.seqlets import attribution_motifs

COLUMNS = ["method", "motifs", "rank-1 consensus", "rank-1 match", "planted q (rank 1)", "planted rank",
           "copies", "width", "informative", "planted informative", "seconds"]


def informative(motif, bits: float = 0.5) -> int:
    """Columns of at least ``bits`` information content."""
    return int((column_information(motif.ppm, motif.background) >= bits).sum())


def method_motifs(method: str, model, x, fasta: str, max_seqs: int | None, options: dict) -> list:
    """Ranked motifs of one method (rank 1 first)."""
    cfg = model.run_config.motifs
    if method in ("distinct", "filters"):
        found = extract_motifs(model, x, cfg.threshold, cfg.min_sites, cfg.pseudocount)
        if method == "distinct":
            return distinct_motifs(model, x, found, **options).motifs
        influence = filter_influence(model, x)
        return sorted((trim(m, cfg.trim_ic) for m in found), key=lambda m: -influence[m.extra["filter"]])
    return attribution_motifs(model, fasta, method=method, max_seqs=max_seqs)


def evaluate(motifs: list, db: list, planted) -> dict:
    """Figures of one ranked motif list against the planted motif (a Motif of ``db``, or None)."""
    row = {"motifs": len(motifs)}
    if not motifs:
        return row
    hits = tomtom_matches(motifs, db, n_best=None)
    first = hits[hits["query"] == motifs[0].name]
    row.update({"rank-1 consensus": motifs[0].consensus, "rank-1 match": f"{first.target_id.iloc[0]} "
                f"{first.target_name.iloc[0]} (q {first.q_value.iloc[0]:.1e})",
                "width": motifs[0].width, "informative": informative(motifs[0])})
    if planted is not None:
        mine = first[first["target_id"] == planted.name]
        row["planted q (rank 1)"] = f"{mine.q_value.iloc[0]:.1e}"
        top = hits.groupby("query", sort=False).head(10)
        found = set(top[(top["target_id"] == planted.name) & (top["q_value"] < 0.05)]["query"])
        ranks = [r for r, m in enumerate(motifs, 1) if m.name in found]
        row.update({"planted rank": ranks[0] if ranks else "-", "copies": len(ranks),
                    "planted informative": f"{informative(planted)} of {planted.width}"})
    return row


def planted_motif(meme: str | None, planted_id: str | None, db: list):
    """The planted matrix, as the JASPAR entry of its ID (added to ``db`` when missing)."""
    if meme is None and planted_id is None:
        return None
    wanted = planted_id or read_motifs(meme)[0].name
    hit = [m for m in db if m.name == wanted or m.name.split(".")[0] == wanted]
    if hit:
        return hit[0]
    own = read_motifs(meme)[0]
    db.append(own)
    return own


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("fasta")
    ap.add_argument("--planted", help="MEME file of the planted motif (first motif)")
    ap.add_argument("--planted-id", help="JASPAR ID of the expected motif, e.g. MA0139.2")
    ap.add_argument("--methods", default="distinct,filters,ism,grad")
    ap.add_argument("--max-seqs", type=int, default=None, help="sequences for ism/grad only [default: all]")
    ap.add_argument("--set", action="append", default=[], help="distinct_motifs option, e.g. threshold=0.6")
    args = ap.parse_args(argv)
    options = {k: float(v) if "." in v else int(v) for k, v in (s.split("=", 1) for s in args.set)}
    model = load_model(args.run)
    x = encode_for(model, args.fasta)
    db = jaspar_motifs()
    planted = planted_motif(args.planted, args.planted_id, db)
    rows = []
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + " --- |" * len(COLUMNS))
    for method in args.methods.split(","):
        start = time.perf_counter()
        motifs = method_motifs(method, model, x, args.fasta, args.max_seqs, options)
        row = {"method": method, **evaluate(motifs, db, planted), "seconds": round(time.perf_counter() - start)}
        rows.append(row)
        print("| " + " | ".join(str(row.get(c, "-")) for c in COLUMNS) + " |", flush=True)
    return rows


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
