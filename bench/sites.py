"""Calibrated site calls: false calls per Mbp against the rate asked for, recall against the true PWM.

A simulated chromosome (i.i.d. background at the simulation's GC) has three
parts: a stretch with a planted site of the run's TF (sampled from its JASPAR
matrix, either strand) every ``--site-every`` bp, a stretch with no planted
site, and N gaps between them. ``genocnn scan`` with its defaults (``--fpr 1``)
runs over it; the script reports

* calls inside N gaps (must be 0);
* false calls per Mbp on the site-free stretch, against the rate asked for;
* recall of planted sites (a call covering the site) and precision (calls in
  the site stretch covering a planted site);
* the oracle: a scan with the true PWM (best log-odds of both strands at every
  position, hits closer than the motif width merged) at the threshold that
  gives the model's measured false-call rate on the site-free stretch, and its
  recall.

Runs trained before calibration existed are calibrated here first, on
shuffles of their simulation's negatives, exactly as training does.

Run as ``python bench/sites.py --run RUN --sim SIM [--fpr 1] [--mbp 2]`` where
``SIM`` is the ``genocnn simulate`` folder the run was trained on, or
``--run RUN --tf CTCF --background peaks.fa`` for a run trained on real peaks.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import genocnn
from genocnn.calibration import calibrate
from genocnn.encode import one_hot
from genocnn.motif_io import read_motifs
from genocnn.thresholds import threshold_for_rate
from genocnn.simulation import background, find_motif, sample_sites

GAP = 50_000


def chromosome(motif, mbp: float, every: int, gc: float, seed: int) -> tuple[str, np.ndarray, dict]:
    """Sites stretch + N gap + site-free stretch + N gap; returns the sequence, site starts and region bounds."""
    rng = np.random.default_rng(seed)
    half = int(mbp * 1e6 / 2)
    with_sites = list(background(1, half, gc, rng)[0])
    starts = np.arange(every // 2, half - every, every)
    for s, site in zip(starts, sample_sites(motif.ppm, len(starts), rng)):
        with_sites[s : s + len(site)] = site
    free = background(1, half, gc, rng)[0]
    seq = "".join(with_sites) + "N" * GAP + free + "N" * GAP
    regions = {"sites": (0, half), "gap1": (half, half + GAP), "free": (half + GAP, 2 * half + GAP),
               "gap2": (2 * half + GAP, 2 * half + 2 * GAP)}
    return seq, starts, regions


def pwm_track(seq: str, pwm: np.ndarray) -> np.ndarray:
    """Best log-odds of both strands at every start, shape (len(seq) - w + 1,)."""
    weight = torch.as_tensor(np.stack([pwm, pwm[::-1, ::-1].copy()]), dtype=torch.float32)
    out = []
    step = 1_000_000
    w = pwm.shape[1]
    with torch.no_grad():
        for a in range(0, len(seq) - w + 1, step):
            x = one_hot(seq[a : a + step + w - 1])
            out.append(torch.nn.functional.conv1d(x, weight).amax(dim=1)[0].numpy())
    return np.concatenate(out)


def hits(track: np.ndarray, threshold: float, width: int) -> np.ndarray:
    """Merged hit intervals (start, end) of a PWM track above ``threshold``."""
    idx = np.flatnonzero(track >= threshold)
    if len(idx) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    breaks = np.flatnonzero(np.diff(idx) >= width) + 1
    groups = np.split(idx, breaks)
    return np.array([(g[0], g[-1] + width) for g in groups], dtype=np.int64)


def score(intervals: np.ndarray, starts: np.ndarray, width: int, regions: dict) -> dict:
    """Recall, precision, false calls per Mbp and N-gap calls of intervals (start, end)."""
    def inside(region):
        a, b = regions[region]
        return intervals[(intervals[:, 0] < b) & (intervals[:, 1] > a)]

    site_calls = inside("sites")
    covered = [bool(((site_calls[:, 0] <= s) & (site_calls[:, 1] >= s + width)).any()) for s in starts]
    true_calls = sum(bool(((starts >= a) & (starts + width <= b)).any()) for a, b in site_calls)
    free_mbp = (regions["free"][1] - regions["free"][0]) / 1e6
    return {
        "recall": float(np.mean(covered)),
        "precision": true_calls / max(len(site_calls), 1),
        "false_per_mbp": len(inside("free")) / free_mbp,
        "gap_calls": len(inside("gap1")) + len(inside("gap2")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--sim", help="genocnn simulate folder the run was trained on (motif.meme, neg.fa)")
    ap.add_argument("--tf", help="JASPAR id or name of the planted motif instead of SIM/motif.meme")
    ap.add_argument("--background", help="FASTA to shuffle for an uncalibrated run [default: SIM/neg.fa]")
    ap.add_argument("--rates", type=float, nargs="*", default=[0.5, 2, 10, 100],
                    help="false calls per Mbp to ask for besides the default")
    ap.add_argument("--mbp", type=float, default=2.0)
    ap.add_argument("--site-every", type=int, default=5_000)
    ap.add_argument("--gc", type=float, default=0.42)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model = genocnn.load_model(args.run)
    if model.calibration is None:
        fasta = args.background or Path(args.sim) / "neg.fa"
        x = one_hot([s for _, s in genocnn.read_fasta(fasta)], length=model.length)
        t0 = time.perf_counter()
        model.calibration = calibrate(model, x, seed=args.seed)
        print(f"calibrated on {model.calibration['background_bp'] / 1e6:.1f} Mbp of shuffles "
              f"in {time.perf_counter() - t0:.1f} s")
    motif = find_motif(args.tf) if args.tf else read_motifs(Path(args.sim) / "motif.meme")[0]
    seq, starts, regions = chromosome(motif, args.mbp, args.site_every, args.gc, args.seed)
    width, free_mbp = motif.width, (regions["free"][1] - regions["free"][0]) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sites = genocnn.scan_genome(model, [("chrSim", seq)], Path(tmp) / "s.bed", progress=False)
        seconds = time.perf_counter() - t0
    blocks = list(genocnn.scan(model, [("chrSim", seq)], progress=False))
    track = pwm_track(seq, motif.pwm)
    free = track[regions["free"][0] : regions["free"][1] - width + 1]
    grid = np.unique(free)[::-1]  # every PWM score seen on the free stretch, high to low
    rows = [{"asked_fpr": "default", **score(sites[["start", "end"]].to_numpy(), starts, width, regions)}]
    for rate in args.rates:
        threshold = threshold_for_rate(model.calibration, rate)
        called = genocnn.call_sites(blocks, threshold)
        rows.append({"asked_fpr": rate, **score(called[["start", "end"]].to_numpy(), starts, width, regions)})
    table = pd.DataFrame(rows)
    oracle = []
    for rate in table["false_per_mbp"]:  # the true PWM at the false-call rate the model reached
        best, lo, hi = None, 0, len(grid) - 1  # bisect for the lowest threshold within the rate
        while lo <= hi:
            mid = (lo + hi) // 2
            if len(hits(free, grid[mid], width)) / free_mbp <= max(rate, 1 / free_mbp):
                best, lo = grid[mid], mid + 1
            else:
                hi = mid - 1
        oracle.append(score(hits(track, best, width), starts, width, regions) if best is not None
                      else {"recall": np.nan, "precision": np.nan, "false_per_mbp": np.nan})
    table["pwm_false_per_mbp"] = [o["false_per_mbp"] for o in oracle]
    table["pwm_recall"] = [o["recall"] for o in oracle]
    table["pwm_precision"] = [o["precision"] for o in oracle]
    print(table.round(3).to_string(index=False))
    print(f"default: {sites.attrs['threshold_source']}; {args.mbp:g} Mbp + 2 N gaps scanned in {seconds:.1f} s; "
          f"{len(starts)} planted {motif.description or motif.name} sites of {width} bp; pwm_*: the true PWM "
          "at the lowest threshold whose false calls per Mbp do not exceed the model's (NaN: none does)")


if __name__ == "__main__":
    main()
