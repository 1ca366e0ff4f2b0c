"""Attribution maps against naive references, their invariances, and seqlet motifs."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from genocnn.attribution import attribute, gradient_x_input, ism, ism_contributions, ism_deltas
from genocnn.attribution_files import NPZ_KEYS, load_attributions, plot_attribution, save_attributions
from genocnn.cli import app
from genocnn.encode import fit_length, one_hot, reverse_complement
from genocnn.errors import GenocnnError
from genocnn.fasta import read_fasta
from genocnn.motif_io import read_motifs
from genocnn.pwm import Motif
from genocnn.seqlets import Seqlet, attribution_motifs, cluster_seqlets, seqlets

from tests.conftest import TINY_MOTIF

RC_MOTIF = TINY_MOTIF[::-1].translate(str.maketrans("ACGT", "TGCA"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_AT = 50  # an N in the middle of the second test sequence


@pytest.fixture(scope="module")
def model(tiny_run):
    return tiny_run.model.eval()


@pytest.fixture(scope="module")
def positives(tiny_fastas):
    return list(read_fasta(tiny_fastas[0]))


@pytest.fixture(scope="module")
def two_seqs(model, positives):
    """Two bound sequences at the model's length, one with an N."""
    a, b = (fit_length(s, model.length) for _, s in positives[:2])
    b = b[:N_AT] + "N" + b[N_AT + 1:]
    return one_hot([a, b])


def naive_ism(model, x: torch.Tensor) -> np.ndarray:
    """One mutant at a time: the slow, obvious implementation."""
    deltas = np.zeros(x.shape, dtype=np.float64)
    with torch.no_grad():
        for n in range(len(x)):
            ref = float(model(x[n : n + 1])[0, 0])
            for p in range(x.shape[2]):
                if x[n, :, p].sum() == 0:
                    continue
                for b in range(4):
                    if x[n, b, p] == 1:
                        continue
                    mutant = x[n : n + 1].clone()
                    mutant[0, :, p] = 0
                    mutant[0, b, p] = 1
                    deltas[n, b, p] = float(model(mutant)[0, 0]) - ref
    return deltas


# ------------------------------------------------------------------------ ISM


def test_ism_matches_naive_loop(model, two_seqs):
    deltas = ism_deltas(model, two_seqs)
    assert deltas.shape == tuple(two_seqs.shape) and deltas.dtype == np.float32
    np.testing.assert_allclose(deltas, naive_ism(model, two_seqs), atol=1e-5)
    x = two_seqs.numpy()
    assert np.all(deltas[x == 1] == 0)
    n_col = x[1, :, N_AT]
    assert np.allclose(n_col, 0.25)  # the naive loop scored all four bases there
    # contribution: minus the mean of the three substitution effects, at the reference base
    contrib = ism(model, two_seqs)
    p = 10
    ref = int(x[0, :, p].argmax())
    assert contrib[0, ref, p] == pytest.approx(-deltas[0, :, p].sum() / 3, abs=1e-6)
    assert np.all(contrib[0, np.arange(4) != ref, p] == 0)
    assert contrib[1, :, N_AT] == pytest.approx(np.full(4, -deltas[1, :, N_AT].mean() * 0.25), abs=1e-6)


def test_ism_batch_size_invariant(model, two_seqs):
    np.testing.assert_allclose(ism_deltas(model, two_seqs, batch_size=7),
                               ism_deltas(model, two_seqs, batch_size=4096), atol=1e-6)


def test_ism_contributions_padding_is_zero():
    x = one_hot(["AC-"])
    deltas = np.ones((1, 4, 3), dtype=np.float32)
    contrib = ism_contributions(deltas, x)
    assert contrib[0, :, 2].tolist() == [0, 0, 0, 0]
    assert contrib[0, 0, 0] == pytest.approx(-4 / 3)  # deltas are all 1, incl. the (ignored) reference entry


# ----------------------------------------------------------------- gradients


def test_gradient_x_input_matches_autograd(model, two_seqs):
    x = two_seqs.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[:, 0].sum(), x)
    expected = ((grad - grad.mean(dim=1, keepdim=True)) * two_seqs).numpy()
    got = gradient_x_input(model, two_seqs)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(gradient_x_input(model, two_seqs, batch_size=1), got, atol=1e-6)


def test_uncorrected_gradient_is_captum_input_x_gradient(model, two_seqs):
    from captum.attr import InputXGradient

    expected = InputXGradient(model).attribute(two_seqs.clone().requires_grad_(True), target=0).detach().numpy()
    np.testing.assert_allclose(gradient_x_input(model, two_seqs, correct=False), expected, atol=1e-6)


@pytest.mark.parametrize("method", [ism, gradient_x_input])
def test_strand_symmetric(method, model, two_seqs):
    forward = method(model, two_seqs)
    backward = method(model, reverse_complement(two_seqs))
    np.testing.assert_allclose(backward, reverse_complement(torch.from_numpy(forward)).numpy(), atol=1e-5)


@pytest.mark.parametrize("method", ["ism", "grad"])
def test_attribution_concentrates_on_planted_motif(method, model, positives):
    res = attribute(model, positives[:60], method=method)
    inside, outside = [], []
    for (_, seq), a in zip(positives[:60], np.abs(res.attr).sum(axis=1)):
        fitted = fit_length(seq, model.length)
        start = fitted.find(TINY_MOTIF)
        if start < 0:
            continue  # cropped away
        real = np.array([c != "-" for c in fitted])
        motif = np.zeros(len(fitted), dtype=bool)
        motif[start : start + len(TINY_MOTIF)] = True
        inside.append(a[motif].mean())
        outside.append(a[real & ~motif].mean())
    assert len(inside) > 40
    assert np.mean(inside) > 3 * np.mean(outside), (np.mean(inside), np.mean(outside))


def test_attribute_inputs_and_errors(model, positives):
    res = attribute(model, [s for _, s in positives[:3]], method="grad", max_seqs=2)
    assert res.ids == ["seq0", "seq1"] and res.x.shape == res.attr.shape == (2, 4, model.length)
    tensor = attribute(model, torch.from_numpy(res.x), method="grad")
    np.testing.assert_allclose(tensor.attr, res.attr, atol=1e-6)
    with pytest.raises(GenocnnError, match="method"):
        attribute(model, positives[:1], method="saliency")
    with pytest.raises(GenocnnError, match="no sequences"):
        attribute(model, [], method="grad")
    with pytest.raises(GenocnnError, match="task"):
        attribute(model, positives[:1], method="grad", task=3)
    with pytest.raises(GenocnnError, match="shape"):
        gradient_x_input(model, torch.zeros(2, 5, 10))


# ------------------------------------------------------------- files, plots


def test_save_load_round_trip(tmp_path):
    x = one_hot(["ACGT", "GG"], length=4).numpy()
    attr = np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    path = tmp_path / "a.npz"
    save_attributions(path, ["s1", "s/2"], x, attr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(NPZ_KEYS)
    back = load_attributions(path)
    assert back.ids == ["s1", "s/2"]
    np.testing.assert_array_equal(back.x, x)
    np.testing.assert_array_equal(back.attr, attr)
    save_attributions(tmp_path / "noext", ["s1", "s2"], x, attr)
    assert (tmp_path / "noext").exists()
    with pytest.raises(GenocnnError):
        save_attributions(tmp_path / "b.npz", ["one"], x, attr)


@pytest.mark.parametrize("logomaker", [True, False])
def test_plot_attribution_png(logomaker, tmp_path, monkeypatch):
    if logomaker:
        pytest.importorskip("logomaker")
    else:
        monkeypatch.setitem(sys.modules, "logomaker", None)  # import fails -> bar plot
    attr = np.random.default_rng(0).normal(size=(4, 30)) * one_hot("ACGT" * 7 + "AC").numpy()[0]
    path = tmp_path / "logo.png"
    plot_attribution(attr, path, title="x")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(GenocnnError):
        plot_attribution(np.zeros((3, 5)), tmp_path / "bad.png")


# --------------------------------------------------------------------- seqlets


def _planted(n=40, length=50, seed=0):
    """Random sequences with GATTACAGG planted on either strand; contributions 1 on the site, noise elsewhere."""
    rng = np.random.default_rng(seed)
    site = "GATTACAGG"
    rc = site[::-1].translate(str.maketrans("ACGT", "TGCA"))
    seqs, starts = [], []
    for i in range(n):
        s = "".join(rng.choice(list("ACGT"), size=length))
        start = int(rng.integers(0, length - len(site)))
        seqs.append(s[:start] + (site if i % 2 else rc) + s[start + len(site):])
        starts.append(start)
    x = one_hot(seqs).numpy()
    weight = rng.normal(scale=0.05, size=(n, length))
    for i, start in enumerate(starts):
        weight[i, start : start + len(site)] = 1.0
    return x, x * weight[:, None, :], starts, site


def test_seqlets_found_at_planted_sites():
    x, contrib, starts, site = _planted()
    found = seqlets(contrib, x, window=9)
    assert {(s.seq, s.start) for s in found if s.score > 2} == set(enumerate(starts))
    for i in range(len(x)):
        mine = sorted(s.start for s in found if s.seq == i)
        assert all(b - a >= 9 for a, b in zip(mine, mine[1:]))  # non-overlapping
    assert seqlets(contrib, x, window=9, threshold=100.0) == []


def test_cluster_seqlets_aligns_both_strands():
    x, contrib, starts, site = _planted()
    # windows shifted by up to 2 from the site: the clustering must re-align them
    shifted = [min(max(s + i % 3 - 1, 0), x.shape[2] - 9) for i, s in enumerate(starts)]
    found = [Seqlet(i, s, s + 9, 9.0) for i, s in enumerate(shifted)]
    motifs = cluster_seqlets(found, contrib, x, min_seqlets=5)
    assert len(motifs) == 1
    m = motifs[0]
    assert isinstance(m, Motif) and m.name == "seqlet_0" and m.sites == len(starts)
    rc = site[::-1].translate(str.maketrans("ACGT", "TGCA"))
    assert m.consensus.upper() in (site, rc)
    assert m.pfm.sum(axis=0).max() == len(starts)


def test_seqlet_motifs_recover_planted_motif(model, positives, tmp_path):
    from genocnn.motif_io import write_motifs

    motifs = attribution_motifs(model, positives, method="grad", max_seqs=200)
    assert motifs, "no seqlet motifs"
    kmers = {TINY_MOTIF[i : i + 7] for i in range(4)} | {RC_MOTIF[i : i + 7] for i in range(4)}
    consensus = motifs[0].consensus.upper()
    assert any(k in consensus for k in kmers), [m.consensus for m in motifs]
    write_motifs(motifs, tmp_path / "s.meme")
    assert [m.name for m in read_motifs(tmp_path / "s.meme")] == [m.name for m in motifs]


@pytest.mark.slow
def test_seqlet_motif_of_simulated_ctcf_is_named_ctcf(tmp_path):
    """A planted JASPAR motif (CTCF, MA0139) comes back as the top seqlet motif and Tomtom names it (~30 s)."""
    from genocnn.compare import name_motifs
    from genocnn.config import config_from_dict
    from genocnn.simulation import simulate
    from genocnn.training import train

    sim = simulate(tmp_path / "sim", "MA0139", n=600, length=100, seed=0)
    config = config_from_dict({
        "model": {"conv": [{"filters": 16, "kernel_size": 15, "pool_size": 4}], "dense": [16]},
        "training": {"epochs": 10, "patience": 10, "lr": 0.01, "batch_size": 64, "calibration_bp": 200_000},
    })
    run = train(sim.pos, sim.neg, out=tmp_path / "run", config=config, device="cpu", progress=False)
    motifs = attribution_motifs(run.model, sim.pos, method="grad", window=15)
    assert motifs
    best = name_motifs(motifs[:1])
    assert best["target_id"].iloc[0].startswith("MA0139") and best["q_value"].iloc[0] < 1e-6, best
    from genocnn.naming import name_table

    named = name_table(motifs[:1]).iloc[0]  # the calibrated rule names it too (CTCF, or CTCF's family)
    assert named["jaspar_name"] in {"CTCF", "More than 3 adjacent zinc fingers"}, named["name_reason"]


# ------------------------------------------------------------------------ CLI

runner = CliRunner()


def test_cli_attribute_writes_files(tiny_run, tiny_fastas, tmp_path):
    out = tmp_path / "attr"
    result = runner.invoke(app, ["attribute", str(tiny_run.run_dir), str(tiny_fastas[0]), "--out", str(out),
                                 "--method", "grad", "--max-seqs", "120", "--plot", "2", "--device", "cpu"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    with np.load(out / "attributions.npz", allow_pickle=False) as data:
        assert data["ids"].tolist()[:2] == ["p0", "p1"]
        assert data["one_hot"].shape == data["attributions"].shape == (120, 4, tiny_run.model.length)
    assert sorted(p.name for p in (out / "logos").iterdir()) == ["p0.png", "p1.png"]
    table = (out / "seqlets.tsv").read_text().splitlines()
    assert table[0].split("\t")[:3] == ["motif", "seqlets", "sign"]
    from genocnn.export import describe
    from genocnn.naming import TABLE_COLUMNS

    rows = pd.read_csv(out / "seqlets.tsv", sep="\t", keep_default_na=False)
    assert list(rows.columns[-len(TABLE_COLUMNS):]) == TABLE_COLUMNS  # the naming columns of filters.tsv
    assert (rows["jaspar_collection"] == "CORE vertebrates").all()
    assert ((rows["jaspar_name"] == "") == (rows["name_level"] == "")).all()  # a name only with a level
    descriptions = {m.name: m.description for m in read_motifs(out / "seqlet_motifs.meme")}
    assert all(descriptions[r["motif"]] == describe(r) for _, r in rows.iterrows())  # a name only when confident
    names = [m.name for m in read_motifs(out / "seqlet_motifs.meme")]
    assert names == [m.name for m in read_motifs(out / "seqlet_motifs.jaspar")] == [r.split("\t")[0] for r in table[1:]]
    assert names == [m.name for m in read_motifs(out / "seqlet_motifs.transfac")] == [m.name for m in read_motifs(out / "seqlet_motifs.motif")]


@pytest.mark.parametrize("problem", ["missing", "method", "empty"])
def test_cli_attribute_bad_input(problem, tiny_run, tiny_fastas, tmp_path):
    seqs, method = tiny_fastas[0], "ism"
    if problem == "missing":
        seqs = tmp_path / "nope.fa"
    elif problem == "method":
        method = "magic"
    else:
        seqs = tmp_path / "empty.fa"
        seqs.write_text("")
    out = tmp_path / "attr"
    result = runner.invoke(app, ["attribute", str(tiny_run.run_dir), str(seqs), "--out", str(out),
                                 "--method", method, "--device", "cpu"])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith("genocnn: error:") and result.stderr.count("\n") == 1
    assert not out.exists()
