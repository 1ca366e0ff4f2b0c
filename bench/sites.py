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
* ``summit_bp``: the median distance from a call's summit to the centre of
  the planted site it covers;
* the oracle: a scan with the true PWM (best log-odds of both strands at every
  position, hits closer than the motif width merged) at the threshold that
  gives the model's measured false-call rate on the site-free stretch, and its
  recall.

Runs trained before calibration existed are calibrated here first, on
shuffles of their simulation's negatives, exactly as training does.

Real sites instead of sampled ones (``--sites-from peaks.fa``): from each
peak, its best match of the motif (either strand) with ``--flank`` bp of the
peak's own sequence on each side is planted as it is; there are usually fewer
peaks than places, so the copies are reused cyclically (the script says how
often). With ``--held-out`` the peaks are restricted to the positives of the
run's validation and test split, rebuilt from ``model.pt``'s config exactly as
``genocnn train --pos peaks.fa`` drew it (the FASTA's SHA-256 must match
``run.json``; the recomputed test AUROC is printed next to ``metrics.json``'s),
and an uncalibrated run is calibrated on shuffles of those held-out rows,
exactly as training does.

Run as ``python bench/sites.py --run RUN --sim SIM [--fpr 1] [--mbp 2]`` where
``SIM`` is the ``genocnn simulate`` folder the run was trained on, or
``--run RUN --tf CTCF --background peaks.fa`` for a run trained on real peaks,
or ``--run RUN --tf MA0139.2 --sites-from peaks.fa --held-out`` for real sites
of the peaks the run did not train on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import genocnn
from genocnn.calibration import calibrate
from genocnn.data import gather_rows, labels_to_float, load_pos_neg
from genocnn.encode import one_hot
from genocnn.metrics import evaluate
from genocnn.motif_io import read_motifs
from genocnn.thresholds import threshold_for_rate
from genocnn.simulation import background, find_motif, sample_sites
from genocnn.splits import split_indices

GAP = 50_000


def chromosome(make_sites, mbp: float, every: int, gc: float, seed: int,
               free_mbp: float | None = None) -> tuple[str, np.ndarray, dict]:
    """Sites stretch + N gap + site-free stretch + N gap; returns the sequence, motif starts and region bounds.

    ``make_sites(n, rng)`` gives ``n`` strings to plant and the motif's offset in each;
    ``regions["planted"]`` (n, 2) holds the planted strings' bounds.
    """
    rng = np.random.default_rng(seed)
    half = int(mbp * 1e6 / 2)
    free_len = half if free_mbp is None else int(free_mbp * 1e6)
    with_sites = list(background(1, half, gc, rng)[0])
    starts = np.arange(every // 2, half - every, every)
    planted, offsets = make_sites(len(starts), rng)
    for s, site in zip(starts, planted):
        with_sites[s : s + len(site)] = site
    free = background(1, free_len, gc, rng)[0]
    seq = "".join(with_sites) + "N" * GAP + free + "N" * GAP
    regions = {"sites": (0, half), "gap1": (half, half + GAP), "free": (half + GAP, half + GAP + free_len),
               "gap2": (half + GAP + free_len, half + 2 * GAP + free_len)}
    regions["planted"] = np.array([(s, s + len(site)) for s, site in zip(starts, planted)], dtype=np.int64)
    return seq, starts + np.asarray(offsets, dtype=np.int64), regions


def real_sites(records: list[tuple[str, str]], pwm: np.ndarray, flank: int) -> pd.DataFrame:
    """Each peak's best motif match (either strand) with ``flank`` bp of its own sequence on each side.

    Returns a table: ``id``, ``fragment`` (upper case, as in the peak), ``offset``
    (the match's start in the fragment), ``score`` (the match's log-odds).
    """
    rows = []
    for name, seq in records:
        seq = seq.upper()
        track = pwm_track(seq, pwm)
        at = int(np.argmax(track))
        a, b = max(0, at - flank), min(len(seq), at + pwm.shape[1] + flank)
        rows.append({"id": name, "fragment": seq[a:b], "offset": at - a, "score": float(track[at])})
    return pd.DataFrame(rows)


def held_out(model, run: str, fasta: str) -> tuple[list[str], np.ndarray]:
    """Ids of the positives in the run's validation + test split, and the codes of all held-out rows.

    The split is rebuilt as ``genocnn train --pos FASTA`` (no ``--neg``) drew it
    with the run's config; ``FASTA`` must be the file the run recorded.
    """
    meta = json.loads((Path(run) / "run.json").read_text())
    digest = hashlib.sha256(Path(fasta).read_bytes()).hexdigest()
    if [i["sha256"] for i in meta["inputs"]] != [digest] or "--neg" in meta["command"]:
        raise SystemExit(f"{fasta}: not the only training input of {run} (run.json); cannot rebuild its split")
    cfg = model.run_config
    data = load_pos_neg(fasta, length=cfg.data.length, max_length=cfg.data.max_length,
                        negatives_per_positive=cfg.data.negatives_per_positive, seed=cfg.training.seed)
    first = labels_to_float(data.labels[:, :1])
    split = split_indices(first, cfg.data.valid_fraction, cfg.data.test_fraction, cfg.training.seed)
    with torch.no_grad():
        logits = model(data.subset(split.test).x)
    test = evaluate(first[split.test], logits, data.tasks)
    recorded = json.loads((Path(run) / "metrics.json").read_text())
    print(f"split rebuilt: train {len(split.train)}, valid {len(split.valid)}, test {len(split.test)}; "
          f"test AUROC {test['auroc']:.4f} (metrics.json {recorded['auroc']:.4f})")
    rows = np.sort(np.concatenate([split.valid, split.test]))
    positives = [data.ids[i] for i in rows if data.labels[i, 0] == 1]
    return positives, gather_rows(data.codes, rows)


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


def score(intervals: np.ndarray, starts: np.ndarray, width: int, regions: dict,
          planted: np.ndarray | None = None) -> dict:
    """Recall, precision, false calls per Mbp and N-gap calls of intervals (start, end).

    A planted site is found when a call covers its motif ``[start, start + width)``.
    A call in the sites stretch is true when it covers a whole planted motif or,
    given the planted fragments ``planted`` (n, 2) (real sites with their flanks),
    when it overlaps one: a PWM hit on a second real motif in a real flank is
    not a false call.
    """
    def inside(region):
        a, b = regions[region]
        return intervals[(intervals[:, 0] < b) & (intervals[:, 1] > a)]

    site_calls = inside("sites")
    covered = [bool(((site_calls[:, 0] <= s) & (site_calls[:, 1] >= s + width)).any()) for s in starts]
    if planted is None:
        true_calls = sum(bool(((starts >= a) & (starts + width <= b)).any()) for a, b in site_calls)
    else:
        true_calls = sum(bool(((planted[:, 0] < b) & (planted[:, 1] > a)).any()) for a, b in site_calls)
    free_mbp = (regions["free"][1] - regions["free"][0]) / 1e6
    return {
        "recall": float(np.mean(covered)),
        "precision": true_calls / max(len(site_calls), 1),
        "false_per_mbp": len(inside("free")) / free_mbp,
        "gap_calls": len(inside("gap1")) + len(inside("gap2")),
    }


def summit_error(sites: pd.DataFrame, starts: np.ndarray, width: int) -> float:
    """Median distance (bp) from a call's summit to the centre of the planted site it covers (calls covering one)."""
    centres = starts + width / 2
    errors = [np.abs(centres[(starts >= a) & (starts + width <= b)] - summit).min()
              for a, b, summit in sites[["start", "end", "summit"]].to_numpy()
              if ((starts >= a) & (starts + width <= b)).any()]
    return float(np.median(errors)) if errors else np.nan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--sim", help="genocnn simulate folder the run was trained on (motif.meme, neg.fa)")
    ap.add_argument("--tf", help="JASPAR id or name of the planted motif instead of SIM/motif.meme")
    ap.add_argument("--background", help="FASTA to shuffle for an uncalibrated run [default: SIM/neg.fa]")
    ap.add_argument("--sites-from", help="peaks FASTA: plant each peak's best motif match with its real flanks")
    ap.add_argument("--held-out", action="store_true",
                    help="only the peaks of the run's validation + test split (--sites-from is its training FASTA)")
    ap.add_argument("--flank", type=int, default=10, help="bp of the peak kept on each side of a real site")
    ap.add_argument("--rates", type=float, nargs="*", default=[0.5, 2, 10, 100],
                    help="false calls per Mbp to ask for besides the default")
    ap.add_argument("--mbp", type=float, default=2.0, help="sites stretch + site-free stretch (half each)")
    ap.add_argument("--free-mbp", type=float, help="length of the site-free stretch instead [default: mbp / 2]")
    ap.add_argument("--site-every", type=int, default=5_000)
    ap.add_argument("--gc", type=float, default=0.42)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model = genocnn.load_model(args.run)
    motif = find_motif(args.tf) if args.tf else read_motifs(Path(args.sim) / "motif.meme")[0]
    width = motif.width
    held_codes = None
    if args.sites_from:
        records = list(genocnn.read_fasta(args.sites_from))
        if args.held_out:
            keep, held_codes = held_out(model, args.run, args.sites_from)
            keep = set(keep)
            records = [r for r in records if r[0] in keep]
        real = real_sites(records, motif.pwm, args.flank)
        make_sites = lambda n, rng: ([real["fragment"][i % len(real)] for i in range(n)],  # noqa: E731
                                     [real["offset"][i % len(real)] for i in range(n)])
    else:
        make_sites = lambda n, rng: (sample_sites(motif.ppm, n, rng), [0] * n)  # noqa: E731
    if model.calibration is None:
        if held_codes is not None:
            x, bp = held_codes, model.run_config.training.calibration_bp
        else:
            fasta = args.background or Path(args.sim) / "neg.fa"
            x, bp = one_hot([s for _, s in genocnn.read_fasta(fasta)], length=model.length), 2_000_000
        t0 = time.perf_counter()
        model.calibration = calibrate(model, x, bp, seed=args.seed)
        print(f"calibrated on {model.calibration['background_bp'] / 1e6:.1f} Mbp of shuffles "
              f"in {time.perf_counter() - t0:.1f} s")
    seq, starts, regions = chromosome(make_sites, args.mbp, args.site_every, args.gc, args.seed, args.free_mbp)
    free_mbp = (regions["free"][1] - regions["free"][0]) / 1e6
    planted = regions["planted"] if args.sites_from else None
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sites = genocnn.scan_genome(model, [("chrSim", seq)], Path(tmp) / "s.bed", progress=False)
        seconds = time.perf_counter() - t0
    blocks = list(genocnn.scan(model, [("chrSim", seq)], progress=False))
    track = pwm_track(seq, motif.pwm)
    free = track[regions["free"][0] : regions["free"][1] - width + 1]
    # every PWM score among the top 1 % seen on the free stretch, high to low: over lower thresholds hits
    # merge into long runs and their count falls again, which would mislead the bisection below
    grid = np.unique(free[free >= np.quantile(free, 0.99)])[::-1]
    rows = [{"asked_fpr": "default", **score(sites[["start", "end"]].to_numpy(), starts, width, regions, planted),
             "summit_bp": summit_error(sites, starts, width)}]
    for rate in args.rates:
        threshold = threshold_for_rate(model.calibration, rate)
        called = genocnn.call_sites(blocks, threshold)
        rows.append({"asked_fpr": rate, **score(called[["start", "end"]].to_numpy(), starts, width, regions, planted),
                     "summit_bp": summit_error(called, starts, width)})
    table = pd.DataFrame(rows)
    oracle, cuts = [], []
    for rate in table["false_per_mbp"]:  # the true PWM at the false-call rate the model reached
        best, lo, hi = None, 0, len(grid) - 1  # bisect for the lowest threshold within the rate
        while lo <= hi:
            mid = (lo + hi) // 2
            if len(hits(free, grid[mid], width)) / free_mbp <= max(rate, 1 / free_mbp):
                best, lo = grid[mid], mid + 1
            else:
                hi = mid - 1
        cuts.append(best)
        oracle.append(score(hits(track, best, width), starts, width, regions, planted) if best is not None
                      else {"recall": np.nan, "precision": np.nan, "false_per_mbp": np.nan})
    table["pwm_false_per_mbp"] = [o["false_per_mbp"] for o in oracle]
    table["pwm_recall"] = [o["recall"] for o in oracle]
    table["pwm_precision"] = [o["precision"] for o in oracle]
    print(table.round(3).to_string(index=False))
    if args.sites_from:  # recall at the default rate by the planted match's strength
        strength = np.array([real["score"][i % len(real)] for i in range(len(starts))])
        calls = sites[["start", "end"]].to_numpy()
        found = np.array([bool(((calls[:, 0] <= s) & (calls[:, 1] >= s + width)).any()) for s in starts])
        thr = cuts[0]  # the PWM's threshold at the default's false-call rate
        bins = pd.qcut(strength, 4)
        print("default-rate recall by the planted match's log-odds (quartiles):",
              ", ".join(f"{b}: {found[bins == b].mean():.2f}" for b in bins.categories),
              f"; {np.mean(strength >= thr):.2f} of planted matches score >= {thr:.1f}, "
              "the PWM threshold at the default's false-call rate")
    what = f"{len(starts)} planted {motif.description or motif.name} sites of {width} bp every {args.site_every} bp"
    if args.sites_from:
        q = np.percentile(real["score"], [0, 10, 50, 90, 100])
        what += (f" (real: {len(real)} peaks{' held out' if args.held_out else ''}, each used "
                 f"{len(starts) / len(real):.2f}x, {args.flank} bp flanks; best-match log-odds min/10/50/90/max% "
                 + "/".join(f"{v:.1f}" for v in q) + ")")
    print(f"default: {sites.attrs['threshold_source']}; {args.mbp / 2:g} Mbp with sites + {free_mbp:g} Mbp "
          f"without + 2 N gaps scanned in {seconds:.1f} s; {what}; pwm_*: the true PWM at the lowest threshold "
          "whose false calls per Mbp do not exceed the model's (NaN: none does)")


if __name__ == "__main__":
    main()
