"""Regenerate the golden files that ``tests/test_golden.py`` compares against.

Layout (everything under ``tests/golden/``)::

    inputs/   pos.fa, neg.fa  training data: 300 bound 100 bp sequences with TGACGTCATG planted (either
                              strand), 300 unbound, every other one with a 1-mismatch copy of the site
              seqs.fa         42 sequences to predict: bound/unbound, reverse-complement sites, short
                              (padded) and long (centre-cropped) ones, soft-masked, N runs, IUPAC codes
              genome.fa       chr1 (12 kbp), chr2 (8 kbp) and chrS (80 bp, shorter than the model):
                              planted sites on both strands, an N run, a soft-masked stretch
              db.meme         40 JASPAR2024 CORE vertebrate matrices (CREB/ATF family included),
                              the database ``attribute --db`` names seqlet motifs against
    run/      model.pt, config.yaml, history.tsv, metrics.json of a tiny model (8 filters of width 10,
              dense [8]) trained once on pos.fa/neg.fa; the tests load it, they never train
    expected/<case>/   what each CLI case of :data:`CASES` wrote (logos, PNGs and HTML left out)

Usage, from the repository root, with the code whose outputs are to be pinned::

    python tests/golden/make_golden.py            # expected/ only, from the committed inputs/ and run/
    python tests/golden/make_golden.py --retrain  # new inputs/ and run/ too (a new model: every file changes)

Training is seeded and run on one CPU thread, but it is not bit-reproducible
across machines or torch versions, which is why the model is committed rather
than trained by the tests. See tests/test_golden.py for when regenerating is allowed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "inputs"
RUN = HERE / "run"
EXPECTED = HERE / "expected"

MOTIF = "TGACGTCATG"  # as tests/conftest.py TINY_MOTIF
DECOY_MISMATCHES = 1  # in every other unbound sequence: the model must learn the site sharply
N_TRAIN = 300  # bound and unbound sequences each
RUN_FILES = ("model.pt", "config.yaml", "history.tsv", "metrics.json")  # last.pt, run.json left out
JASPAR_RELEASE = "JASPAR2024"  # pinned: "latest" changes when pyjaspar ships a new release
CONFIG = {
    "data": {"valid_fraction": 0.2},
    "model": {"conv": [{"filters": 8, "kernel_size": 10, "pool_size": 4}], "dense": [8]},
    "training": {"epochs": 25, "patience": 25, "lr": 0.01, "batch_size": 16, "weight_decay": 0.01, "seed": 0},
    "motifs": {"threshold": 0.55, "min_sites": 5},  # 0.5 leaves a window within 1e-6 of its cutoff
}


@dataclass(frozen=True)
class Case:
    """One CLI command and the files it writes that are golden material.

    ``args`` may hold ``{run}`` (the committed run), ``{inputs}`` (a scratch
    copy of ``inputs/``, so that pyfaidx's ``.fai`` and the gzip copy land
    outside the repository) and ``{out}`` (the case's output folder).
    ``expected`` names the folder of ``expected/`` it is compared with: a case
    that must reproduce another case's files exactly borrows that case's folder.
    """

    name: str
    args: tuple[str, ...]
    files: tuple[str, ...]
    expected: str = ""

    @property
    def folder(self) -> str:
        return self.expected or self.name


CPU = ("--device", "cpu")
MOTIF_FILES = ("filters.tsv", "motifs.meme", "motifs.jaspar", "motifs.transfac", "motifs.motif")
SEQLET_FILES = ("attributions.npz", "seqlets.tsv", "seqlet_motifs.meme", "seqlet_motifs.jaspar",
                "seqlet_motifs.transfac", "seqlet_motifs.motif")
CASES = {
    c.name: c
    for c in (
        Case("predict", ("predict", "{run}", "{inputs}/seqs.fa", "--out", "{out}/predictions.tsv",
                         "--batch-size", "16", *CPU), ("predictions.tsv",)),
        Case("scan", ("scan", "{run}", "{inputs}/genome.fa", "--out", "{out}/sites.bed",
                      "--bedgraph", "{out}/track.bedGraph", "--quiet", *CPU), ("sites.bed", "track.bedGraph")),
        # plain gzip is not indexable: read_fasta instead of pyfaidx, the same files expected
        Case("scan_gzip", ("scan", "{run}", "{inputs}/genome.fa.gz", "--out", "{out}/sites.bed",
                           "--bedgraph", "{out}/track.bedGraph", "--quiet", *CPU),
             ("sites.bed", "track.bedGraph"), expected="scan"),
        Case("scan_stride", ("scan", "{run}", "{inputs}/genome.fa", "--out", "{out}/sites.bed",
                             "--bedgraph", "{out}/track.bedGraph", "--stride", "7", "--threshold", "0.3",
                             "--quiet", *CPU), ("sites.bed", "track.bedGraph")),
        Case("motifs", ("motifs", "{run}", "{inputs}/pos.fa", "--out", "{out}",
                        "--jaspar-release", JASPAR_RELEASE, *CPU), MOTIF_FILES),
        # a stricter cutoff from the command line: fewer windows per filter, and filters skipped
        Case("motifs_strict", ("motifs", "{run}", "{inputs}/pos.fa", "--out", "{out}", "--threshold", "0.75",
                               "--min-sites", "150", "--jaspar-release", JASPAR_RELEASE, *CPU), MOTIF_FILES),
        Case("attribute_ism", ("attribute", "{run}", "{inputs}/pos.fa", "--out", "{out}", "--max-seqs", "40",
                               "--plot", "0", "--db", "{inputs}/db.meme", *CPU), SEQLET_FILES),
        Case("attribute_grad", ("attribute", "{run}", "{inputs}/pos.fa", "--out", "{out}", "--method", "grad",
                                "--max-seqs", "40", "--plot", "0", "--db", "{inputs}/db.meme", *CPU),
             SEQLET_FILES),
    )
}
#: Stored gzip-compressed in expected/ (the per-position tracks are the bulk of the bytes).
GZIPPED = ("track.bedGraph",)


def stage_inputs(folder: Path) -> Path:
    """Copy ``inputs/`` to ``folder`` and add ``genome.fa.gz`` (plain gzip, not indexable)."""
    shutil.copytree(INPUTS, folder)
    data = (folder / "genome.fa").read_bytes()
    (folder / "genome.fa.gz").write_bytes(gzip.compress(data, mtime=0))
    return folder


def run_case(case: Case, inputs: Path, out: Path, run: Path = RUN):
    """Run one case in-process through typer's CliRunner; returns the click Result."""
    from typer.testing import CliRunner

    from genocnn.cli import app

    out.mkdir(parents=True, exist_ok=True)
    args = [a.format(run=run, inputs=inputs, out=out) for a in case.args]
    return CliRunner().invoke(app, args)


# ---------------------------------------------------------------- inputs and run


def _random_dna(rng, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=n))


def _revcomp(seq: str) -> str:
    return seq.translate(str.maketrans("ACGTacgt", "TGCAtgca"))[::-1]


def _plant(seq: str, site: str, at: int) -> str:
    return seq[:at] + site + seq[at + len(site):]


def _fasta(records, width: int | None = None) -> str:
    out = []
    for name, seq in records:
        out.append(f">{name}\n")
        step = width or len(seq)
        out.extend(seq[i : i + step] + "\n" for i in range(0, len(seq), step))
    return "".join(out)


def make_inputs(folder: Path) -> None:
    """Write pos.fa, neg.fa, seqs.fa, genome.fa and db.meme (seeded; needs pyjaspar for db.meme)."""
    import numpy as np

    from genocnn import jaspar_motifs, write_motifs  # the public API, whatever module holds them

    rng = np.random.default_rng(20240607)
    folder.mkdir(parents=True, exist_ok=True)
    k = len(MOTIF)

    pos, neg = [], []
    for i in range(N_TRAIN):
        site = MOTIF if rng.random() < 0.5 else _revcomp(MOTIF)
        pos.append((f"p{i}", _plant(_random_dna(rng, 100), site, int(rng.integers(0, 100 - k + 1)))))
        seq = _random_dna(rng, 100)
        if i % 2:  # a decoy: the site with DECOY_MISMATCHES mismatches
            decoy = list(MOTIF)
            for j in rng.choice(k, size=DECOY_MISMATCHES, replace=False):
                decoy[j] = rng.choice([b for b in "ACGT" if b != MOTIF[j]])
            decoy = "".join(decoy)
            seq = _plant(seq, decoy if rng.random() < 0.5 else _revcomp(decoy), int(rng.integers(0, 100 - k + 1)))
        neg.append((f"n{i}", seq))
    (folder / "pos.fa").write_text(_fasta(pos))
    (folder / "neg.fa").write_text(_fasta(neg))

    seqs = []
    for i in range(12):
        seqs.append((f"q_pos{i}", _plant(_random_dna(rng, 100), MOTIF, int(rng.integers(0, 91)))))
    for i in range(4):
        seqs.append((f"q_rc{i}", _plant(_random_dna(rng, 100), _revcomp(MOTIF), int(rng.integers(0, 91)))))
    for i in range(12):
        seqs.append((f"q_neg{i}", _random_dna(rng, 100)))
    seqs.append(("q_half_site", _plant(_random_dna(rng, 100), MOTIF[:6], 47)))
    seqs.append(("q_two_sites", _plant(_plant(_random_dna(rng, 100), MOTIF, 10), _revcomp(MOTIF), 70)))
    seqs.append(("q_short_pos", _plant(_random_dna(rng, 60), MOTIF, 25)))  # padded to 100
    seqs.append(("q_short_neg", _random_dna(rng, 37)))
    seqs.append(("q_tiny", "ACGTA"))
    seqs.append(("q_long_centre", _plant(_random_dna(rng, 181), MOTIF, 85)))  # centre-cropped to 100
    seqs.append(("q_long_edge", _plant(_random_dna(rng, 181), MOTIF, 2)))  # site cropped away
    seqs.append(("q_lower_pos", _plant(_random_dna(rng, 100), MOTIF, 40).lower()))
    mixed = _plant(_random_dna(rng, 100), MOTIF, 60)
    seqs.append(("q_mixed_case", mixed[:30].lower() + mixed[30:70] + mixed[70:].lower()))
    seqs.append(("q_n_run", _plant(_plant(_random_dna(rng, 100), MOTIF, 70), "N" * 20, 10)))
    seqs.append(("q_n_over_site", _plant(_plant(_random_dna(rng, 100), MOTIF, 45), "NNNN", 48)))
    seqs.append(("q_all_n", "N" * 100))
    iupac = list(_plant(_random_dna(rng, 100), MOTIF, 30))
    for j, code in zip(range(3, 100, 9), "RYSWKMBDHVNryswkmbdhvn"):
        if not 30 <= j < 30 + k:
            iupac[j] = code
    seqs.append(("q_iupac", "".join(iupac)))
    seqs.append(("q_rna_u", _plant(_random_dna(rng, 100), MOTIF, 20).replace("T", "U")))
    (folder / "seqs.fa").write_text(_fasta(seqs, width=50))

    chroms = {"chr1": list(_random_dna(rng, 12_000)), "chr2": list(_random_dna(rng, 8_000))}
    sites = {"chr1": [(700, "+"), (1_900, "-"), (3_050, "+"), (3_160, "+"), (5_500, "-"), (9_020, "+"),
                      (11_950, "-")],
             "chr2": [(30, "+"), (2_500, "-"), (4_400, "+"), (7_000, "-")]}
    for chrom, planted in sites.items():
        for at, strand in planted:
            chroms[chrom][at : at + k] = MOTIF if strand == "+" else _revcomp(MOTIF)
    chroms["chr1"][6_000:6_300] = "N" * 300  # an N run longer than the model's window
    chroms["chr1"][7_800:7_805] = "NNNNN"
    chroms["chr2"][5_000:6_200] = [b.lower() for b in chroms["chr2"][5_000:6_200]]  # soft-masked
    chroms["chr2"][5_600 : 5_600 + k] = _revcomp(MOTIF).lower()  # a soft-masked site
    chroms["chrS"] = list(_plant(_random_dna(rng, 80), MOTIF, 35))  # shorter than the model: one window
    (folder / "genome.fa").write_text(_fasta([(c, "".join(s)) for c, s in chroms.items()], width=60))

    vertebrates = jaspar_motifs(release=JASPAR_RELEASE, tax_group="vertebrates")
    wanted = {"CREB1", "ATF1", "ATF7", "CREM", "Atf3", "JUN", "FOS", "CTCF", "GATA1", "SP1", "SPI1", "CEBPA",
              "YY1", "REST", "NRF1", "MAX", "USF1", "TP53", "FOXA1", "HNF4A"}
    chosen = [m for m in vertebrates if m.description in wanted]
    names = {m.name for m in chosen}
    chosen += [m for m in vertebrates[::25] if m.name not in names][: 40 - len(chosen)]
    write_motifs(chosen, folder / "db.meme")


def train_run(inputs: Path, run: Path) -> None:
    """Train the tiny model on one CPU thread (``genocnn train``); keep the files load_model and the report read.

    Through the CLI, like the cases, so that this script does not depend on the
    package's module layout.
    """
    import torch
    import yaml
    from typer.testing import CliRunner

    from genocnn.cli import app

    os.environ["OMP_NUM_THREADS"] = "1"  # train() otherwise takes every core
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(yaml.safe_dump(CONFIG))
        out = Path(tmp) / "run"
        result = CliRunner().invoke(app, ["train", "--pos", str(inputs / "pos.fa"), "--neg", str(inputs / "neg.fa"),
                                          "--out", str(out), "--config", str(config), "--device", "cpu", "--quiet"])
        if result.exit_code != 0:
            raise SystemExit(f"train: exit {result.exit_code}\n{result.output}\n{result.exception!r}")
        if run.exists():
            shutil.rmtree(run)
        run.mkdir(parents=True)
        for name in RUN_FILES:
            shutil.copy2(out / name, run / name)
    print(result.output.strip())


# ---------------------------------------------------------------- expected outputs


def make_expected(only: list[str] | None = None) -> None:
    """Run every case (or those named in ``only``) on the committed run and inputs; store their golden files."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = stage_inputs(Path(tmp) / "inputs")
        if EXPECTED.exists() and not only:
            shutil.rmtree(EXPECTED)
        for case in CASES.values():
            if only and case.name not in only and case.folder not in only:
                continue
            out = Path(tmp) / "out" / case.name
            result = run_case(case, inputs, out)
            if result.exit_code != 0:
                raise SystemExit(f"{case.name}: exit {result.exit_code}\n{result.output}\n{result.exception!r}")
            missing = [f for f in case.files if not (out / f).is_file()]
            if missing:
                raise SystemExit(f"{case.name}: did not write {missing}")
            if case.expected:  # borrows another case's files: they must be identical
                for f in case.files:
                    same = (out / f).read_bytes() == (Path(tmp) / "out" / case.folder / f).read_bytes()
                    if not same:
                        raise SystemExit(f"{case.name}: {f} differs from {case.folder}'s")
                continue
            dest = EXPECTED / case.name
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for f in case.files:
                if f in GZIPPED:
                    (dest / f"{f}.gz").write_bytes(gzip.compress((out / f).read_bytes(), mtime=0))
                else:
                    shutil.copy2(out / f, dest / f)
            print(f"{case.name}: {', '.join(sorted(p.name for p in dest.iterdir()))}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain", action="store_true", help="also regenerate inputs/ and run/")
    parser.add_argument("--cases", nargs="*", help="regenerate only these cases (default: all)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent.parent))  # the checkout's genocnn, as pytest sees it
    import genocnn

    print("genocnn from", Path(genocnn.__file__).parent)
    if args.retrain:
        if INPUTS.exists():
            shutil.rmtree(INPUTS)
        make_inputs(INPUTS)
        train_run(INPUTS, RUN)
    make_expected(args.cases)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
