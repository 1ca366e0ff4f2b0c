"""Input files as new users bring them: R/pandas labels, byte-order marks, duplicate ids,
mixed lengths, read-only genome folders, and the task names they asked for.

Each rule is checked through the CLI and, where there is one, the API.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from genocnn.cli import app
from genocnn.data import choose_length, load_labelled, read_labels
from genocnn.errors import GenocnnError
from genocnn.fasta import read_fasta
from genocnn.genome import peak_windows, read_bed
from genocnn.motif_io import read_motifs, write_motifs
from genocnn.pwm import Motif
from tests.conftest import ROOT, TINY_MOTIF

BOM = "\ufeff"
TINY = {
    "model": {"conv": [{"filters": 8, "kernel_size": 10, "pool_size": 4}], "dense": [8]},
    "training": {"epochs": 1, "patience": 5, "lr": 0.01, "batch_size": 32, "calibration_bp": 20_000},
}


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, *needles) -> str:
    err = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert err.startswith("genocnn: error: ") and "\n" not in err and "Traceback" not in result.output, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """120 sequences of 60 bp, TINY_MOTIF in about half; their 0/1 labels."""
    rng = np.random.default_rng(3)
    d = tmp_path_factory.mktemp("labelled")
    records, bound = [], []
    for i in range(120):
        s = "".join(rng.choice(list("ACGT"), size=60))
        if i % 2:
            s = s[:20] + TINY_MOTIF + s[30:]
        records.append((f"s{i}", s))
        bound.append(i % 2)
    return d, records, bound


@pytest.fixture(scope="module")
def small_genome(tmp_path_factory) -> Path:
    rng = np.random.default_rng(4)
    d = tmp_path_factory.mktemp("small_genome")
    path = d / "genome.fa"
    with open(path, "w") as fh:
        for name in ("chr1", "chr2"):
            seq = "".join(rng.choice(list("ACGT"), size=3000))
            fh.write(f">{name}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60)))
    return path


# ------------------------------------------------------------------ simulate: task names as given


def test_simulate_names_tasks_as_the_user_spelt_them(tmp_path):
    from genocnn.simulation import simulate_multitask

    result = cli("simulate", "--out", tmp_path / "sim", "--tfs", "CTCF, SPI1", "--n", 10, "--length", 60)
    assert result.exit_code == 0, result.output
    assert "Spi1" in result.stdout  # JASPAR's own spelling is still shown with the matrix id
    assert list(pd.read_csv(tmp_path / "sim" / "labels.tsv", sep="\t").columns) == ["id", "CTCF", "SPI1"]
    sim = simulate_multitask(tmp_path / "api", ("spi1", "MA0139.2"), n=5, length=60)
    assert list(read_labels(sim.labels).columns) == ["spi1", "MA0139.2"]
    one_error_line(cli("simulate", "--out", tmp_path / "dup", "--tfs", "CTCF,SPI1,CTCF", "--n", 5),
                   "--tfs names CTCF more than once")
    assert not (tmp_path / "dup").exists()


# ------------------------------------------------------------------ labels as pandas and R write them


SPELLINGS = {1: ["1", "1.0", "TRUE", "true", "True"], 0: ["0", "0.0", "FALSE", "false", "False"]}


def _labels_text(bound, spell) -> str:
    rows = [f"s{i}\t{SPELLINGS[b][i % 5] if spell else b}\t{'NA' if i % 7 == 0 else SPELLINGS[b][(i + 1) % 5]}"
            for i, b in enumerate(bound)]
    return "id\tbound\tother\n" + "\n".join(rows) + "\n"


def test_labels_read_floats_and_logicals(tmp_path, labelled):
    d, records, bound = labelled
    spelt = tmp_path / "spelt.tsv"
    spelt.write_text(_labels_text(bound, spell=True))
    table = read_labels(spelt)
    assert table["bound"].tolist() == [float(b) for b in bound]
    other = table["other"].to_numpy()
    assert np.isnan(other[::7]).all() and not np.isnan(np.delete(other, np.arange(0, len(other), 7))).any()
    pandas_written = tmp_path / "pandas.tsv"  # what DataFrame.to_csv writes for a float column with NaN
    pd.DataFrame({"id": [f"s{i}" for i in range(4)], "t": [1.0, 0.0, np.nan, 1.0]}).to_csv(
        pandas_written, sep="\t", index=False)
    assert read_labels(pandas_written)["t"].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(read_labels(pandas_written)["t"].iloc[2])
    with pytest.raises(GenocnnError, match=r"line 3, column 't': value 'yes' is not 0, 1 or NA"):
        bad = tmp_path / "bad.tsv"
        bad.write_text("id\tt\ns0\t1.0\ns1\tyes\ns2\t0.5\n")
        read_labels(bad)


def test_train_accepts_float_and_logical_labels(tmp_path, labelled, config):
    d, records, bound = labelled
    fasta = tmp_path / "seqs.fa"
    fasta.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    labels = tmp_path / "labels.tsv"
    labels.write_text(_labels_text(bound, spell=True))
    plain = tmp_path / "plain.tsv"
    plain.write_text(_labels_text(bound, spell=False))
    assert (load_labelled(fasta, labels).y.nan_to_num(-1) == load_labelled(fasta, plain).y.nan_to_num(-1)).all()
    run = tmp_path / "run"
    result = cli("train", "--fasta", fasta, "--labels", labels, "--out", run, "--config", config,
                 "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    assert set(json.loads((run / "metrics.json").read_text())["tasks"]) == {"bound", "other"}


# ------------------------------------------------------------------ byte-order marks


def test_bom_fasta_api_and_predict(tmp_path, tiny_run):
    fasta = tmp_path / "bom.fa"
    fasta.write_text(BOM + ">a first\nACGTACGTAC\n>b\nTTTTGGGGCC\n", encoding="utf-8")
    assert list(read_fasta(fasta)) == [("a", "ACGTACGTAC"), ("b", "TTTTGGGGCC")]
    import gzip

    gz = tmp_path / "bom.fa.gz"
    gz.write_bytes(gzip.compress(fasta.read_bytes()))
    assert list(read_fasta(gz)) == list(read_fasta(fasta))
    out = tmp_path / "p.tsv"
    result = cli("predict", tiny_run.run_dir, fasta, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out, sep="\t")["id"].tolist() == ["a", "b"]


def test_bom_labels_api_and_train(tmp_path, labelled, config):
    d, records, bound = labelled
    labels = tmp_path / "labels.tsv"
    labels.write_text(BOM + _labels_text(bound, spell=False), encoding="utf-8")
    assert list(read_labels(labels).columns) == ["bound", "other"]
    assert read_labels(labels).index[0] == "s0"
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(BOM + "".join(f">{i}\n{s}\n" for i, s in records), encoding="utf-8")
    result = cli("train", "--fasta", fasta, "--labels", labels, "--out", tmp_path / "run", "--config", config,
                 "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["n_test"] > 0


def test_bom_bed_api_and_predict(tmp_path, tiny_run, small_genome):
    bed = tmp_path / "bom.bed"
    bed.write_text(BOM + "chr1\t100\t200\tp1\nchr2\t1000\t1100\n", encoding="utf-8")
    read = read_bed(bed, {"chr1": 3000, "chr2": 3000})
    assert [(iv.chrom, iv.start, iv.end) for iv in read.intervals] == [("chr1", 100, 200), ("chr2", 1000, 1100)]
    out = tmp_path / "p.tsv"
    result = cli("predict", tiny_run.run_dir, "--bed", bed, "--genome", small_genome, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out, sep="\t")["id"].tolist() == ["chr1:100-200", "chr2:1000-1100"]


@pytest.mark.parametrize("fmt", ["meme", "jaspar", "transfac", "homer"])
def test_bom_motif_files(tmp_path, fmt):
    pfm = np.array([[8, 0, 1, 1], [0, 9, 0, 1], [1, 0, 9, 0], [1, 1, 0, 8]], dtype=float)
    motif = Motif("m1", pfm, description="demo")
    plain = tmp_path / f"m.{fmt}"
    write_motifs([motif], plain, format=fmt)
    bom = tmp_path / f"bom.{fmt}"
    bom.write_text(BOM + plain.read_text(), encoding="utf-8")
    got, want = read_motifs(bom, format=fmt), read_motifs(plain, format=fmt)
    assert [m.name for m in got] == [m.name for m in want] == ["m1"]
    np.testing.assert_allclose(got[0].pfm, want[0].pfm)
    sniffed = tmp_path / "bom_no_suffix"
    sniffed.write_text(bom.read_text(encoding="utf-8"), encoding="utf-8")
    assert [m.name for m in read_motifs(sniffed)] == ["m1"]


def test_bom_motif_db_through_motifs(tmp_path, tiny_run):
    from genocnn.compare import jaspar_motifs

    db = tmp_path / "db.meme"
    write_motifs(jaspar_motifs()[:40], db, format="meme")
    db.write_text(BOM + db.read_text(), encoding="utf-8")
    pos = tmp_path / "pos.fa"
    pos.write_text("".join(f">p{i}\n{'ACGTAGCTAG' * 3}{TINY_MOTIF}{'GATCCATGCA' * 3}\n" for i in range(40)))
    result = cli("motifs", tiny_run.run_dir, pos, "--out", tmp_path / "m", "--db", db, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "db.meme" in result.stdout


# ------------------------------------------------------------------ duplicate ids: refused everywhere


def test_duplicate_fasta_ids_refused_naming_both_records(tmp_path, tiny_run, config):
    fasta = tmp_path / "dup.fa"
    fasta.write_text(">a\nACGTACGT\n>b\nACGTACGT\n>c\nACGTAAAA\n>b\nTTTTACGT\n")
    with pytest.raises(GenocnnError, match=r"dup.fa: duplicate record id 'b': records 2 and 4"):
        list(read_fasta(fasta))
    out = tmp_path / "p.tsv"
    one_error_line(cli("predict", tiny_run.run_dir, fasta, "--out", out), "dup.fa", "'b'", "records 2 and 4")
    assert not out.exists()
    run = tmp_path / "run"
    one_error_line(cli("train", "--pos", fasta, "--out", run, "--config", config), "dup.fa", "records 2 and 4")
    assert not run.exists()


def test_duplicate_label_ids_name_both_lines(tmp_path):
    labels = tmp_path / "labels.tsv"
    labels.write_text("id\tt\ns0\t1\ns1\t0\ns2\t1\ns1\t1\n")
    with pytest.raises(GenocnnError, match=r"line 5: duplicate id 's1', also on line 3"):
        read_labels(labels)
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(">s0\nACGT\n>s1\nACGT\n>s2\nACGT\n")
    one_error_line(cli("train", "--fasta", fasta, "--labels", labels, "--out", tmp_path / "run"),
                   "labels.tsv", "line 5", "also on line 3")


def test_duplicate_bed_windows_refused_or_skipped(tmp_path, tiny_run, small_genome):
    bed = tmp_path / "dup.bed"
    bed.write_text("chr1\t100\t200\nchr1\t500\t600\nchr1\t120\t180\nchr2\t100\t200\n")  # line 3: same centre as 1
    with pytest.raises(GenocnnError, match=r"dup.bed: line 3: duplicate window chr1:100-200 of line 1"):
        peak_windows(bed, small_genome, 100)
    kept = peak_windows(bed, small_genome, 100, skip_bad=True)
    assert kept.ids == ["chr1:100-200", "chr1:500-600", "chr2:100-200"]
    assert any("skipped 1 interval(s) whose window repeats" in n for n in kept.notes)
    out = tmp_path / "p.tsv"
    args = ("predict", tiny_run.run_dir, "--bed", bed, "--genome", small_genome, "--out", out)
    one_error_line(cli(*args), "dup.bed", "line 3", "line 1", "--skip-bad")
    assert not out.exists()
    result = cli(*args, "--skip-bad")
    assert result.exit_code == 0 and "skipped 1 interval(s)" in result.stderr, result.output
    assert pd.read_csv(out, sep="\t")["id"].tolist() == kept.ids


# ------------------------------------------------------------------ one long record among short ones


def test_choose_length_warns_when_lengths_vary_twofold():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose_length([100, 150, 199], None, 1000) == 199
        assert choose_length([50, 5000], 120, 1000) == 120  # the user chose
    with pytest.warns(UserWarning, match=r"vary from 80 to 1000000 bp \(1 of 4 over twice the median 80 bp\); "
                                         r"model length 1000 bp \(the longest, capped at data.max_length 1000\): "
                                         r"1 sequences centre-cropped, 3 zero-padded"):
        assert choose_length([80, 80, 80, 1_000_000], None, 1000) == 1000


def test_train_says_which_length_it_chose(tmp_path, labelled, config):
    d, records, bound = labelled
    pos = tmp_path / "pos.fa"
    pos.write_text("".join(f">{i}\n{s}\n" for (i, s), b in zip(records, bound) if b)
                   + ">long\n" + "ACGT" * 100 + "\n")
    run = tmp_path / "run"
    result = cli("train", "--pos", pos, "--out", run, "--config", config, "--device", "cpu", "--quiet")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if "genocnn: warning: sequence lengths" in line]
    assert len(warned) == 1, result.stderr
    assert "from 60 to 400 bp (2 of 122 over twice the median 60 bp); model length 400 bp" in warned[0]
    assert "120 zero-padded" in warned[0] and "--set data.length=N" in warned[0]
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["length"] == 400


# ------------------------------------------------------------------ read-only genome folder


@pytest.fixture
def read_only_genome(tmp_path, small_genome):
    folder = tmp_path / "ro"
    folder.mkdir()
    genome = folder / "genome.fa"
    genome.write_bytes(small_genome.read_bytes())
    (tmp_path / "peaks.bed").write_text("chr1\t100\t200\nchr2\t500\t600\n")
    folder.chmod(0o555)
    try:
        probe = folder / "probe"
        try:
            probe.touch()
        except PermissionError:
            pass
        else:
            probe.unlink()
            pytest.skip("chmod does not stop this user (root) from writing")
        yield genome, tmp_path / "peaks.bed"
    finally:
        folder.chmod(0o755)


def test_read_only_genome_folder_says_what_to_do(read_only_genome, tiny_run, tmp_path):
    genome, bed = read_only_genome
    with pytest.raises(GenocnnError, match=r"samtools faidx .*genome.fa"):
        peak_windows(bed, genome, 100)
    out = tmp_path / "p.tsv"
    err = one_error_line(cli("predict", tiny_run.run_dir, "--bed", bed, "--genome", genome, "--out", out),
                         str(genome), f"samtools faidx {genome}", "writable folder")
    assert "rebuild=False" not in err and not out.exists()
    run = tmp_path / "run"
    one_error_line(cli("train", "--bed", bed, "--genome", genome, "--out", run), f"samtools faidx {genome}")
    assert not run.exists()
    assert not os.path.exists(f"{genome}.fai")


#: Root ignores a folder's mode; without these capabilities it obeys it as any user does.
NO_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def test_read_only_genome_folder_for_root_without_override(tmp_path, tiny_run, small_genome):
    """The same check for root (CI containers): the real CLI in a process that cannot override file modes."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("for root with setpriv; test_read_only_genome_folder_says_what_to_do covers other users")
    folder = tmp_path / "ro"
    folder.mkdir()
    genome = folder / "genome.fa"
    genome.write_bytes(small_genome.read_bytes())
    bed = tmp_path / "peaks.bed"
    bed.write_text("chr1\t100\t200\n")
    folder.chmod(0o555)
    try:
        if subprocess.run([*NO_OVERRIDE, "touch", str(folder / "probe")], capture_output=True).returncode == 0:
            pytest.skip("setpriv cannot drop CAP_DAC_OVERRIDE here")
        for args in (["predict", tiny_run.run_dir, "--bed", bed, "--genome", genome, "--out", tmp_path / "p.tsv"],
                     ["train", "--bed", bed, "--genome", genome, "--out", tmp_path / "run"]):
            result = subprocess.run([*NO_OVERRIDE, sys.executable, "-m", "genocnn", *map(str, args)], cwd=ROOT,
                                    capture_output=True, text=True, timeout=300)
            err = result.stderr.strip().splitlines()
            assert result.returncode == 2 and len(err) == 1, result.stderr
            assert err[-1].startswith(f"genocnn: error: {genome}: cannot write its index"), err
            assert f"samtools faidx {genome}" in err[-1] and "rebuild=False" not in result.stderr
        assert not (tmp_path / "p.tsv").exists() and not (tmp_path / "run").exists()
    finally:
        folder.chmod(0o755)
