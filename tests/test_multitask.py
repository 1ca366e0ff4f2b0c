"""Multi-task labels, kill-and-resume, and DistributedDataParallel on gloo, through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from genocnn.cli import app
from tests.conftest import TINY_MOTIF

SECOND_MOTIF = "GGGGCGGGGC"
BIN = Path(sys.executable).parent


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """400 sequences, two tasks (one motif each), some labels unknown."""
    rng = np.random.default_rng(5)
    d = tmp_path_factory.mktemp("labelled")
    rows, records = [], []
    for i in range(400):
        s = "".join(rng.choice(list("ACGT"), size=80))
        a, b = rng.random() < 0.4, rng.random() < 0.4
        for motif, present in ((TINY_MOTIF, a), (SECOND_MOTIF, b)):
            if present:
                p = int(rng.integers(0, 70))
                s = s[:p] + motif + s[p + 10 :]
        records.append((f"s{i}", s))
        rows.append({"id": f"s{i}", "creb": int(a), "sp": "NA" if i % 17 == 0 else int(b)})
    fasta = d / "seqs.fa"
    fasta.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    labels = d / "labels.tsv"
    pd.DataFrame(rows).to_csv(labels, sep="\t", index=False)
    config = d / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"conv": [{"filters": 8, "kernel_size": 10, "pool_size": 4}], "dense": [8]},
        "training": {"epochs": 12, "patience": 100, "lr": 0.01, "batch_size": 32, "calibration_bp": 200_000},
    }))
    return fasta, labels, config


def test_multitask_train_predict(labelled, tmp_path):
    fasta, labels, config = labelled
    run = tmp_path / "run"
    result = cli("train", "--fasta", fasta, "--labels", labels, "--out", run, "--config", config, "--quiet")
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"creb", "sp"}
    assert all(m["auroc"] > 0.85 for m in metrics["tasks"].values())
    assert metrics["auroc"] == pytest.approx(np.mean([m["auroc"] for m in metrics["tasks"].values()]))
    meta = json.loads((run / "run.json").read_text())
    assert meta["genocnn_version"] and [f["path"] for f in meta["inputs"]] == [str(fasta), str(labels)]
    assert all(len(f["sha256"]) == 64 for f in meta["inputs"])
    preds = tmp_path / "p.tsv"
    assert cli("predict", run, fasta, "--out", preds).exit_code == 0
    assert list(pd.read_csv(preds, sep="\t").columns) == ["id", "creb", "sp", "mostly_n"]


def _bad_labels(tmp_path, text):
    path = tmp_path / "labels.tsv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, needles",
    [
        ("id\tt\ns0\t1\ns1\t0\nzz\t1\nyy\t0\n", ["labels.tsv", "2 id(s) not in", "'zz'"]),
        ("id\tt\ns0\t1\n", ["seqs.fa", "2 record(s) without a row", "'s1'"]),
        ("id\tt\ns0\t1\ns1\t0\ns1\t1\ns2\t0\n", ["labels.tsv", "line 4", "duplicate id 's1'"]),
        ("id\tt\ns0\t1\ns1\tyes\ns2\t2\n", ["labels.tsv", "line 3", "'yes'", "2 such values"]),
        ("id\ns0\ns1\ns2\n", ["labels.tsv", "task column"]),
    ],
)
def test_label_errors(tmp_path, text, needles):
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(">s0\nACGTACGTAC\n>s1\nACGTACGTAC\n>s2\nACGTACGTAC\n")
    out = tmp_path / "run"
    result = cli("train", "--fasta", fasta, "--labels", _bad_labels(tmp_path, text), "--out", out)
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()


def test_duplicate_fasta_ids(tmp_path):
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(">s0\nACGT\n>s0\nACGT\n")
    labels = _bad_labels(tmp_path, "id\tt\ns0\t1\n")
    result = cli("train", "--fasta", fasta, "--labels", labels, "--out", tmp_path / "run")
    assert result.exit_code == 2 and "duplicate record id 's0'" in result.stderr


def test_set_overrides_and_config_show(tmp_path):
    result = cli("config", "show", "deepbind", "--set", "training.lr=3e-4", "--set", "model.conv.0.filters=7")
    assert result.exit_code == 0
    shown = yaml.safe_load(result.stdout)
    assert shown["training"]["lr"] == 3e-4 and shown["model"]["conv"][0]["filters"] == 7
    bad = cli("config", "show", "default", "--set", "model.conv.3.filters=1")
    assert bad.exit_code == 2 and "no item 3" in bad.stderr


def _state(run):
    return torch.load(run / "model.pt", weights_only=True)["state_dict"]


def test_kill_and_resume_reaches_the_same_weights(labelled, tmp_path):
    fasta, labels, config = labelled
    args = ["train", "--fasta", fasta, "--labels", labels, "--config", config,
            "--set", "training.epochs=25", "--set", "training.scheduler=plateau", "--set", "training.lr_patience=1",
            "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full"
    subprocess.run([BIN / "genocnn", *map(str, args), "--out", str(full)], check=True, env=env, timeout=300)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([BIN / "genocnn", *map(str, args), "--out", str(killed)], env=env)
    deadline = time.time() + 240
    while not (killed / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.pt").exists(), "training finished before it could be killed"
    epoch = torch.load(killed / "last.pt", weights_only=True)["progress"]["epoch"]
    assert 1 <= epoch < 25

    resumed = subprocess.run([BIN / "genocnn", *map(str, args), "--resume", str(killed)],
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _state(full), _state(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (full / "metrics.json").read_text() == (killed / "metrics.json").read_text()
    lr = pd.read_csv(full / "history.tsv", sep="\t")["lr"]
    assert lr.iloc[-1] < lr.iloc[0], "the schedule never cut the rate, so its resumed state went untested"
    assert "best" in torch.load(killed / "last.pt", weights_only=True)["scheduler"]


def test_resume_without_state_or_with_changed_inputs(labelled, tmp_path):
    fasta, labels, config = labelled
    result = cli("train", "--fasta", fasta, "--labels", labels, "--resume", tmp_path / "none")
    assert result.exit_code == 2 and "nothing to resume" in result.stderr
    run = tmp_path / "run"
    cli("train", "--fasta", fasta, "--labels", labels, "--config", config, "--out", run,
        "--set", "training.epochs=1", "--quiet")
    changed = tmp_path / "labels2.tsv"
    changed.write_text(labels.read_text().replace("\t1\t", "\t0\t", 1))
    result = cli("train", "--fasta", fasta, "--labels", changed, "--resume", run)
    assert result.exit_code == 2 and "differ" in result.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_torchrun_ddp_on_gloo_matches_single_process(tiny_fastas, tmp_path):
    torchrun = BIN / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed")
    pos, neg = tiny_fastas
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"conv": [{"filters": 8, "kernel_size": 10, "pool_size": 4}], "dense": [8]},
        "training": {"epochs": 10, "patience": 100, "lr": 0.01, "batch_size": 32, "calibration_bp": 200_000},
    }))
    common = ["train", "--pos", str(pos), "--neg", str(neg), "--config", str(config), "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    subprocess.run([BIN / "genocnn", *common, "--out", str(single)], check=True, env=env, timeout=300)
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
         "-m", "genocnn", *common, "--out", str(ddp)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((ddp / "run.json").read_text())["world_size"] == 2
    a = json.loads((single / "metrics.json").read_text())
    b = json.loads((ddp / "metrics.json").read_text())
    assert abs(a["auroc"] - b["auroc"]) < 0.03, (a, b)
    assert not list(ddp.glob(".*.tmp"))
