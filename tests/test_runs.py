"""Runs that lose nothing: refused overwrites, locks, resume, NaN losses, full disks, interrupted exports.

Everything goes through the command line (typer's CliRunner, or real
processes where signals and locks between processes are the point), and
through the Python API where it has one. The kill loop at the end SIGKILLs a
real training run at random times, resumes it each time, and checks that it
ends with the weights of an uninterrupted run and no corrupted file.
"""

from __future__ import annotations

import errno
import json
import os
import random
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

import genocnn
import genocnn.atomic
import genocnn.attribution_files
import genocnn.cli
import genocnn.export
import genocnn.fit
import genocnn.training
from genocnn.cli import app
from genocnn.errors import GenocnnError
from genocnn.rundir import LOCK_FILE, RunLock

from tests.conftest import ROOT

CONFIG = {
    "model": {"conv": [{"filters": 8, "kernel_size": 10, "pool_size": 4}], "dense": [8]},
    "training": {"epochs": 4, "patience": 15, "lr": 0.01, "batch_size": 32, "calibration_bp": 0},
    "motifs": {"min_sites": 5},
}
RUN_FILES = {"model.pt", "last.pt", "run.json", "config.yaml", "history.tsv", "metrics.json"}


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    err = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "\n" not in err and "Traceback" not in err and err.startswith("genocnn: error: "), err
    return err


def leftovers(folder: Path) -> list[str]:
    """Temporary files and folders of genocnn.atomic in ``folder``."""
    return sorted(p.name for p in folder.glob(".*.tmp"))


@pytest.fixture(scope="module")
def config_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


@pytest.fixture
def train_args(tiny_fastas, config_yaml):
    pos, neg = tiny_fastas
    return ["train", "--pos", pos, "--neg", neg, "--config", config_yaml, "--device", "cpu", "--quiet"]


def nan_at(monkeypatch, call: int) -> None:
    """Make the ``call``-th training loss (counted over batches) NaN."""
    real = genocnn.fit.masked_bce
    calls = {"n": 0}

    def loss(logits, y, pos_weight=None):
        value = real(logits, y, pos_weight)
        if pos_weight is not None:  # a training batch, not the validation loss
            calls["n"] += 1
            if calls["n"] == call:
                return value * float("nan")
        return value

    monkeypatch.setattr(genocnn.fit, "masked_bce", loss)


def batches_per_epoch(tiny_fastas) -> int:
    n = 2 * sum(1 for line in tiny_fastas[0].read_text().splitlines() if line.startswith(">"))
    return -(-int(n * 0.8) // CONFIG["training"]["batch_size"])  # 80 % train split


# ------------------------------------------------------------- existing runs


def test_train_refuses_an_existing_run_or_folder_unless_force(train_args, tiny_fastas, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert cli(*train_args, "--out", run, "--epochs", 2).exit_code == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    err = one_error_line(cli(*train_args, "--out", run))
    assert str(run) in err and "already holds a run" in err and "--force" in err and "--resume" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before

    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    err = one_error_line(cli(*train_args, "--out", other))
    assert str(other) in err and "not empty" in err and "--force" in err
    assert [p.name for p in other.iterdir()] == ["notes.txt"], "a refused run wrote into the folder"

    with pytest.raises(GenocnnError, match="already holds a run"):
        genocnn.train(*tiny_fastas, out=run, config=CONFIG, device="cpu", progress=False)
    assert one_error_line(cli(*train_args, "--out", run, "--force", "--resume", run))

    # --force clears the old run first: a new run that fails in epoch 1 leaves neither the old model.pt nor its run.json
    nan_at(monkeypatch, 2)
    err = one_error_line(cli(*train_args, "--out", run, "--force"))
    assert "epoch 1, batch 2" in err
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]  # and no run.json: the command may be given again
    monkeypatch.undo()
    result = cli(*train_args, "--out", other, "--force", "--epochs", 1)
    assert result.exit_code == 0, result.stderr
    assert (other / "notes.txt").read_text() == "mine" and (other / "model.pt").is_file()


# --------------------------------------------------- NaN, unfinished runs, resume


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_the_last_epoch(train_args, tiny_fastas, tmp_path,
                                                                      monkeypatch):
    run = tmp_path / "run"
    per_epoch = batches_per_epoch(tiny_fastas)
    nan_at(monkeypatch, 2 * per_epoch + 3)  # epoch 3, batch 3
    err = one_error_line(cli(*train_args, "--out", run))
    assert "epoch 3, batch 3" in err and "nan" in err and f"{run / 'last.pt'} keeps epoch 2" in err
    monkeypatch.undo()
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["progress"]["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    history = pd.read_csv(run / "history.tsv", sep="\t")  # written every epoch
    assert history["epoch"].tolist() == [1, 2] and history["valid_auroc"].notna().all()
    assert not (run / "model.pt").exists() and not leftovers(run)

    # every command that reads a run says that training did not finish, and how to finish it
    pos, _ = tiny_fastas
    for command in (["predict", run, pos, "--out", tmp_path / "p.tsv"],
                    ["motifs", run, pos, "--out", tmp_path / "m"],
                    ["scan", run, pos, "--out", tmp_path / "s.bed"],
                    ["attribute", run, pos, "--out", tmp_path / "a"]):
        err = one_error_line(cli(*command))
        assert "training did not finish" in err and f"genocnn train --resume {run}" in err, err
    with pytest.raises(GenocnnError, match="training did not finish"):
        genocnn.load_model(run)

    # --resume alone takes the data options from run.json, and finishes the run
    result = cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "trained all 4 epochs; kept epoch" in result.stdout
    assert pd.read_csv(run / "history.tsv", sep="\t")["epoch"].tolist() == [1, 2, 3, 4]
    assert genocnn.load_model(run).tasks


def test_resume_names_the_option_that_differs_and_may_raise_epochs(train_args, tiny_fastas, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_args, "--out", run, "--epochs", 2).exit_code == 0
    err = one_error_line(cli("train", "--resume", run, "--set", "training.lr=0.5"))
    assert "training.lr differs: 0.01 in the run, 0.5 given" in err
    err = one_error_line(cli("train", "--resume", run, "--epochs", 1))
    assert "training.epochs differs: 2 in the run, 1 given" in err
    pos, neg = tiny_fastas
    err = one_error_line(cli("train", "--resume", run, "--pos", neg, "--neg", pos))
    assert "--pos differs: " in err and f"{pos} (" in err and f"{neg} (" in err

    result = cli("train", "--resume", run, "--epochs", 4, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert pd.read_csv(run / "history.tsv", sep="\t")["epoch"].tolist() == [1, 2, 3, 4]
    assert torch.load(run / "last.pt", weights_only=True)["config"]["training"]["epochs"] == 4

    # the API: the same rules
    with pytest.raises(GenocnnError, match="training.lr differs"):
        genocnn.train(out=run, resume=True, overrides=["training.lr=0.5"], device="cpu", progress=False)
    again = genocnn.train(out=run, resume=True, epochs=5, device="cpu", progress=False)
    assert len(again.history) == 5 and again.stopping.startswith("trained all 5 epochs")


def test_train_says_when_it_stopped_early_and_which_epoch_it_kept(train_args, tmp_path):
    run = tmp_path / "run"
    result = cli(*train_args, "--out", run, "--set", "training.patience=1", "--epochs", 30)
    assert result.exit_code == 0, result.stderr
    history = pd.read_csv(run / "history.tsv", sep="\t")
    best = int(history.loc[history["valid_auroc"].idxmax(), "epoch"])
    assert len(history) < 30, "patience 1 never stopped training: the test proves nothing"
    assert f"stopped early at epoch {len(history)} of 30" in result.stdout
    assert f"kept epoch {best} (validation AUROC" in result.stdout


# ------------------------------------------------------------------- locks


def test_second_writer_refused_and_stale_lock_taken_over(train_args, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_args, "--out", run, "--epochs", 1).exit_code == 0
    # another process holds the lock
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from genocnn.rundir import RunLock; "
         "lock = RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(120)", str(run)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        for args in (["--resume", run], ["--out", run, "--force"]):
            err = one_error_line(cli(*train_args, *args))
            assert str(run) in err and "another genocnn process is writing this run" in err, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run / LOCK_FILE).exists(), "the killed holder's lock file should still be there (stale)"
    result = cli("train", "--resume", run, "--epochs", 2, "--quiet")
    assert result.exit_code == 0, result.stderr

    # held by this process (the API)
    lock = RunLock(run).acquire()
    try:
        with pytest.raises(GenocnnError, match="another genocnn process"):
            genocnn.train(out=run, resume=True, device="cpu", progress=False)
    finally:
        lock.release()


# --------------------------------------------------------------- full disk


class FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, fh) -> None:
        self.fh = fh

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def fill_disk(monkeypatch, name: str, after: int = 0) -> None:
    """The atomic writer's files for ``name`` fail with ENOSPC, after ``after`` successful ones."""
    seen = {"n": 0}

    def fake_open(file, mode="r", *args, **kwargs):
        fh = open(file, mode, *args, **kwargs)
        if Path(file).name.startswith(f".{name}.") and "w" in mode:
            seen["n"] += 1
            if seen["n"] > after:
                return FullDisk(fh)
        return fh

    monkeypatch.setattr(genocnn.atomic, "open", fake_open, raising=False)


def test_disk_full_is_one_error_and_keeps_earlier_outputs(train_args, tiny_fastas, tmp_path, monkeypatch):
    run = tmp_path / "run"
    fill_disk(monkeypatch, "last.pt", after=2)
    err = one_error_line(cli(*train_args, "--out", run))
    assert err == f"genocnn: error: no space left on device writing {run / 'last.pt'}"
    monkeypatch.undo()
    assert torch.load(run / "last.pt", weights_only=True)["progress"]["epoch"] == 2
    assert len(pd.read_csv(run / "history.tsv", sep="\t")) == 2 and json.loads((run / "run.json").read_text())
    assert not leftovers(run) and not (run / "model.pt").exists()
    assert cli("train", "--resume", run, "--quiet").exit_code == 0

    preds = tmp_path / "preds.tsv"
    assert cli("predict", run, tiny_fastas[0], "--out", preds).exit_code == 0
    earlier = preds.read_bytes()
    fill_disk(monkeypatch, "preds.tsv")
    result = cli("predict", run, tiny_fastas[1], "--out", preds)
    assert result.exit_code == 2 and result.stderr.splitlines()[-1] == (
        f"genocnn: error: no space left on device writing {preds}"), result.stderr
    assert preds.read_bytes() == earlier and not leftovers(tmp_path)


# ------------------------------------------------------ interrupted exports


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_interrupted_motifs_leaves_nothing(tiny_run, tiny_fastas, tmp_path, monkeypatch):
    pos, _ = tiny_fastas
    out = tmp_path / "motifs"
    monkeypatch.setattr(genocnn.export, "write_report", interrupt)  # the last step: everything else written
    result = cli("motifs", tiny_run.run_dir, pos, "--out", out, "--device", "cpu")
    assert result.exit_code == 130
    assert not out.exists() and not leftovers(tmp_path)

    # an earlier output folder stays as it was (interrupted mid-way: motifs.*, filters.tsv and logos written)
    monkeypatch.undo()
    out.mkdir()
    (out / "filters.tsv").write_text("earlier\n")
    monkeypatch.setattr(genocnn.export, "distinct_motifs", interrupt)
    assert cli("motifs", tiny_run.run_dir, pos, "--out", out, "--device", "cpu").exit_code == 130
    assert [p.name for p in out.iterdir()] == ["filters.tsv"] and (out / "filters.tsv").read_text() == "earlier\n"
    assert not leftovers(tmp_path)


def test_interrupted_attribute_leaves_nothing(tiny_run, tiny_fastas, tmp_path, monkeypatch):
    pos, _ = tiny_fastas
    attr = tmp_path / "attr"
    calls = {"n": 0}
    real_plot = genocnn.attribution_files.plot_attribution

    def plot_then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real_plot(*args, **kwargs)

    monkeypatch.setattr(genocnn.attribution_files, "plot_attribution", plot_then_interrupt)
    result = cli("attribute", tiny_run.run_dir, pos, "--out", attr, "--max-seqs", 20, "--plot", 3,
                 "--method", "grad", "--device", "cpu")
    assert result.exit_code == 130 and calls["n"] == 2
    assert not attr.exists() and not leftovers(tmp_path)
    monkeypatch.undo()
    result = cli("attribute", tiny_run.run_dir, pos, "--out", attr, "--max-seqs", 20, "--plot", 3,
                 "--method", "grad", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    assert (attr / "attributions.npz").is_file() and len(list((attr / "logos").glob("*.png"))) == 3


@pytest.mark.slow
def test_sigterm_during_motifs_leaves_no_folder(tiny_run, tiny_fastas, tmp_path):
    """A real process, terminated once it has started writing its (temporary) output folder."""
    out = tmp_path / "motifs"
    proc = subprocess.Popen([sys.executable, "-m", "genocnn", "motifs", str(tiny_run.run_dir), str(tiny_fastas[0]),
                             "--out", str(out), "--device", "cpu"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while not list(tmp_path.glob(".motifs.*.tmp/*")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "motifs ended before it could be terminated"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert not out.exists() and not leftovers(tmp_path)


def test_motifs_progress_names_every_step(tiny_run, tiny_fastas, tmp_path, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    model = genocnn.load_model(tiny_run.run_dir)
    genocnn.export.export_motifs(model, tiny_fastas[0], tmp_path / "m", run_dir=tiny_run.run_dir)
    text = err.getvalue()
    for step in ("extracting filter motifs", "influence", "clustering (Tomtom)", "naming (Tomtom)", "logos",
                 "distinct motifs", "report"):
        assert step in text, step
    assert (tmp_path / "m" / "report.html").is_file()
    err.truncate(0)
    quiet = genocnn.export.Steps("motifs", 2, progress=False)
    quiet("extracting filter motifs")
    quiet.close()
    assert err.getvalue() == ""


@pytest.mark.parametrize("command", ["motifs", "attribute"])
def test_quiet_turns_the_step_bars_off(command, tiny_run, tiny_fastas, tmp_path, monkeypatch):
    seen = []
    original = genocnn.export.Steps.__init__

    def spy(self, desc, total, progress=True):
        seen.append(progress)
        original(self, desc, total, progress)

    monkeypatch.setattr(genocnn.export.Steps, "__init__", spy)
    extra = ["--max-seqs", "4", "--plot", "0"] if command == "attribute" else []
    for flags, expected in (([], True), (["--quiet"], False)):
        seen.clear()
        out = tmp_path / f"{command}{len(flags)}"
        result = CliRunner().invoke(genocnn.cli.app, [command, str(tiny_run.run_dir), str(tiny_fastas[0]),
                                                      "--out", str(out), *extra, *flags])
        assert result.exit_code == 0, result.output
        assert seen and set(seen) == {expected}


# ------------------------------------------------------------------ kill loop


KILL_CONFIG = ["--set", "model.conv.0.filters=4", "--set", "model.conv.0.kernel_size=8",
               "--set", "model.conv.0.dropout=0.2", "--set", "model.dense.0=8", "--set", "training.epochs=45",
               "--set", "training.patience=45", "--set", "training.batch_size=16", "--set", "training.lr=0.003",
               "--set", "training.scheduler=plateau", "--set", "training.lr_patience=3",
               "--set", "training.calibration_bp=0"]


def _every_file_parses(run: Path) -> None:
    """Each file in the run folder reads with its own reader (the lock and temporary files aside)."""
    for path in run.iterdir() if run.is_dir() else ():
        if path.name == LOCK_FILE or path.name.endswith(".tmp"):
            continue
        if path.suffix == ".pt":
            state = torch.load(path, weights_only=True)
            assert state["format"].startswith("genocnn-"), path
        elif path.suffix == ".json":
            assert isinstance(json.loads(path.read_text()), dict), path
        elif path.suffix == ".tsv":
            assert len(pd.read_csv(path, sep="\t")) >= 1, path
        elif path.suffix == ".yaml":
            assert yaml.safe_load(path.read_text())["training"], path
        else:
            raise AssertionError(f"unexpected file {path}")


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns if path.is_file() else 0


@pytest.mark.slow
def test_kill_loop_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    """SIGKILL a real training run at least 20 times at random moments, each followed by --resume.

    400 sequences of 60 bp (a degenerate motif in half), a 4-filter model,
    45 epochs with dropout, reverse-complement augmentation and a plateau
    schedule (early-stopping state kept, patience not reached): about 0.1 s
    an epoch, so most of the time goes to starting processes. A third of the
    kills fall at a random moment before the first checkpoint a process would
    write (imports, data, run.json, model, first epoch), the rest at a random
    point within two epochs after a process's first checkpoint (epochs,
    checkpoints, history, the final files).
    """
    rng = np.random.default_rng(13)
    motif = "TGACGTCATG"
    pos, neg = tmp_path / "pos.fa", tmp_path / "neg.fa"
    with open(pos, "w") as p, open(neg, "w") as n:
        for i in range(200):
            s = "".join(rng.choice(list("ACGT"), size=60))
            at = int(rng.integers(0, 50))
            site = "".join(c if rng.random() > 0.25 else rng.choice(list("ACGT")) for c in motif)
            p.write(f">p{i}\n{s[:at]}{site}{s[at + 10:]}\n")
            n.write(f">n{i}\n{''.join(rng.choice(list('ACGT'), size=60))}\n")
    base = [sys.executable, "-m", "genocnn", "train"]
    fresh = ["--pos", str(pos), "--neg", str(neg), "--device", "cpu", "--quiet", *KILL_CONFIG]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    start = time.time()
    full = tmp_path / "full"
    proc = subprocess.Popen([*base, *fresh, "--out", str(full)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    while not (full / "last.pt").is_file() and proc.poll() is None:
        time.sleep(0.002)
    startup = time.time() - start  # to the first checkpoint: imports, data, run.json, model, epoch 1
    assert proc.wait(timeout=300) == 0
    epoch_seconds = float(pd.read_csv(full / "history.tsv", sep="\t")["seconds"].mean())

    run = tmp_path / "killed"
    pick = random.Random(13)
    kills, epochs_at_kill = 0, []
    while True:
        args = ["--resume", str(run)] if (run / "run.json").is_file() else [*fresh, "--out", str(run)]
        before = _mtime(run / "last.pt")
        proc = subprocess.Popen([*base, *args], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        if kills >= 20:
            _, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr
            break
        # a third of the kills before the process's first checkpoint, the rest up to two epochs after it
        early = pick.random() < 1 / 3
        deadline = time.time() + (pick.uniform(0, startup) if early else 120)
        while proc.poll() is None and _mtime(run / "last.pt") == before and time.time() < deadline:
            time.sleep(0.002)
        if not early:
            time.sleep(pick.uniform(0, 2 * epoch_seconds))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        _, stderr = proc.communicate()
        assert proc.returncode in (0, -signal.SIGKILL), stderr
        _every_file_parses(run)
        if (run / "last.pt").is_file():
            epochs_at_kill.append(torch.load(run / "last.pt", weights_only=True)["progress"]["epoch"])

    assert len(set(epochs_at_kill)) >= 5, f"the kills did not land during training: {epochs_at_kill}"
    _every_file_parses(run)
    assert {p.name for p in run.iterdir()} == RUN_FILES | {LOCK_FILE}, "a temporary file was left"
    a = torch.load(full / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (full / "metrics.json").read_text() == (run / "metrics.json").read_text()
    ha, hb = (pd.read_csv(r / "history.tsv", sep="\t").drop(columns="seconds") for r in (full, run))
    pd.testing.assert_frame_equal(ha, hb)
    print(f"{kills} kills; last.pt epoch after each: {epochs_at_kill}; of {len(ha)} epochs; "
          f"{time.time() - start:.0f} s in all")


def test_interrupted_training_says_how_to_resume(train_args, tmp_path, monkeypatch):
    """Ctrl-C in the third epoch: one line naming the resume command, exit 130; the resumed run finishes."""
    run = tmp_path / "run"
    real_step = genocnn.fit.train_step
    calls = {"n": 0, "limit": None}

    def interrupt_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["limit"] is not None and calls["n"] > calls["limit"]:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(genocnn.fit, "train_step", interrupt_in_epoch_3)
    assert cli(*train_args, "--out", tmp_path / "probe", "--epochs", 1).exit_code == 0  # steps in one epoch
    calls["limit"], calls["n"] = 2 * calls["n"], 0

    result = cli(*train_args, "--out", run)
    assert result.exit_code == 130 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"genocnn: interrupted; the finished epochs are kept: continue with `genocnn train --resume {run}`"]
    assert pd.read_csv(run / "history.tsv", sep="\t")["epoch"].tolist() == [1, 2]
    monkeypatch.undo()
    result = cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert pd.read_csv(run / "history.tsv", sep="\t")["epoch"].tolist() == [1, 2, 3, 4]


def test_interrupted_force_before_its_first_epoch_gives_no_resume_hint(train_args, tmp_path, monkeypatch):
    """`train --force` over an old run, stopped while loading data: the old run's last.pt is no run to resume."""
    run = tmp_path / "run"
    assert cli(*train_args, "--out", run, "--epochs", 2).exit_code == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(genocnn.training, "load_dataset", interrupted)
    result = cli(*train_args, "--out", run, "--force", "--epochs", 5)
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines() == ["genocnn: interrupted; nothing half-written was left"]
    assert pd.read_csv(run / "history.tsv", sep="\t")["epoch"].tolist() == [1, 2]  # the old run, untouched
