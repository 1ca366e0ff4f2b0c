"""Calibrated site calls: thresholds from false calls per Mbp, one record per site, no calls in N."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import genocnn
from genocnn.calibration import background_sequences, calibrate, calls_per_mbp
from genocnn.cli import app
from genocnn.encode import one_hot
from genocnn.errors import GenocnnError
from genocnn.sites import ScanBlock, call_sites
from genocnn.thresholds import DEFAULT_FPR, resolve_threshold, threshold_for_rate

from tests.conftest import TINY_MOTIF, write_fa


def test_background_keeps_composition_and_length():
    x = one_hot(["AAAAACCCGT" * 10, "GGGTTTAC" * 5], length=100)
    pieces = background_sequences(x, 3_000, seed=1)
    text = "".join(pieces)
    assert len(text) == 3_000 and set(text) <= set("ACGT")
    source = "AAAAACCCGT" * 10 + "GGGTTTAC" * 5
    for base in "ACGT":  # shuffles of repeats of the held-out text: same base shares
        assert text.count(base) / len(text) == pytest.approx(source.count(base) / len(source), abs=0.02)
    assert background_sequences(x, 3_000, seed=1) == pieces  # seeded


@pytest.mark.parametrize("window", [20, 2, 1])
def test_calls_per_mbp_counts_what_the_site_caller_calls(window):
    rng = np.random.default_rng(0)
    probs = [rng.random(5_000).astype(np.float32) ** 8, rng.random(3_000).astype(np.float32) ** 8]
    probs[1][::7] = np.nan  # windows without a score
    blocks = [ScanBlock(f"r{i}", np.arange(len(p)), p[:, None], np.ones((len(p), 1), np.int8), window, 1,
                        len(p) + window - 1) for i, p in enumerate(probs)]
    thresholds = np.sort([0.3, 0.6, float(np.sort(probs[0])[-40]), 0.9, 0.99])  # one equals a score
    rates = calls_per_mbp(probs, window, thresholds)
    bases = sum(len(p) + window - 1 for p in probs)
    for t, rate in zip(thresholds, rates):
        assert rate == pytest.approx(len(call_sites(blocks, t)) / bases * 1e6)
    assert rates[-1] < rates[-2] < rates[-3]  # falls in the tail (low thresholds merge calls: not monotone)
    np.testing.assert_array_equal(calls_per_mbp(probs, window, thresholds[::-1]), rates[::-1])  # any order


def _curve():
    # log rate linear in the logit threshold: rate = 1000 * exp(-2 * logit)
    t = np.linspace(0.5, 0.99, 30)
    rate = 1000 * np.exp(-2 * np.log(t / (1 - t)))
    return {"thresholds": torch.tensor(t[None]), "calls_per_mbp": torch.tensor(rate[None]), "background_bp": 2_000_000}


def test_threshold_for_rate_interpolates_and_extrapolates_the_tail():
    cal = _curve()
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    for rate in (500.0, 50.0, 5.0):  # inside the measured range
        assert logit(threshold_for_rate(cal, rate)) == pytest.approx(np.log(1000 / rate) / 2, abs=0.02)
    low = threshold_for_rate(cal, 0.01)  # far below what 2 Mbp can measure: along the tail's line
    assert logit(low) == pytest.approx(np.log(1000 / 0.01) / 2, rel=0.02)
    assert threshold_for_rate(cal, 1e6) == pytest.approx(0.5)  # above the curve: its lowest threshold


def test_resolve_threshold_rules():
    cal = _curve()
    assert resolve_threshold(cal, threshold=0.7)[0] == 0.7
    value, source = resolve_threshold(cal)
    assert value == threshold_for_rate(cal, DEFAULT_FPR) and "per Mbp" in source
    assert resolve_threshold(None)[0] == 0.5
    for kwargs, needle in [({"threshold": 0.5, "fpr": 1.0}, "not both"), ({"fpr": 0.0}, "> 0"),
                           ({"threshold": 2.0}, "between 0 and 1")]:
        with pytest.raises(GenocnnError, match=needle):
            resolve_threshold(cal, **kwargs)
    with pytest.raises(GenocnnError, match="no calibration"):
        resolve_threshold(None, fpr=1.0)


def test_training_stores_a_calibration_curve(tiny_run):
    model = genocnn.load_model(tiny_run.run_dir)
    cal = model.calibration
    assert cal is not None and cal["background_bp"] == 2_000_000
    assert cal["thresholds"].shape == cal["calls_per_mbp"].shape == (1, 48)
    assert (np.diff(cal["thresholds"][0].numpy()) >= 0).all()
    tail = cal["calls_per_mbp"][0].numpy()[cal["calls_per_mbp"][0].argmax():]
    assert (np.diff(tail) <= 1e-9).all()  # from its peak on, fewer calls at every higher threshold


@pytest.mark.slow
def test_calibrated_scan_keeps_its_false_call_rate(tiny_run):
    """On fresh shuffled background the default scan calls about the rate it was asked for."""
    model = tiny_run.model
    rng = np.random.default_rng(5)
    seqs = ["".join(rng.choice(list("ACGT"), size=model.length)) for _ in range(200)]
    model.calibration = calibrate(model, one_hot(seqs, length=model.length), 1_000_000, seed=0)
    rate = 20.0
    threshold = threshold_for_rate(model.calibration, rate)
    fresh = background_sequences(one_hot(seqs, length=model.length), 1_000_000, seed=9)
    called = genocnn.call_sites(genocnn.scan(model, fresh, progress=False), threshold)
    assert rate / 2 <= len(called) <= rate * 2  # per 1 Mbp


def test_cli_scan_default_uses_the_calibration_and_writes_summits(tiny_run, tmp_path):
    rng = np.random.default_rng(3)
    seq = list("".join(rng.choice(list("ACGT"), size=30_000)))
    for s in (3_000, 11_000, 25_000):
        seq[s : s + len(TINY_MOTIF)] = TINY_MOTIF
    seq[15_000:20_000] = "N" * 5_000
    fasta = write_fa(tmp_path / "g.fa", [("chrQ", "".join(seq))])
    out = tmp_path / "sites.narrowPeak"
    result = CliRunner().invoke(app, ["scan", str(tiny_run.run_dir), str(fasta), "--out", str(out),
                                      "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "false call(s) per Mbp of shuffled background" in result.output
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert all(len(r) == 10 for r in rows)
    spans = sorted((int(r[1]), int(r[2])) for r in rows)
    assert all(b <= c for (_, b), (c, _) in zip(spans, spans[1:]))  # one record per site: no overlaps
    assert not any(a < 20_000 - 50 and b > 15_000 + 50 for a, b in spans)  # nothing inside the N gap
    for r in rows:
        assert 0 <= int(r[9]) < int(r[2]) - int(r[1])  # summit offset inside the site
    both = CliRunner().invoke(app, ["scan", str(tiny_run.run_dir), str(fasta), "--out", str(tmp_path / "x.bed"),
                                    "--threshold", "0.5", "--fpr", "1", "--device", "cpu", "--quiet"])
    assert both.exit_code == 2 and "--threshold or --fpr, not both" in both.output
    assert not (tmp_path / "x.bed").exists()


def test_cli_predict_marks_mostly_n_and_warns_once_about_lengths(tiny_run, tmp_path):
    fasta = write_fa(tmp_path / "s.fa", [("full", "ACGT" * 25), ("short", "ACGTAC"), ("gap", "ACGT" * 5 + "N" * 80),
                                         ("long", "ACGT" * 60)])
    out = tmp_path / "p.tsv"
    result = CliRunner().invoke(app, ["predict", str(tiny_run.run_dir), str(fasta), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert result.output.count("warning:") == 1
    assert "1 of 4 sequences were centre-cropped and 1 zero-padded to the model length 100" in result.output
    assert "2 mostly N or padding" in result.output
    table = __import__("pandas").read_csv(out, sep="\t")
    assert table["mostly_n"].tolist() == [False, True, True, False]


def test_cli_scan_threads_sets_the_cpu_threads_and_keeps_the_track(tiny_run, tmp_path):
    import torch

    rng = np.random.default_rng(4)
    seq = list("".join(rng.choice(list("ACGT"), size=8_000)))
    seq[2_000 : 2_000 + len(TINY_MOTIF)] = TINY_MOTIF
    fasta = write_fa(tmp_path / "g.fa", [("chrQ", "".join(seq))])
    before = torch.get_num_threads()
    outputs = []
    try:
        for threads in ("1", "2"):
            out = tmp_path / f"t{threads}.bed"
            track = tmp_path / f"t{threads}.bedGraph"
            result = CliRunner().invoke(app, ["scan", str(tiny_run.run_dir), str(fasta), "--out", str(out),
                                              "--bedgraph", str(track), "--threads", threads, "--device", "cpu",
                                              "--quiet"])
            assert result.exit_code == 0, result.output
            assert torch.get_num_threads() == int(threads)
            outputs.append(track.read_text())
        bad = CliRunner().invoke(app, ["scan", str(tiny_run.run_dir), str(fasta), "--out", str(tmp_path / "x.bed"),
                                       "--threads", "0"])
        assert bad.exit_code == 2 and not (tmp_path / "x.bed").exists()
    finally:
        torch.set_num_threads(before)
    assert outputs[0] == outputs[1] and outputs[0]  # same track whatever the thread count


def test_many_task_calibration_in_groups_equals_one_scan(monkeypatch):
    """Models with many tasks are calibrated a group of tasks per scan (bounded memory): same curves."""
    import genocnn.calibration as calibration
    from genocnn.config import Config
    from genocnn.models import build_model

    torch.manual_seed(0)
    model = build_model(Config().model, 5, 60).eval()
    x = one_hot(["ACGTTGCAAGGCTTAACCGG" * 3] * 4, length=60)
    whole = calibrate(model, x, 20_000, seed=3)
    monkeypatch.setattr(calibration, "MAX_SCORES", 2 * 20_000)  # two tasks a scan: groups of 2, 2, 1
    grouped = calibrate(model, x, 20_000, seed=3)
    assert whole["thresholds"].shape == (5, calibration.GRID)
    torch.testing.assert_close(grouped["thresholds"], whole["thresholds"])
    torch.testing.assert_close(grouped["calls_per_mbp"], whole["calls_per_mbp"])
    assert not torch.equal(whole["thresholds"][0], whole["thresholds"][1])  # the tasks differ
