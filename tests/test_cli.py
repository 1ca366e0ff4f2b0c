"""The command line, through typer's CliRunner in tmp_path, plus a few real console-script runs.

Contract: ``genocnn train/predict/motifs/simulate``; every user mistake gives
exactly one line on stderr naming the file and what is wrong, exit status 2,
no traceback, and no output file (or temporary file) left behind.
"""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from genocnn.cli import app
from genocnn.fasta import read_fasta

from tests.conftest import ROOT

# The dict of the `tiny_config` fixture, with 3 epochs, as a user would write it.
TINY_CONFIG = {
    "model": {"conv": [{"filters": 8, "kernel_size": 10, "pool_size": 4}], "dense": [8], "pooled_dropout": 0.0},
    "training": {"epochs": 3, "patience": 15, "lr": 0.01, "batch_size": 32, "calibration_bp": 200_000},
    "motifs": {"min_sites": 5},
}
MOTIF_FILES = ("motifs.meme", "motifs.jaspar", "motifs.transfac", "filters.tsv")

runner = CliRunner()


def cli(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def console_script() -> str:
    found = Path(sys.executable).parent / "genocnn"
    return str(found) if found.exists() else shutil.which("genocnn")


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of genocnn.atomic left in ``folder``."""
    return sorted(folder.glob(".*.tmp")) if folder.is_dir() else []


def assert_user_error(result, names: str | Path, outputs=()) -> str:
    """Exit 2, one stderr line naming ``names``, no traceback, no output or temp files."""
    err = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert err.count("\n") == 0, err
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert err.startswith("genocnn: error: "), err
    assert str(names) in err, err
    for out in map(Path, outputs):
        assert not out.exists(), f"{out} left behind"
        assert not leftovers(out.parent), leftovers(out.parent)
    return err


# --------------------------------------------------------------------------- data


def _wrap(seq: str, width: int) -> list[str]:
    return [seq[i : i + width] for i in range(0, len(seq), width)]


def messy_fasta(records, path: Path) -> Path:
    """Same records, written the way real files come: gzip, CRLF, wrapped lines, blanks, lowercase."""
    lines = []
    for k, (name, seq) in enumerate(records):
        lines.append(f">{name} some description\tfield")
        lines.extend(_wrap(seq.lower() if k % 2 else seq, 17))
        if k % 5 == 0:
            lines.append("")
    path.write_bytes(gzip.compress(("\r\n".join(lines) + "\r\n").encode()))
    return path


def with_n_runs_and_lengths(records, rng: np.random.Generator):
    """Insert N runs and cut/extend sequences so lengths vary widely (30 to 160 bp)."""
    out = []
    for name, seq in records:
        start = int(rng.integers(0, len(seq) - 5))
        seq = seq[:start] + "N" * int(rng.integers(1, 6)) + seq[start + 5 :]
        if rng.random() < 0.3:
            seq = seq[: int(rng.integers(30, len(seq)))]
        elif rng.random() < 0.3:
            seq = seq + "nnnn" + "".join(rng.choice(list("acgt"), size=int(rng.integers(1, 57))))
        out.append((name, seq))
    return out


BAD_FASTA = {
    "missing": None,
    "directory": None,
    "empty": b"",
    "no_header": b"ACGTACGTAC\nACGTTT\n",
    "fastq": b"@read1\nACGTACGT\n+\nIIIIIIII\n",
    "html": b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n",
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd" + bytes(range(128, 256)),
    "protein": b">sp|P69905|HBA_HUMAN\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF\n",
    "digits": b">s1\nACGTACGTAC\n>s2\n1 acgtacgtac gtacgtacgt\n",
    "truncated_gzip": None,
}


def bad_fasta(kind: str, folder: Path) -> Path:
    path = folder / f"bad_{kind}.fa"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
        return path
    if kind == "truncated_gzip":
        body = "".join(f">s{i}\n{'ACGT' * 50}\n" for i in range(500)).encode()
        blob = gzip.compress(body)
        path = folder / "bad_truncated.fa.gz"
        path.write_bytes(blob[: len(blob) // 2])
        return path
    path.write_bytes(BAD_FASTA[kind])
    return path


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def config_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_CONFIG))
    return path


@pytest.fixture(scope="module")
def cli_run(tiny_fastas, config_yaml, tmp_path_factory) -> Path:
    """A run trained through the CLI (3 epochs), shared by the predict/motifs tests."""
    pos, neg = tiny_fastas
    run = tmp_path_factory.mktemp("cli") / "run"
    result = cli("train", "--pos", pos, "--neg", neg, "--out", run, "--config", config_yaml,
                 "--seed", 0, "--device", "cpu", "--quiet")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "test AUROC" in result.stdout
    return run


# ---------------------------------------------------------------- happy paths


def test_train_writes_a_run(cli_run):
    assert {p.name for p in cli_run.iterdir()} == {"model.pt", "last.pt", "run.json", "config.yaml", "history.tsv",
                                                  "metrics.json", ".genocnn.lock"}
    metrics = json.loads((cli_run / "metrics.json").read_text())
    assert metrics["n_test"] == 60 and metrics["auroc"] > 0.8
    config = yaml.safe_load((cli_run / "config.yaml").read_text())
    assert config["training"]["epochs"] == 3 and config["data"]["length"] == 100
    assert config["model"]["conv"][0]["filters"] == 8
    assert len(pd.read_csv(cli_run / "history.tsv", sep="\t")) <= 3
    assert not leftovers(cli_run)


def test_train_messy_gzip_without_negatives(tiny_fastas, config_yaml, tmp_path):
    """gzip + CRLF + lowercase + N runs + variable lengths; --neg omitted -> shuffled negatives."""
    pos, _ = tiny_fastas
    records = with_n_runs_and_lengths(read_fasta(pos), np.random.default_rng(0))
    messy = messy_fasta(records, tmp_path / "pos.fa.gz")
    run = tmp_path / "run"
    result = cli("train", "--pos", messy, "--out", run, "--config", config_yaml,
                 "--epochs", 1, "--seed", 3, "--device", "cpu", "--quiet")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_valid"] + metrics["n_test"] == 600  # 300 + 300 shuffled
    config = yaml.safe_load((run / "config.yaml").read_text())
    lengths = [len(s) for _, s in records]
    assert config["data"]["length"] == max(lengths) and min(lengths) < 60
    assert config["training"]["epochs"] == 1 and config["training"]["seed"] == 3


def test_predict_writes_probabilities_in_input_order(cli_run, tiny_fastas, tmp_path):
    pos, neg = tiny_fastas
    rng = np.random.default_rng(5)
    records = list(read_fasta(pos))[:60] + list(read_fasta(neg))[:60]
    records = [records[i] for i in rng.permutation(len(records))]
    seqs = tmp_path / "seqs.fa"
    seqs.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    out = tmp_path / "preds.tsv"
    result = cli("predict", cli_run, seqs, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["id", "bound", "mostly_n"] and not table["mostly_n"].any()
    assert table["id"].tolist() == [i for i, _ in records]
    assert table["bound"].between(0, 1).all()
    truth = [i.startswith("p") for i, _ in records]
    assert roc_auc_score(truth, table["bound"]) > 0.8
    assert not leftovers(tmp_path)

    # The same records gzipped, CRLF, wrapped and in lower case give the same numbers.
    messy = messy_fasta(records, tmp_path / "seqs.fa.gz")
    result = cli("predict", cli_run, messy, "--out", tmp_path / "messy.tsv", "--batch-size", 7)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    again = pd.read_csv(tmp_path / "messy.tsv", sep="\t")
    assert again["id"].tolist() == table["id"].tolist()
    np.testing.assert_allclose(again["bound"], table["bound"], atol=1e-5)


def test_predict_any_length_and_n_runs(cli_run, tiny_fastas, tmp_path):
    pos, _ = tiny_fastas
    records = with_n_runs_and_lengths(list(read_fasta(pos))[:40], np.random.default_rng(2))
    records += [("short", "ACGT"), ("allN", "N" * 100), ("long", "ACGT" * 300)]
    seqs = messy_fasta(records, tmp_path / "seqs.fa.gz")
    out = tmp_path / "sub" / "preds.tsv"
    result = cli("predict", cli_run, seqs, "--out", out)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    table = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert table["id"].tolist() == [i for i, _ in records]
    assert table["bound"].between(0, 1).all()


def test_motifs_writes_four_files(cli_run, tiny_fastas, tmp_path):
    from genocnn.motif_io import read_motifs

    pos, _ = tiny_fastas
    out = tmp_path / "motifs"
    result = cli("motifs", cli_run, pos, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    clusters = tuple(f"clusters.{ext}" for ext in ("meme", "jaspar", "transfac", "motif", "tsv"))
    assert sorted(p.name for p in out.iterdir()) == sorted(MOTIF_FILES + ("motifs.motif", "logos", "report.html")
                                                           + clusters)
    assert "distinct motifs (clusters.tsv" in result.stdout
    table = pd.read_csv(out / "filters.tsv", sep="\t")
    assert len(table) == 8  # one row per first-layer filter
    assert {"filter", "motif", "influence", "jaspar_id", "jaspar_name", "status"} <= set(table.columns)
    exported = table[table["status"] == "exported"]
    assert exported["influence"].is_monotonic_decreasing
    for name, fmt in [("motifs.meme", "meme"), ("motifs.jaspar", "jaspar"), ("motifs.transfac", "transfac")]:
        motifs = read_motifs(out / name, format=fmt)
        assert len(motifs) == len(exported), name
        assert [m.name for m in motifs] == exported["motif"].tolist(), name
    # names only when the calibrated rule gives one; the database used on every compared row
    from pyjaspar import JASPAR_LATEST_RELEASE

    assert {"name_level", "e_value", "name_reason", "jaspar_release", "jaspar_collection"} <= set(table.columns)
    assert set(exported["jaspar_release"]) == {JASPAR_LATEST_RELEASE}
    assert set(exported["jaspar_collection"]) == {"CORE vertebrates"}
    unnamed = exported[exported["name_level"].isna()]
    assert len(unnamed) and unnamed["jaspar_name"].isna().all() and unnamed["jaspar_id"].notna().all()
    named = exported[exported["name_level"].notna()]
    assert named["jaspar_name"].notna().all()
    meme = {m.name: m.description for m in read_motifs(out / "motifs.meme")}
    assert all(meme[m] == "" for m in unnamed["motif"])
    assert f"{len(named)} of {len(exported)} motifs named (calibrated rule) against {JASPAR_LATEST_RELEASE} CORE vertebrates" in result.stdout


def test_simulate_writes_data(tmp_path):
    out = tmp_path / "sim"
    result = cli("simulate", "--out", out, "--tf", "GATA1", "--n", 12, "--length", 50, "--seed", 1)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert {p.name for p in out.iterdir()} == {"pos.fa", "neg.fa", "truth.tsv", "motif.meme"}
    pos, neg = list(read_fasta(out / "pos.fa")), list(read_fasta(out / "neg.fa"))
    assert len(pos) == len(neg) == 12 and {len(s) for _, s in pos + neg} == {50}
    truth = pd.read_csv(out / "truth.tsv", sep="\t")
    assert truth["bound"].sum() == 12 and (truth.loc[truth["bound"] == 1, "site_start"] >= 0).all()


def test_simulate_unknown_tf(tmp_path):
    out = tmp_path / "sim"
    result = cli("simulate", "--out", out, "--tf", "NOSUCHTF", "--n", 5)
    assert_user_error(result, "NOSUCHTF")
    assert not out.exists()


# --------------------------------------------------------------- bad FASTA input


@pytest.mark.parametrize("kind", list(BAD_FASTA))
def test_train_bad_pos(kind, tiny_fastas, config_yaml, tmp_path):
    _, neg = tiny_fastas
    pos = bad_fasta(kind, tmp_path)
    run = tmp_path / "run"
    result = cli("train", "--pos", pos, "--neg", neg, "--out", run, "--config", config_yaml, "--device", "cpu")
    assert_user_error(result, pos, [run / "model.pt"])
    assert not run.exists()


@pytest.mark.parametrize("kind", ["missing", "fastq", "protein", "truncated_gzip"])
def test_train_bad_neg(kind, tiny_fastas, config_yaml, tmp_path):
    pos, _ = tiny_fastas
    neg = bad_fasta(kind, tmp_path)
    run = tmp_path / "run"
    result = cli("train", "--pos", pos, "--neg", neg, "--out", run, "--config", config_yaml, "--device", "cpu")
    assert_user_error(result, neg)
    assert not run.exists()


@pytest.mark.parametrize("kind", list(BAD_FASTA))
def test_predict_bad_seqs(kind, cli_run, tmp_path):
    seqs = bad_fasta(kind, tmp_path)
    out = tmp_path / "preds.tsv"
    result = cli("predict", cli_run, seqs, "--out", out, "--device", "cpu")
    assert_user_error(result, seqs, [out])


def test_predict_bad_record_late_in_file_leaves_nothing(cli_run, tiny_fastas, tmp_path):
    """Records before the bad one stream through; the output must still not appear."""
    pos, _ = tiny_fastas
    seqs = tmp_path / "late.fa"
    seqs.write_text(pos.read_text() + ">bad\nACGTXACGT\n")
    out = tmp_path / "preds.tsv"
    err = assert_user_error(cli("predict", cli_run, seqs, "--out", out, "--batch-size", 16), seqs, [out])
    assert "'bad'" in err and "301" in err


@pytest.mark.parametrize("kind", ["missing", "empty", "html", "binary", "digits", "truncated_gzip"])
def test_motifs_bad_seqs(kind, cli_run, tmp_path):
    seqs = bad_fasta(kind, tmp_path)
    out = tmp_path / "motifs"
    result = cli("motifs", cli_run, seqs, "--out", out, "--device", "cpu")
    assert_user_error(result, seqs, [out / f for f in MOTIF_FILES])
    assert not out.exists()


# ------------------------------------------------------------------ bad config

BAD_CONFIGS = {
    "unknown_key": ("training:\n  epochz: 3\n", "training.epochz"),
    "unknown_top_key": ("optimizer: {lr: 0.1}\n", "optimizer"),
    "negative_epochs": ("training: {epochs: -1}\n", "training.epochs"),
    "string_lr": ("training: {lr: fast}\n", "training.lr"),
    "bad_activation": ("model:\n  conv: [{activation: tanh}]\n", "activation"),
    "bool_as_int": ("training: {batch_size: true}\n", "training.batch_size"),
    "fraction_range": ("data: {test_fraction: 0.9}\n", "data.test_fraction"),
    "not_a_mapping": ("- epochs\n- 3\n", "mapping"),
    "broken_yaml": ("model: [unclosed\ntraining: {epochs: 3\n", "not valid YAML"),
    "tabs_yaml": ("training:\n\tepochs: 3\n", "not valid YAML"),
}


@pytest.mark.parametrize("kind", list(BAD_CONFIGS))
def test_train_bad_config_file(kind, tiny_fastas, tmp_path):
    pos, neg = tiny_fastas
    text, what = BAD_CONFIGS[kind]
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    run = tmp_path / "run"
    err = assert_user_error(cli("train", "--pos", pos, "--neg", neg, "--out", run, "--config", config), config)
    assert what in err
    assert not run.exists()


def test_train_binary_config_file(tiny_fastas, tmp_path):
    pos, neg = tiny_fastas
    config = tmp_path / "bad.yaml"
    config.write_bytes(b"\xff\xfe\x00training\x89")
    run = tmp_path / "run"
    assert_user_error(cli("train", "--pos", pos, "--neg", neg, "--out", run, "--config", config), config)
    assert not run.exists()


@pytest.mark.parametrize("name", ["missing.yaml", "missing.yml", "a_folder.yaml", "nosuchpreset"])
def test_train_missing_config_or_unknown_preset(name, tiny_fastas, tmp_path, monkeypatch):
    pos, neg = tiny_fastas
    monkeypatch.chdir(tmp_path)
    if name == "a_folder.yaml":
        (tmp_path / name).mkdir()
    run = tmp_path / "run"
    err = assert_user_error(cli("train", "--pos", pos, "--neg", neg, "--out", run, "--config", name), name)
    if name == "nosuchpreset":
        assert "deepbind" in err  # lists the presets
    assert not run.exists()


def test_train_epochs_override_checked(tiny_fastas, tmp_path):
    pos, neg = tiny_fastas
    run = tmp_path / "run"
    err = assert_user_error(cli("train", "--pos", pos, "--neg", neg, "--out", run, "--epochs", 0), "--epochs")
    assert not run.exists()
    assert err


def test_train_out_is_a_file(tiny_fastas, tmp_path):
    pos, neg = tiny_fastas
    out = tmp_path / "taken"
    out.write_text("keep me")
    assert_user_error(cli("train", "--pos", pos, "--neg", neg, "--out", out, "--device", "cpu"), out)
    assert out.read_text() == "keep me"


# ------------------------------------------------------------ foreign run dirs


class _Evil:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def foreign_run(kind: str, folder: Path, real_run: Path, marker: Path) -> Path:
    run = folder / f"run_{kind}"
    if kind == "missing":
        return run
    run.mkdir()
    model = run / "model.pt"
    if kind == "random_bytes":
        model.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "other_torch_dict":
        torch.save({"weights": torch.zeros(3)}, model)
    elif kind == "truncated_checkpoint":
        blob = (real_run / "model.pt").read_bytes()
        model.write_bytes(blob[: len(blob) // 2])
    elif kind == "evil_torch_zip":
        torch.save({"format": _Evil(marker), "x": torch.zeros(1)}, model)
    elif kind == "evil_plain_pickle":
        model.write_bytes(pickle.dumps({"format": _Evil(marker)}))
    elif kind == "model_pt_is_a_dir":
        model.mkdir()
    return run


FOREIGN = ["missing", "empty_dir", "random_bytes", "other_torch_dict", "truncated_checkpoint",
           "evil_torch_zip", "evil_plain_pickle", "model_pt_is_a_dir"]


@pytest.mark.parametrize("command", ["predict", "motifs"])
@pytest.mark.parametrize("kind", FOREIGN)
def test_foreign_run_dir(kind, command, cli_run, tiny_fastas, tmp_path):
    pos, _ = tiny_fastas
    marker = tmp_path / "pwned"
    run = foreign_run(kind, tmp_path, cli_run, marker)
    out = tmp_path / ("preds.tsv" if command == "predict" else "motifs")
    result = cli(command, run, pos, "--out", out, "--device", "cpu")
    outputs = [out] if command == "predict" else [out / f for f in MOTIF_FILES]
    err = assert_user_error(result, run, outputs)
    assert not marker.exists(), "unpickling ran code"
    if kind.startswith("evil"):
        assert "refused" in err or "not a readable" in err
    assert not out.exists()


def test_evil_checkpoint_would_really_create_the_marker(tmp_path):
    """Guard for the test above: the payload does work when loaded unsafely."""
    marker = tmp_path / "pwned"
    torch.save({"format": _Evil(marker)}, tmp_path / "model.pt")
    torch.load(tmp_path / "model.pt", weights_only=False)
    assert marker.exists()


# ---------------------------------------------------------------- bad --device


@pytest.mark.parametrize("device", ["gpu", "CPU", "cuda:x", "meta", ""])
def test_bad_device(device, cli_run, tiny_fastas, tmp_path):
    pos, neg = tiny_fastas
    run, preds, motifs = tmp_path / "run", tmp_path / "preds.tsv", tmp_path / "motifs"
    needle = f"{device!r}"
    assert_user_error(cli("train", "--pos", pos, "--neg", neg, "--out", run, "--device", device), needle)
    assert not run.exists()
    assert_user_error(cli("predict", cli_run, pos, "--out", preds, "--device", device), needle, [preds])
    assert_user_error(cli("motifs", cli_run, pos, "--out", motifs, "--device", device), needle)
    assert not motifs.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_cuda_requested_without_cuda(cli_run, tiny_fastas, tmp_path):
    pos, _ = tiny_fastas
    out = tmp_path / "preds.tsv"
    err = assert_user_error(cli("predict", cli_run, pos, "--out", out, "--device", "cuda"), "'cuda'", [out])
    assert "not available" in err


# ---------------------------------------------------------- outputs in the way


def test_predict_out_is_a_directory(cli_run, tiny_fastas, tmp_path):
    pos, _ = tiny_fastas
    out = tmp_path / "preds.tsv"
    out.mkdir()
    result = cli("predict", cli_run, pos, "--out", out)
    assert result.exit_code == 2 and str(out) in result.stderr
    assert not leftovers(tmp_path)


def test_motifs_out_is_a_file(cli_run, tiny_fastas, tmp_path):
    pos, _ = tiny_fastas
    out = tmp_path / "motifs"
    out.write_text("keep me")
    result = cli("motifs", cli_run, pos, "--out", out)
    assert result.exit_code == 2 and str(out) in result.stderr
    assert out.read_text() == "keep me"


# ------------------------------------------------------- the real console script


def test_console_script_help_lists_commands():
    result = subprocess.run([console_script(), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("train", "predict", "motifs", "simulate"):
        assert command in result.stdout


def test_python_dash_m_help():
    result = subprocess.run([sys.executable, "-m", "genocnn", "--help"], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "Usage" in result.stdout


def test_console_script_refuses_evil_checkpoint(cli_run, tiny_fastas, tmp_path):
    """A real process: exit 2, one stderr line, no traceback, no marker, no output."""
    pos, _ = tiny_fastas
    marker = tmp_path / "pwned"
    run = foreign_run("evil_torch_zip", tmp_path, cli_run, marker)
    out = tmp_path / "preds.tsv"
    result = subprocess.run([console_script(), "predict", str(run), str(pos), "--out", str(out)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and str(run) in err, err
    assert not marker.exists() and not out.exists() and not leftovers(tmp_path)


def test_outputs_follow_the_umask(cli_run, tiny_fastas, tmp_path):
    import os
    import stat

    pos, _ = tiny_fastas
    umask = os.umask(0o022)
    os.umask(umask)
    out = tmp_path / "preds.tsv"
    assert cli("predict", cli_run, pos, "--out", out).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
