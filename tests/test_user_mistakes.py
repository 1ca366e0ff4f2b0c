"""More user mistakes through the CLI: outputs that would replace inputs, runs that fail before their
first epoch, out-of-range seeds and options, labels headers, the same file as --pos and --neg.

Each gives one line on stderr, exit status 2, and leaves the inputs (and the run) as they were.
"""

from __future__ import annotations

import json

import pytest

from tests.test_cli import assert_user_error, cli, cli_run, config_yaml  # noqa: F401 (fixtures)


def test_predict_refuses_to_write_over_its_input_or_the_model(cli_run, tiny_fastas, tmp_path):
    pos, _ = tiny_fastas
    copy = tmp_path / "seqs.fa"
    copy.write_bytes(pos.read_bytes())
    assert_user_error(cli("predict", cli_run, copy, "--out", copy), "is also the input (SEQS)")
    assert copy.read_bytes() == pos.read_bytes()
    model = (cli_run / "model.pt").read_bytes()
    assert_user_error(cli("predict", cli_run, copy, "--out", cli_run / "model.pt"), "a file of the run directory")
    assert (cli_run / "model.pt").read_bytes() == model
    ok = cli("predict", cli_run, copy, "--out", cli_run / "predictions.tsv")  # a new file in the run dir is fine
    assert ok.exit_code == 0, ok.stderr
    (cli_run / "predictions.tsv").unlink()


def test_scan_outputs_may_not_replace_the_genome_or_each_other(cli_run, tiny_fastas, tmp_path):
    pos, _ = tiny_fastas
    genome = tmp_path / "genome.fa"
    genome.write_bytes(pos.read_bytes())
    assert_user_error(cli("scan", cli_run, genome, "--out", genome, "--quiet"), "--out")
    assert genome.read_bytes() == pos.read_bytes()
    sites = tmp_path / "sites.bed"
    err = assert_user_error(cli("scan", cli_run, genome, "--out", sites, "--bedgraph", sites, "--quiet"),
                            "--bedgraph", [sites])
    assert "also given as --out" in err


@pytest.mark.parametrize("fpr", ["nan", "inf", "-1"])
def test_scan_fpr_must_be_a_positive_number(fpr, cli_run, tiny_fastas, tmp_path):
    out = tmp_path / "sites.bed"
    assert_user_error(cli("scan", cli_run, tiny_fastas[0], "--out", out, "--fpr", fpr, "--quiet"), "--fpr", [out])


def test_motifs_options_checked(cli_run, tiny_fastas, tmp_path, monkeypatch):
    out = tmp_path / "motifs"
    for value in ("2", "-1", "nan"):
        assert_user_error(cli("motifs", cli_run, tiny_fastas[0], "--out", out, "--threshold", value), "--threshold",
                          [out])
    assert_user_error(cli("motifs", cli_run, tiny_fastas[0], "--out", out, "--min-sites", 0), "--min-sites", [out])
    monkeypatch.chdir(tmp_path)
    assert_user_error(cli("motifs", cli_run, tiny_fastas[0], "--out", "."), "the current directory")
    assert not (tmp_path / "motifs.meme").exists()


def test_a_run_that_fails_before_its_first_epoch_leaves_nothing(tiny_fastas, config_yaml, tmp_path):
    pos, neg = tiny_fastas
    run = tmp_path / "run"
    args = ("train", "--pos", pos, "--neg", neg, "--out", run, "--config", config_yaml, "--device", "cpu",
            "--quiet", "--set", "data.length=6")  # shorter than the first layer's receptive field
    first = assert_user_error(cli(*args), "receptive field")
    assert not run.exists()
    assert assert_user_error(cli(*args), "receptive field") == first  # the same command again: the same error
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    assert_user_error(cli(*args, "--force"), "receptive field")
    assert (run / "notes.txt").read_text() == "mine" and not (run / "run.json").exists()  # a folder we did not make


@pytest.mark.parametrize("seed", [-1, 2**32, 10**20])
def test_seed_out_of_range(seed, tiny_fastas, tmp_path):
    pos, neg = tiny_fastas
    run = tmp_path / "run"
    assert_user_error(cli("train", "--pos", pos, "--neg", neg, "--out", run, "--seed", seed), "--seed", [run])
    store = tmp_path / "store"
    assert_user_error(cli("prepare", "--pos", pos, "--out", store, "--seed", seed), "--seed", [store])
    err = assert_user_error(cli("train", "--pos", pos, "--neg", neg, "--out", run, "--set", f"training.seed={seed}"),
                            "training.seed", [run])
    assert "between 0 and" in err


@pytest.mark.parametrize("length", [0, -5])
def test_prepare_length_checked(length, tiny_fastas, tmp_path):
    store = tmp_path / "store"
    assert_user_error(cli("prepare", "--pos", tiny_fastas[0], "--out", store, "--length", length), "--length", [store])


def test_same_records_as_pos_and_neg(tiny_fastas, tmp_path):
    run = tmp_path / "run"
    err = assert_user_error(cli("train", "--pos", tiny_fastas[0], "--neg", tiny_fastas[0], "--out", run),
                            str(tiny_fastas[0]), [run])
    assert "ids in both" in err


@pytest.mark.parametrize("header, expected", [
    ("id\tA\tA", "duplicate task name 'A'"),
    ("id\tmostly_n", "reserved"),
    ("id\t\tB", "column 2: empty task name"),
])
def test_labels_header_checked(header, expected, tiny_fastas, tmp_path):
    from genocnn.fasta import read_fasta

    ids = [name for name, _ in read_fasta(tiny_fastas[0])]
    width = header.count("\t")
    labels = tmp_path / "labels.tsv"
    labels.write_text(header + "\n" + "".join(f"{i}" + "\t1" * width + "\n" for i in ids))
    run = tmp_path / "run"
    assert_user_error(cli("train", "--fasta", tiny_fastas[0], "--labels", labels, "--out", run), expected, [run])


def test_labels_row_longer_than_the_header_named_by_line(tmp_path):
    from genocnn.data import read_labels
    from genocnn.errors import GenocnnError

    labels = tmp_path / "labels.tsv"
    labels.write_text("id\tA\ns1\t1\t0\ns2\t0\t1\n")  # every row one field too many (pandas would shift the ids)
    with pytest.raises(GenocnnError, match=r"line 2: 3 tab-separated fields, but the header \(line 1\) has 2"):
        read_labels(labels)
    labels.write_text("id\tA\ns1\t1\ns2\t0\t1\ns3\t1\n")  # one row
    with pytest.raises(GenocnnError, match=r"line 3"):
        read_labels(labels)
    labels.write_text("id\tA\tB\n" + "".join(f"s{i}\t1\t0\n" for i in range(4)) + "s9\t1\t0\t1\n")  # further down
    with pytest.raises(GenocnnError, match=r"line 6: 4 tab-separated fields, but the header \(line 1\) has 3"):
        read_labels(labels)


def test_metrics_json_is_strict_json_with_a_one_class_task(tiny_fastas, config_yaml, tmp_path):
    from genocnn.fasta import read_fasta

    pos, neg = tiny_fastas
    records = [*read_fasta(pos), *read_fasta(neg)]
    fasta = tmp_path / "all.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in records))
    labels = tmp_path / "labels.tsv"
    n_pos = len(list(read_fasta(pos)))
    labels.write_text("id\tbound\tall\n" + "".join(f"{n}\t{int(k < n_pos)}\t1\n" for k, (n, _) in enumerate(records)))
    run = tmp_path / "run"
    result = cli("train", "--fasta", fasta, "--labels", labels, "--out", run, "--config", config_yaml,
                 "--device", "cpu", "--quiet", "--set", "training.calibration_bp=0")
    assert result.exit_code == 0, result.stderr
    text = (run / "metrics.json").read_text()

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    metrics = json.loads(text, parse_constant=refuse)
    assert metrics["tasks"]["all"]["auroc"] is None and metrics["tasks"]["bound"]["auroc"] > 0.5


def test_gz_output_names_are_gzip_compressed(cli_run, tiny_fastas, tmp_path):
    import gzip

    import pandas as pd

    plain, packed = tmp_path / "p.tsv", tmp_path / "p.tsv.gz"
    for out in (plain, packed):
        assert cli("predict", cli_run, tiny_fastas[0], "--out", out).exit_code == 0
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    pd.testing.assert_frame_equal(pd.read_csv(packed, sep="\t"), pd.read_csv(plain, sep="\t"))
    sites = tmp_path / "sites.bed.gz"
    result = cli("scan", cli_run, tiny_fastas[0], "--out", sites, "--threshold", 0.5, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert gzip.decompress(sites.read_bytes()).decode().count("\n") == int(result.stdout.split()[0])


def test_motifs_from_sequences_shorter_than_the_filters(cli_run, tmp_path):
    seqs = tmp_path / "tiny.fa"
    seqs.write_text(">a\nACG\n>b\nTTAC\n>c\nGGA\n")
    out = tmp_path / "motifs"
    result = cli("motifs", cli_run, seqs, "--out", out, "--quiet")
    assert "3 of 3 sequences are less than half A/C/G/T" in result.stderr
    assert result.exit_code == 2 and "no filter has --min-sites" in result.stderr and str(seqs) in result.stderr
    assert not out.exists()


def test_all_n_sequences_refused_and_some_n_warned(tiny_fastas, tmp_path):
    from genocnn.data import load_pos_neg
    from genocnn.fasta import read_fasta

    all_n = tmp_path / "n.fa"
    all_n.write_text("".join(f">s{i}\n{'N' * 150}\n" for i in range(40)))
    run = tmp_path / "run"
    assert_user_error(cli("train", "--pos", all_n, "--out", run), "nothing to learn from", [run])
    some = tmp_path / "some.fa"
    records = list(read_fasta(tiny_fastas[0]))
    some.write_text("".join(f">{n}\n{'N' * len(s) if k < 3 else s}\n" for k, (n, s) in enumerate(records)))
    with pytest.warns(UserWarning, match=f"3 of {len(records)} sequences are less than half A/C/G/T"):
        load_pos_neg(some, tiny_fastas[1])


def test_scan_names_the_position_of_a_bad_character(cli_run, tmp_path):
    import numpy as np

    seq = list("".join(np.random.default_rng(0).choice(list("ACGT"), 50_000)))
    seq[31_234] = "X"
    genome = tmp_path / "genome.fa"
    text = "".join(seq)
    genome.write_text(">chr1\n" + "\n".join(text[i : i + 60] for i in range(0, len(text), 60)) + "\n")
    out = tmp_path / "sites.bed"
    assert_user_error(cli("scan", cli_run, genome, "--out", out, "--threshold", 0.5, "--quiet"),
                      "record 'chr1' at position 31235", [out])


def test_scan_reads_a_bad_genome_once(tiny_run, tmp_path, monkeypatch):
    """A genome read into memory (it starts with a byte-order mark) with a bad base fails on its first read.

    Only a genome open_genome cannot index (plain gzip, read-only folder) is read again, as a stream.
    """
    import genocnn.scanning as scanning
    from genocnn.errors import GenocnnError
    from genocnn.genome import UnindexedGenome

    genome = tmp_path / "genome.fa"
    genome.write_text("\ufeff>chr1\n" + "ACGT" * 100 + "\n>chr2\n" + "ACGT" * 50 + "X" + "ACGT" * 50 + "\n")
    monkeypatch.setattr(scanning, "read_fasta", lambda *a, **k: pytest.fail("the genome was parsed twice"))
    with pytest.raises(GenocnnError, match=r"record 2 \('chr2'\) has characters that are not IUPAC DNA") as err:
        scanning.scan_genome(tiny_run.model, genome, tmp_path / "sites.bed", threshold=0.5, progress=False)
    assert not isinstance(err.value, UnindexedGenome) and not (tmp_path / "sites.bed").exists()


def test_usage_errors_are_one_line_from_the_console_script(tmp_path):
    """click's own errors (bad option values, missing arguments, unknown commands) through ``python -m genocnn``."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    cases = [
        (["scan", "--threads", "0", "RUN", "genome.fa", "--out", "x.bed"], "Invalid value for '--threads'",
         "genocnn scan --help"),
        (["train", "--seed", "abc", "--pos", "p.fa", "--out", "run"], "Invalid value for '--seed'",
         "genocnn train --help"),
        (["trian"], "No such command 'trian'", "genocnn --help"),
        (["predict", "--bogus"], "No such option: --bogus", "genocnn predict --help"),
    ]
    for args, message, hint in cases:
        result = subprocess.run([sys.executable, "-m", "genocnn", *args], cwd=tmp_path, capture_output=True,
                                text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("genocnn: error: ") and message in lines[0] and hint in lines[0]
        assert not list(tmp_path.iterdir())  # nothing written
    done = subprocess.run([sys.executable, "-m", "genocnn", "config", "list"], capture_output=True, text=True,
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "default" in done.stdout


def test_file_outputs_given_as_a_directory_are_refused(cli_run, tiny_fastas, tmp_path):
    pos, _ = tiny_fastas
    existing = tmp_path / "results"
    existing.mkdir()
    assert_user_error(cli("predict", cli_run, pos, "--out", existing), "is a directory")
    assert_user_error(cli("scan", cli_run, pos, "--out", existing, "--quiet"), "is a directory")
    assert list(tmp_path.iterdir()) == [existing] and not list(existing.iterdir())


def test_file_outputs_ending_in_a_slash_are_refused(cli_run, tiny_fastas, tmp_path):
    """``--out results/`` means a folder even before it exists: refused, not written as a file ``results``."""
    pos, _ = tiny_fastas
    folder = f"{tmp_path / 'results'}/"
    assert_user_error(cli("predict", cli_run, pos, "--out", folder), "is a directory")
    assert_user_error(cli("scan", cli_run, pos, "--out", folder, "--quiet"), "is a directory")
    assert_user_error(cli("scan", cli_run, pos, "--out", tmp_path / "sites.bed", "--bedgraph", folder, "--quiet"),
                      "--bedgraph")
    assert not list(tmp_path.iterdir())


def test_simulate_refuses_to_write_into_a_run(cli_run, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in cli_run.iterdir()}
    assert_user_error(cli("simulate", "--out", cli_run, "--tf", "GATA1", "--n", 10, "--length", 50), "training run")
    assert_user_error(cli("simulate", "--out", cli_run, "--tfs", "GATA1,SPI1", "--n", 10, "--length", 50),
                      "model.pt")
    assert {p.name: p.stat().st_mtime_ns for p in cli_run.iterdir()} == before
    again = tmp_path / "sim"
    again.mkdir()
    (again / "config.yaml").write_text("model: {}\n")  # the user's own config beside the data is no run
    for _ in range(2):  # a simulation folder may be written again
        assert cli("simulate", "--out", again, "--tf", "GATA1", "--n", 10, "--length", 50).exit_code == 0


def test_too_few_sequences_to_split_names_the_files(tmp_path):
    pos = tmp_path / "four.fa"
    pos.write_text("".join(f">p{i}\n{'ACGTTGCA' * 8}\n" for i in range(4)))
    err = assert_user_error(cli("train", "--pos", pos, "--out", tmp_path / "run", "--quiet"), pos,
                            [tmp_path / "run"])
    assert "too few sequences (8)" in err


def test_motifs_db_in_no_known_format(cli_run, tiny_fastas, tmp_path):
    db = tmp_path / "db.yaml"
    db.write_text("motifs:\n  - CTCF\n")
    err = assert_user_error(cli("motifs", cli_run, tiny_fastas[0], "--out", tmp_path / "m", "--db", db), db,
                            [tmp_path / "m"])
    assert "no MEME header" in err and "meme, jaspar" in err


def test_under_torchrun_only_rank_0_reports_a_mistake(cli_run, tmp_path, monkeypatch):
    missing = tmp_path / "nosuch.fa"
    for rank, lines in (("1", 0), ("0", 1)):
        monkeypatch.setenv("RANK", rank)
        result = cli("scan", cli_run, missing, "--out", tmp_path / "s.bed", "--quiet")
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == lines, result.stderr
