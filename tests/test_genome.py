"""Intervals over a genome: BED/narrowPeak -> windows, GC-matched negatives, chromosome splits, CLI."""

from __future__ import annotations

import gzip
import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from Bio import bgzf
from typer.testing import CliRunner

from genocnn.cli import app
from genocnn.errors import GenocnnError
from genocnn.data import load_bed
from genocnn.config import config_from_dict
from genocnn.genome import centre_window, fetch, open_genome, peak_windows, read_bed
from genocnn.models import build_model
from genocnn.negatives import gc_content, gc_matched_negatives
from genocnn.scanning import scan
from genocnn.splits import chrom_split
from tests.conftest import TINY_MOTIF

SIZES = {"chr1": 50_000, "chr2": 30_000, "chr3": 36_000}
N_PEAKS = 300


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _chromosome(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[float]]:
    """Random sequence in 2.5 kb blocks of varied GC, with soft-masked stretches and N runs."""
    seq = np.empty(size, dtype="U1")
    block_gc = []
    for a in range(0, size, 2500):
        gc = rng.choice([0.3, 0.6])  # AT-rich and GC-rich isochores
        block_gc.append(gc)
        seq[a : a + 2500] = rng.choice(list("ACGT"), size=min(2500, size - a), p=[(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    for a in rng.integers(0, size - 800, size=size // 4000):  # soft-masked repeats
        b = a + int(rng.integers(200, 800))
        seq[a:b] = np.char.lower(seq[a:b])
    seq[:300] = "N"  # telomere-like run
    mid = size // 2
    seq[mid : mid + 700] = "N"
    return seq, block_gc


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    """A 3-chromosome genome with TINY_MOTIF planted at ~300 summits; BED, narrowPeak and the truth."""
    rng = np.random.default_rng(11)
    d = tmp_path_factory.mktemp("genome")
    made = {name: _chromosome(rng, size) for name, size in SIZES.items()}
    chroms = {name: seq for name, (seq, _) in made.items()}
    total = sum(SIZES.values())
    peaks = []
    for name, size in SIZES.items():
        want = round(N_PEAKS * size / total)
        centres: list[int] = []
        while len(centres) < want:
            c = int(rng.integers(200, size - 200))
            if chroms[name][c - 60 : c + 60].tolist().count("N") or any(abs(c - o) < 260 for o in centres):
                continue
            if made[name][1][c // 2500] < 0.45 and rng.random() < 0.9:  # peaks prefer GC-rich blocks
                continue
            centres.append(c)
        for c in sorted(centres):
            chroms[name][c - 5 : c + 5] = list(TINY_MOTIF)
            start = c - int(rng.integers(30, 70))
            end = start + int(rng.integers(80, 121))
            peaks.append((name, start, end, c - start))
    fasta = d / "genome.fa"
    with open(fasta, "w") as fh:
        for name, seq in chroms.items():
            text = "".join(seq.tolist())
            fh.write(f">{name} test chromosome\n")
            fh.write("".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60)))
    bed = d / "peaks.bed"
    bed.write_text("track name=peaks\n# a comment\n" + "".join(f"{c}\t{s}\t{e}\tp{i}\n" for i, (c, s, e, _) in enumerate(peaks)))
    narrow = d / "peaks.narrowPeak"
    narrow.write_text("".join(
        f"{c}\t{s}\t{e}\tp{i}\t0\t.\t5.0\t4.0\t3.0\t{summit}\n" for i, (c, s, e, summit) in enumerate(peaks)
    ))
    config = d / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"conv": [{"filters": 8, "kernel_size": 10, "pool_size": 4}], "dense": [8]},
        "training": {"epochs": 8, "patience": 100, "lr": 0.01, "batch_size": 32, "calibration_bp": 200_000},
    }))
    text = {name: "".join(seq.tolist()) for name, seq in chroms.items()}
    return {"fasta": fasta, "bed": bed, "narrow": narrow, "config": config, "peaks": peaks, "text": text, "dir": d}


# --- windows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, end, summit, length, window",
    [
        (100, 200, None, 10, (145, 155)),  # even interval, even window: midpoint 150
        (100, 201, None, 10, (145, 155)),  # odd interval: (100 + 201) // 2 = 150 is the middle base
        (100, 200, None, 11, (145, 156)),  # odd window: centre base at index 5, 5 bases each side
        (100, 200, 10, 11, (105, 116)),  # summit offset wins over the midpoint
        (100, 200, 0, 4, (98, 102)),
        (0, 4, None, 10, (-3, 7)),  # runs off the start
        (7, 7, None, 3, (6, 9)),  # zero-length interval
    ],
)
def test_centre_window(start, end, summit, length, window):
    a, b = centre_window(start, end, summit, length)
    assert (a, b) == window and b - a == length
    centre = start + summit if summit is not None else (start + end) // 2
    assert a + length // 2 == centre


def test_fetch_matches_the_sequence_pads_with_n_and_keeps_case(genome):
    text = genome["text"]
    with open_genome(genome["fasta"]) as fa:
        assert {name: len(fa[name]) for name in fa.keys()} == SIZES
        rng = np.random.default_rng(0)
        for _ in range(50):
            name = str(rng.choice(list(SIZES)))
            a = int(rng.integers(0, SIZES[name] - 500))
            assert fetch(fa, name, a, a + 500) == text[name][a : a + 500]
        assert fetch(fa, "chr2", -4, 6) == "NNNN" + text["chr2"][:6]
        end = SIZES["chr3"]
        assert fetch(fa, "chr3", end - 3, end + 5) == text["chr3"][-3:] + "N" * 5
        assert fetch(fa, "chr3", end + 2, end + 6) == "NNNN"
    assert any(c.islower() for c in text["chr1"])  # soft-masking survives the round trip


def test_read_bed_summits_and_skipped_lines(genome):
    plain = read_bed(genome["bed"], SIZES)
    narrow = read_bed(genome["narrow"], SIZES)
    assert len(plain.intervals) == len(narrow.intervals) == len(genome["peaks"])
    assert plain.intervals[0].line == 3  # after the track and comment lines
    assert all(iv.summit is None for iv in plain.intervals)
    assert [iv.summit for iv in narrow.intervals] == [p[3] for p in genome["peaks"]]


def test_narrowpeak_windows_centre_the_motif(genome):
    windows = peak_windows(genome["narrow"], genome["fasta"], 31)
    assert len(windows.ids) == len(genome["peaks"]) and not windows.notes
    assert all(s[10:20] == TINY_MOTIF for s in windows.sequences)
    c, s, e, summit = genome["peaks"][0]
    assert windows.ids[0] == f"{c}:{s + summit - 15}-{s + summit + 16}"


def test_bgzip_genome_matches_plain_and_plain_gzip_is_refused(genome, tmp_path):
    data = genome["fasta"].read_bytes()
    bgz = tmp_path / "genome.fa.bgz"
    with bgzf.BgzfWriter(str(bgz), "wb") as fh:
        fh.write(data)
    a = peak_windows(genome["bed"], genome["fasta"], 50)
    b = peak_windows(genome["bed"], bgz, 50)
    assert a == b
    gz = tmp_path / "genome.fa.gz"
    gz.write_bytes(gzip.compress(data))
    with pytest.raises(GenocnnError, match="bgzip"):
        open_genome(gz)
    result = cli("train", "--bed", genome["bed"], "--genome", gz, "--out", tmp_path / "run")
    assert result.exit_code == 2 and "bgzip" in result.stderr and "\n" not in result.stderr.strip()


# --- genomes samtools faidx cannot index ----------------------------------------------------------


def _small_genome() -> dict[str, str]:
    """Two short chromosomes with a soft-masked stretch and an N run."""
    rng = np.random.default_rng(5)
    chroms = {}
    for name, size in (("chr1", 1234), ("chr2", 777)):
        seq = "".join(rng.choice(list("ACGT"), size=size))
        chroms[name] = seq[:100] + seq[100:300].lower() + "N" * 40 + seq[340:]
    return chroms


SMALL = _small_genome()


def _wrap(seq: str, widths) -> str:
    lines, i, k = [], 0, 0
    while i < len(seq):
        lines.append(seq[i : i + widths[k % len(widths)]])
        i, k = i + widths[k % len(widths)], k + 1
    return "".join(line + "\n" for line in lines)


def _fasta(records: dict[str, str], widths=(60,), between: str = "") -> str:
    return between.join(f">{name} chromosome {name}\n{_wrap(seq, widths)}" for name, seq in records.items())


#: A layout samtools faidx refuses -> FASTA bytes, and the reason the warning gives.
LAYOUTS = {
    "faidx-clean": (lambda r: _fasta(r).encode(), None),
    "blank lines between records": (lambda r: _fasta(r, between="\n\n").encode(), "blank lines"),
    "byte-order mark": (lambda r: ("\ufeff" + _fasta(r)).encode(), "byte-order mark"),
    "uneven line widths": (lambda r: _fasta(r, widths=(60, 50)).encode(), "unequal width"),
    "CR-only line endings": (lambda r: _fasta(r).replace("\n", "\r").encode(), "CR-only (old Mac) line endings"),
}


def _user_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_genome_faidx_cannot_index_is_read_into_memory_with_one_warning(tmp_path, layout):
    make, reason = LAYOUTS[layout]
    path = tmp_path / "genome.fa"
    path.write_bytes(make(SMALL))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        with open_genome(path) as fa:
            assert list(fa.keys()) == list(SMALL)
            assert {name: len(fa[name]) for name in fa.keys()} == {name: len(s) for name, s in SMALL.items()}
            assert fa["chr1"][95:345] == SMALL["chr1"][95:345]  # case and N run kept
            assert fetch(fa, "chr2", 700, 800) == SMALL["chr2"][700:] + "N" * 23
            assert fetch(fa, "chr1", -3, 4) == "NNN" + SMALL["chr1"][:4]
    said = _user_warnings(caught)
    if reason is None:  # read through the index pyfaidx built
        assert said == [] and (tmp_path / "genome.fa.fai").is_file()
        return
    assert len(said) == 1, said
    assert said[0].startswith(f"{path}: not indexable by samtools faidx (") and reason in said[0]
    assert "read whole into memory" in said[0] and "\n" not in said[0]
    assert not (tmp_path / "genome.fa.fai").exists()


def test_bad_dna_in_a_genome_read_into_memory_names_file_and_record(tmp_path):
    bad = dict(SMALL, chr2=SMALL["chr2"][:500] + "X" + SMALL["chr2"][501:])
    path = tmp_path / "genome.fa"
    path.write_text(_fasta(bad, between="\n\n"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        with pytest.raises(GenocnnError, match=r"genome.fa: record 2 \('chr2'\) has characters that are not IUPAC"):
            open_genome(path)
    assert _user_warnings(caught) == []  # refused, not read


def test_an_empty_record_is_refused_although_faidx_indexes_it(tmp_path):
    path = tmp_path / "genome.fa"
    path.write_text(_fasta({"chr1": SMALL["chr1"]}) + ">chrEmpty\n" + _fasta({"chr2": SMALL["chr2"]}))
    with pytest.raises(GenocnnError, match=r"genome.fa: record 2 \('chrEmpty'\) has an empty sequence"):
        open_genome(path)


def test_plain_gzip_is_refused_whatever_its_layout(tmp_path):
    path = tmp_path / "genome.fa.gz"
    path.write_bytes(gzip.compress(LAYOUTS["byte-order mark"][0](SMALL)))
    with pytest.raises(GenocnnError, match="bgzip"):
        open_genome(path)


def test_scan_reads_an_unindexable_genome_once_and_scores_it_as_the_indexed_one(tmp_path):
    torch.manual_seed(0)
    conv = {"conv": [{"filters": 4, "kernel_size": 7, "pool": "max", "pool_size": 2}], "dense": [4]}
    model = build_model(config_from_dict({"model": conv}).model, 1, 40).eval()
    clean, blank = tmp_path / "clean.fa", tmp_path / "blank.fa"
    clean.write_text(_fasta(SMALL))
    blank.write_text(_fasta(SMALL, between="\n\n"))
    expected = list(scan(model, clean, progress=False, chunk_size=256))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        got = list(scan(model, blank, progress=False, chunk_size=256))
    assert len(_user_warnings(caught)) == 1  # open_genome read it, scan did not read it again
    assert [(b.chrom, b.positions.tolist()) for b in got] == [(b.chrom, b.positions.tolist()) for b in expected]
    assert {b.chrom for b in got} == {"chr1", "chr2"}
    np.testing.assert_allclose(np.concatenate([b.probs for b in got]),
                               np.concatenate([b.probs for b in expected]), atol=1e-6)


def test_peak_windows_and_prepare_accept_an_unindexable_genome(tmp_path, genome):
    """The CLI: one warning line, and the same windows as the indexed genome gives."""
    blank = tmp_path / "blank.fa"
    blank.write_bytes(genome["fasta"].read_bytes().replace(b"\n>", b"\n\n\n>"))
    a = peak_windows(genome["narrow"], genome["fasta"], 50)
    with pytest.warns(UserWarning, match="not indexable by samtools faidx .blank lines"):
        b = peak_windows(genome["narrow"], blank, 50)
    assert a == b
    result = cli("prepare", "--bed", genome["narrow"], "--genome", blank, "--out", tmp_path / "store", "--length", 50)
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "samtools faidx" in line]
    assert len(warned) == 1 and warned[0].startswith(f"genocnn: warning: {blank}: not indexable"), result.stderr
    assert warned[0].endswith("; read whole into memory instead")


# --- negatives -----------------------------------------------------------------------------------


def _overlaps(a, b, regions):
    return any(s < b and a < e for s, e in regions)


def test_gc_matched_negatives(genome):
    peaks = load_bed(genome["narrow"], genome["fasta"], seed=3)
    data, chroms = peaks.data, peaks.chroms
    pos = data.y[:, 0] == 1
    assert int(pos.sum()) == int((~pos).sum()) == len(genome["peaks"]) and data.x.shape[-1] == 100
    gc = np.array([gc_content(s) for s in _decode(data.x)])
    k = np.minimum(np.floor(gc * 20 + 1e-9), 19).astype(int)  # 20 bins; 0.35 lands in [0.35, 0.40)
    hist_pos = np.bincount(k[pos.numpy()], minlength=20)
    hist_neg = np.bincount(k[~pos.numpy()], minlength=20)
    assert np.abs(hist_pos - hist_neg).sum() <= 0.02 * len(genome["peaks"]), (hist_pos, hist_neg)
    assert abs(gc[pos.numpy()].mean() - gc[~pos.numpy()].mean()) < 0.01
    rng = np.random.default_rng(0)  # unmatched random windows differ: the matching did work
    background = [gc_content(genome["text"]["chr1"][a : a + 100]) for a in rng.integers(300, 24_000, size=300)]
    hist_random = np.bincount(np.minimum(np.floor(np.array(background) * 20 + 1e-9), 19).astype(int), minlength=20)
    assert np.abs(hist_pos - hist_random).sum() > 0.2 * len(genome["peaks"]), (hist_pos, hist_random)
    # No negative overlaps a peak interval or its window; none has > 10% N.
    blocked: dict[str, list] = {}
    for c, s, e, summit in genome["peaks"]:
        a, b = centre_window(s, e, summit, 100)
        blocked.setdefault(c, []).extend([(s, e), (a, b)])
    negatives = [(i, c) for i, c, p in zip(data.ids, chroms, pos.tolist()) if not p]
    for name, chrom in negatives:
        a, b = map(int, name.rsplit(":", 1)[1].split("-"))
        assert chrom == name.split(":")[0] and b - a == 100
        assert not _overlaps(a, b, blocked[chrom]), name
    n_frac = (data.x[~pos].sum(1) != 1).float().mean(-1)  # N columns are 0.25 x 4 but not one-hot
    assert float(n_frac.max()) <= 0.1
    # Seeded: the same seed gives the same windows, another seed other windows.
    again = load_bed(genome["narrow"], genome["fasta"], seed=3).data
    other = load_bed(genome["narrow"], genome["fasta"], seed=4).data
    assert again.ids == data.ids and torch.equal(again.x, data.x)
    assert other.ids[len(genome["peaks"]):] != data.ids[len(genome["peaks"]):]


def _decode(x: torch.Tensor) -> list[str]:
    letters = np.array(list("ACGTN"))
    exact = (x.max(1).values == 1).numpy()
    idx = np.where(exact, x.argmax(1).numpy(), 4)
    return ["".join(letters[row]) for row in idx]


def test_gc_matching_follows_the_positives():
    """A synthetic genome with an AT-rich and a GC-rich chromosome: quotas follow the positives."""

    class Fake(dict):
        pass

    rng = np.random.default_rng(1)
    at = "".join(rng.choice(list("ACGT"), size=20_000, p=[0.4, 0.1, 0.1, 0.4]))
    gc = "".join(rng.choice(list("ACGT"), size=20_000, p=[0.1, 0.4, 0.4, 0.1]))
    fa = Fake(a=at, g=gc)
    positives = [gc[i : i + 50] for i in range(0, 1500, 50)] + [at[i : i + 50] for i in range(0, 500, 50)]
    neg, borrowed = gc_matched_negatives(fa, {"a": 20_000, "g": 20_000}, positives, ["a", "g"],
                                         [("g", 0, 1500), ("a", 0, 500)], 50, per_positive=2, seed=0)
    assert len(neg) == 80 and borrowed <= 4
    assert sum(c == "g" for _, c, _ in neg) == pytest.approx(60, abs=4)
    assert all(int(i.split(":")[1].split("-")[0]) >= 1500 or c == "a" for i, c, _ in neg)


def test_shuffled_negatives_stay_on_their_chromosome(genome):
    peaks = load_bed(genome["bed"], genome["fasta"], length=64, negatives="shuffle")
    n = len(genome["peaks"])
    assert peaks.data.x.shape == (2 * n, 4, 64)
    assert peaks.chroms[n:] == peaks.chroms[:n]
    assert all(i.endswith("_shuffled0") for i in peaks.data.ids[n:])
    with pytest.raises(GenocnnError, match="`negatives`"):
        load_bed(genome["bed"], genome["fasta"], negatives="random")


# --- splits --------------------------------------------------------------------------------------


def test_chromosome_hold_out(genome):
    peaks = load_bed(genome["narrow"], genome["fasta"], seed=0)
    chroms = np.array(peaks.chroms)
    split = chrom_split(peaks.chroms, peaks.data.y, ["chr2"], ["chr3"], known=peaks.genome_chroms)
    assert set(chroms[split.valid]) == {"chr2"} and set(chroms[split.test]) == {"chr3"}
    assert set(chroms[split.train]) == {"chr1"}
    assert len(split.train) + len(split.valid) + len(split.test) == len(chroms)
    # Only test chromosomes: validation is drawn at random from the rest, stratified.
    only_test = chrom_split(peaks.chroms, peaks.data.y, [], ["chr3"], 0.1, 0.1, seed=0)
    assert set(chroms[only_test.test]) == {"chr3"} and {"chr1", "chr2"} == set(chroms[only_test.valid])
    assert abs(float(peaks.data.y[only_test.valid].mean()) - 0.5) < 0.05


@pytest.mark.parametrize(
    "valid, test, needle",
    [
        (["chr9"], ["chr3"], "unknown chromosome(s) chr9"),
        (["chr2"], ["chr2"], "in both"),
        (["chrM"], ["chr3"], "validation split (`valid_chroms` chrM) has no sequences"),
        (["chr2"], ["chr1", "chr3"], "training split has no sequences"),
    ],
)
def test_chromosome_split_errors(valid, test, needle):
    chroms = ["chr1", "chr1", "chr2", "chr2", "chr3", "chr3"]
    y = torch.tensor([[1.0], [0.0]] * 3)
    with pytest.raises(GenocnnError) as err:
        chrom_split(chroms, y, valid, test, known=["chr1", "chr2", "chr3", "chrM"])
    assert needle in str(err.value)


# --- bad intervals -------------------------------------------------------------------------------

BAD_LINES = [
    ("chrZ\t100\t200\n", "chromosome 'chrZ' is not in"),
    ("chr1\t60000\t60100\n", "start 60000 is beyond the end of chr1 (50000 bp)"),
    ("chr1\t500\t400\n", "start 500 is after end 400"),
    ("chr1\t-5\t100\n", "negative coordinate"),
    ("chr1\t100\n", "2 column(s)"),
    ("chr1\t1e3\t2000\n", "must be integers"),
    ("chr1\t100\t200\tx\t0\t.\t1\t1\t1\t500\n", "summit offset 500 is outside"),
    ("chr1\t100\t100\n", "empty interval (start = end = 100"),
]


@pytest.mark.parametrize("line, needle", BAD_LINES)
def test_bad_interval_names_file_and_line(genome, tmp_path, line, needle):
    bed = tmp_path / "bad.bed"
    bed.write_text("browser position chr1\nchr1\t1000\t1100\nchr2\t2000\t2100\n" + line)
    out = tmp_path / "run"
    result = cli("train", "--bed", bed, "--genome", genome["fasta"], "--out", out)
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "bad.bed: line 4:" in err and needle in err, err
    assert not out.exists()


def test_empty_interval_is_refused_or_skipped_and_counted(genome, tmp_path):
    bed = tmp_path / "zero.bed"
    bed.write_text("chr1\t1000\t1100\nchr1\t5000\t5000\nchr2\t2000\t2100\n")
    with pytest.raises(GenocnnError, match=r"zero.bed: line 2: empty interval"):
        read_bed(bed, SIZES)
    read = read_bed(bed, SIZES, skip_bad=True)
    assert [iv.line for iv in read.intervals] == [1, 3] and read.skipped == 1
    assert read.first_problem.startswith("line 2: empty interval")


def test_interval_past_the_chromosome_end_is_centred_inside_padded_and_noted(genome, tmp_path):
    end = SIZES["chr2"]
    bed = tmp_path / "edge.bed"
    bed.write_text(f"chr1\t1000\t1100\nchr2\t{end - 50}\t{end + 150}\nchr2\t{end - 1000}\t{end + 10}\n")
    bed.write_text(bed.read_text() + f"chr2\t{end - 10}\t{end + 5000}\n")  # its midpoint lies past the end
    windows = peak_windows(bed, genome["fasta"], 200)
    # centred on the part inside (end - 50 .. end); the id names the window's bases in the chromosome
    assert windows.ids[1] == f"chr2:{end - 125}-{end}"
    assert windows.sequences[1] == genome["text"]["chr2"][-125:] + "N" * 75
    assert windows.sequences[2] == genome["text"]["chr2"][end - 600 : end - 400]  # window inside: not padded
    assert windows.ids[3] == f"chr2:{end - 105}-{end}" and windows.sequences[3].count("N") == 95
    assert windows.notes == [
        f"{bed}: 3 interval(s) end past their chromosome's end (first: line 2: chr2 {end - 50}-{end + 150}, "
        f"chr2 is {end} bp); kept, their windows centred on the part inside the chromosome",
        f"{bed}: 2 window(s) run off a chromosome end and were padded with N",
    ]


def test_skip_bad_reports_the_count_and_trains(genome, tmp_path):
    bed = tmp_path / "mixed.bed"
    bed.write_text(genome["bed"].read_text() + "".join(line for line, _ in BAD_LINES[:4]))
    run = tmp_path / "run"
    args = ["train", "--bed", bed, "--genome", genome["fasta"], "--out", run, "--config", genome["config"],
            "--set", "training.epochs=1", "--device", "cpu", "--quiet"]
    assert cli(*args).exit_code == 2
    result = cli(*args, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "skipped 4 bad interval(s)" in result.stderr and f"line {len(genome['peaks']) + 3}" in result.stderr
    assert (run / "model.pt").is_file()
    # a resume must use the data options the run was started with
    result = cli(*args, "--skip-bad", "--negatives", "shuffle", "--resume", run)
    assert result.exit_code == 2 and "--negatives differs: not given in the run, shuffle given" in result.stderr, result.stderr
    assert cli(*args, "--skip-bad", "--resume", run).exit_code == 0


def test_genome_flags_need_each_other(genome, tmp_path):
    out = tmp_path / "run"
    for args, needle in [
        (["--bed", genome["bed"]], "--bed and --genome go together"),
        (["--bed", genome["bed"], "--genome", genome["fasta"], "--pos", genome["fasta"]], "not several"),
        (["--pos", genome["bed"], "--negatives", "gc"], "--bed/--genome data only"),
        (["--pos", genome["bed"], "--valid-chroms", "chr2"], "need --bed/--genome data"),
        (["--bed", genome["bed"], "--genome", tmp_path / "missing.fa"], "no such genome FASTA"),
    ]:
        result = cli("train", *args, "--out", out)
        assert result.exit_code == 2 and needle in result.stderr, (args, result.stderr)


def test_large_inputs_are_recorded_by_size_and_mtime(genome, monkeypatch):
    import genocnn.checkpoint as train_module

    small = train_module.file_record(genome["bed"])
    assert len(small["sha256"]) == 64
    monkeypatch.setattr(train_module, "HASH_LIMIT", 1000)
    big = train_module.file_record(genome["fasta"])
    assert big["sha256"] is None and big["bytes"] == os.path.getsize(genome["fasta"])
    assert big["mtime"] == os.path.getmtime(genome["fasta"])


# --- end to end ----------------------------------------------------------------------------------


def test_train_and_predict_on_a_genome(genome, tmp_path):
    run = tmp_path / "run"
    result = cli("train", "--bed", genome["narrow"], "--genome", genome["fasta"], "--out", run,
                 "--config", genome["config"], "--valid-chroms", "chr2", "--test-chroms", "chr3",
                 "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    rows = load_bed(genome["narrow"], genome["fasta"], seed=0).chroms  # training.seed 0: the same negatives
    assert metrics["n_test"] == rows.count("chr3") and metrics["n_valid"] == rows.count("chr2")
    assert metrics["auroc"] > 0.8, metrics
    meta = json.loads((run / "run.json").read_text())
    assert [f["path"] for f in meta["inputs"]] == [str(genome["narrow"]), str(genome["fasta"])]
    assert meta["config"]["data"]["length"] == 100  # median interval length

    preds = tmp_path / "p.tsv"
    result = cli("predict", run, "--bed", genome["bed"], "--genome", genome["fasta"], "--out", preds)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(preds, sep="\t")
    assert list(table.columns) == ["id", "bound", "mostly_n"] and len(table) == len(genome["peaks"])
    c, s, e, _ = genome["peaks"][0]
    assert table["id"][0] == f"{c}:{(s + e) // 2 - 50}-{(s + e) // 2 + 50}"
    assert table["bound"].median() > 0.5
    bad = tmp_path / "bad.bed"
    bad.write_text(genome["bed"].read_text() + BAD_LINES[0][0])
    args = ["predict", run, "--bed", bad, "--genome", genome["fasta"], "--out", preds]
    result = cli(*args)
    assert result.exit_code == 2 and f"bad.bed: line {len(genome['peaks']) + 3}:" in result.stderr
    result = cli(*args, "--skip-bad")
    assert result.exit_code == 0 and "skipped 1 bad interval(s)" in result.stderr
    assert len(pd.read_csv(preds, sep="\t")) == len(genome["peaks"])
    both = cli("predict", run, genome["fasta"], "--bed", genome["bed"], "--genome", genome["fasta"], "--out", preds)
    assert both.exit_code == 2 and "either" in both.stderr


def test_unknown_held_out_chromosome_is_refused_before_any_genome_work(genome, tmp_path, monkeypatch):
    import genocnn.training

    def no_data(*args, **kwargs):
        raise AssertionError("the data were loaded (negatives drawn) before the names were checked")

    monkeypatch.setattr(genocnn.training, "load_dataset", no_data)
    args = ["train", "--bed", genome["bed"], "--genome", genome["fasta"], "--out", tmp_path / "run",
            "--config", genome["config"], "--set", "training.epochs=1", "--device", "cpu", "--quiet"]
    for held, needle in ((["--valid-chroms", "chr2,chrQ"], "--valid-chroms: unknown chromosome(s) chrQ"),
                         (["--valid-chroms", "chr2", "--test-chroms", "chr2"], "in both --valid-chroms")):
        result = cli(*args, *held)
        assert result.exit_code == 2 and result.stderr.strip().splitlines() == [
            next(line for line in result.stderr.splitlines() if needle in line)], result.stderr
        assert not (tmp_path / "run").exists()
