"""Build the 14 one-TF runs that ``bench/names.py --index`` checks: 13 simulations and the CTCF peaks.

Each simulation is ``genocnn simulate --tf ID`` (2,000 bound and 2,000
unbound 200 bp sequences, seed 0, decoys GATA1, SP1, SPI1, CEBPA in every
sequence); each run is ``genocnn train`` with the defaults and seed 0 (plus
any ``--set``), as the CLI runs it. Existing runs are kept. Writes
``OUT/INDEX.tsv`` (columns name, planted_id, decoy_ids, run_dir, pos_fasta).

Usage::

    python bench/single_runs.py OUT [--set model.conv.0.batch_norm=true]
    python bench/names.py --index OUT/INDEX.tsv
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

RUNS = {"ctcf_real": "MA0139.2", "sim_gata1": "MA0035.5", "sim_sox2": "MA0143.5", "sim_spi1": "MA0080.7",
        "heldout_cebpb": "MA0466.4", "fresh_runx1": "MA0002.3", "sim_foxa1": "MA0148.5", "sim_rest": "MA0138.3",
        "sim_tp53": "MA0106.3", "heldout_mef2c": "MA0497.2", "heldout_nfkb1": "MA0105.4",
        "heldout_hnf4a": "MA1494.2", "fresh_esr1": "MA0112.4", "fresh_max": "MA0058.4"}
DECOYS = "MA0035.5,MA0079.5,MA0080.7,MA0102.5"  # GATA1, SP1, SPI1, CEBPA: genocnn simulate's default decoys
PEAKS = Path(__file__).resolve().parents[1] / "data" / "ctcf_gm12878_top500.fa"


def genocnn(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "genocnn", *args], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--set", action="append", default=[], help="config override passed to genocnn train")
    args = ap.parse_args()
    sets = [a for s in args.set for a in ("--set", s)]
    rows = []
    for name, matrix in RUNS.items():
        d = args.out / name
        if name == "ctcf_real":
            pos, train = PEAKS, ["--pos", str(PEAKS)]
        else:
            pos = d / "sim" / "pos.fa"
            if not pos.exists():
                genocnn("simulate", "--out", str(d / "sim"), "--tf", matrix)
            train = ["--pos", str(pos), "--neg", str(d / "sim" / "neg.fa")]
        if not (d / "run" / "model.pt").exists():
            genocnn("train", *train, "--out", str(d / "run"), "--seed", "0", "--force", *sets)
        rows.append({"name": name, "planted_id": matrix, "decoy_ids": "" if name == "ctcf_real" else DECOYS,
                     "run_dir": str(d / "run"), "pos_fasta": str(pos)})
        print(name, "done", flush=True)
    pd.DataFrame(rows).to_csv(args.out / "INDEX.tsv", sep="\t", index=False)


if __name__ == "__main__":
    main()
