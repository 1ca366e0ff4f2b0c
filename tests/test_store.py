"""The 1-byte codes, the memory-mapped store, and training from it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import genocnn.training
from genocnn.batches import BatchSource
from genocnn.cli import app
from genocnn.data import is_mapped, load_labelled
from genocnn.encode import CODES, codes_to_one_hot, encode_codes, one_hot
from genocnn.errors import GenocnnError
from genocnn.store import build_store, open_store, store_for

@pytest.fixture(scope="module")
def config(tmp_path_factory):
    from genocnn.config import dump_config, config_from_dict

    cfg = config_from_dict({"model": {"conv": [{"filters": 8, "kernel_size": 10, "pool_size": 4}], "dense": [8]},
                            "training": {"batch_size": 32, "calibration_bp": 20_000}})
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(dump_config(cfg))
    return str(path)


IUPAC_TEXT = st.text(st.sampled_from("ACGTUNRYSWKMBDHV" + "acgtunryswkmbdhv" + "-.xZ?é"), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(seqs=st.lists(IUPAC_TEXT, min_size=1, max_size=8), length=st.integers(1, 50))
def test_codes_expand_to_exactly_one_hot(seqs, length):
    codes = encode_codes(seqs, length)
    assert codes.dtype == np.uint8 and codes.shape == (len(seqs), length) and codes.max() < len(CODES)
    assert torch.equal(codes_to_one_hot(torch.from_numpy(codes)), one_hot(seqs, length=length))


def _write(tmp_path, n=120, seed=0, lengths=(30, 70)):
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGTNRacgt"), size=rng.integers(*lengths))) for _ in range(n)]
    fasta, labels = tmp_path / "seqs.fa", tmp_path / "labels.tsv"
    fasta.write_text("".join(f">s{i} desc\n{s[:25]}\n{s[25:]}\n" for i, s in enumerate(seqs)))
    rows = [f"s{i}\t{int(rng.integers(0, 2))}\t{'NA' if i % 7 == 0 else 'TRUE'}\n" for i in rng.permutation(n)]
    labels.write_text("id\tA\tB\n" + "".join(rows))
    return fasta, labels


@pytest.mark.parametrize("length", [None, 50])
def test_store_round_trip_equals_reading_the_files(tmp_path, length):
    fasta, labels = _write(tmp_path)
    with pytest.warns(UserWarning) if length is None else _nothing():
        build_store(tmp_path / "store", fasta=fasta, labels=labels, length=length)
    stored = open_store(tmp_path / "store")
    with pytest.warns(UserWarning) if length is None else _nothing():
        direct = load_labelled(fasta, labels, length)
    assert is_mapped(stored.codes) and not is_mapped(direct.codes)
    assert list(stored.ids) == direct.ids and stored.tasks == direct.tasks == ["A", "B"]
    assert np.array_equal(stored.codes, direct.codes) and np.array_equal(stored.labels, direct.labels)
    assert torch.equal(stored.x, direct.x) and torch.equal(stored.y.nan_to_num(-1), direct.y.nan_to_num(-1))
    assert stored.class_balance() == direct.class_balance()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_store_reused_until_a_source_changes(tmp_path):
    fasta, labels = _write(tmp_path, lengths=(40, 41))
    store_for(tmp_path / "cache", fasta=fasta, labels=labels)
    manifest = tmp_path / "cache" / "manifest.json"
    before = manifest.stat().st_mtime_ns
    store_for(tmp_path / "cache", fasta=fasta, labels=labels)
    assert manifest.stat().st_mtime_ns == before  # reused
    labels.write_text(labels.read_text().replace("TRUE", "FALSE"))
    data = store_for(tmp_path / "cache", fasta=fasta, labels=labels)
    assert json.loads(manifest.read_text())["sources"][1]["bytes"] == labels.stat().st_size
    assert (data.labels[:, 1] != 1).all()  # rebuilt from the new labels


def test_store_errors_leave_nothing(tmp_path):
    fasta, labels = _write(tmp_path, lengths=(40, 41))
    dup = tmp_path / "dup.fa"
    dup.write_text(fasta.read_text() + ">s3\nACGT\n")
    with pytest.raises(GenocnnError, match=r"duplicate record id 's3': records 4 and 121"):
        build_store(tmp_path / "s", fasta=dup, labels=labels)
    extra = tmp_path / "extra.tsv"
    extra.write_text(labels.read_text() + "zz\t1\t0\n")
    with pytest.raises(GenocnnError, match=r"extra.tsv: 1 id\(s\) not in .*'zz'"):
        build_store(tmp_path / "s", fasta=fasta, labels=extra)
    assert sorted(os.listdir(tmp_path)) == ["dup.fa", "extra.tsv", "labels.tsv", "seqs.fa"]
    result = CliRunner().invoke(app, ["prepare", "--fasta", str(fasta), "--labels", str(tmp_path / "nope.tsv"),
                                      "--out", str(tmp_path / "s")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "nope.tsv" in result.output
    assert not (tmp_path / "s").exists()


def test_prepare_then_train_from_the_store(tmp_path, config):
    fasta, labels = _write(tmp_path, n=200, lengths=(60, 61))
    runner = CliRunner()
    result = runner.invoke(app, ["prepare", "--fasta", str(fasta), "--labels", str(labels),
                                 "--out", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert "200 sequences of length 60, 2 task(s)" in result.output
    common = ["--config", config, "--device", "cpu", "--quiet", "--epochs", "2"]
    for name, data in (("a", ["--store", str(tmp_path / "store")]), ("b", ["--fasta", str(fasta), "--labels", str(labels)])):
        result = runner.invoke(app, ["train", *data, "--out", str(tmp_path / name), *common])
        assert result.exit_code == 0, result.output
    ma, mb = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in "ab")
    assert ma["n_test"] == mb["n_test"] and ma["auroc"] == pytest.approx(mb["auroc"], abs=1e-6)
    ha, hb = ((tmp_path / n / "history.tsv").read_text().splitlines() for n in "ab")
    assert [r.split("\t")[:3] for r in ha] == [r.split("\t")[:3] for r in hb]  # same losses, store or files


def test_large_fasta_trains_through_a_cached_store_with_steps_per_epoch(tmp_path, config, monkeypatch):
    fasta, labels = _write(tmp_path, n=200, lengths=(60, 61))
    monkeypatch.setattr(genocnn.training, "AUTO_STORE_BYTES", 1000)
    result = CliRunner().invoke(app, ["train", "--fasta", str(fasta), "--labels", str(labels), "--out",
                                      str(tmp_path / "run"), "--config", config, "--device", "cpu", "--quiet",
                                      "--epochs", "2", "--set", "training.steps_per_epoch=3"])
    assert result.exit_code == 0, result.output
    assert open_store(tmp_path / "run.store").codes.shape == (200, 60)
    assert len((tmp_path / "run" / "history.tsv").read_text().splitlines()) == 3


def test_steps_per_epoch_stream_is_reproducible_and_continues(tmp_path):
    fasta, labels = _write(tmp_path, n=50, lengths=(20, 21))
    build_store(tmp_path / "s", fasta=fasta, labels=labels)
    data = open_store(tmp_path / "s")
    source = BatchSource(data, np.arange(5, 45), torch.device("cpu"), seed=3)
    g = torch.Generator()
    e1, e2 = source.order(1, g, 8, 3), source.order(2, g, 8, 3)
    assert torch.equal(e1, source.order(1, g, 8, 3)) and len(e1) == len(e2) == 24
    stream = torch.cat([e1, e2])
    assert sorted(stream[:40].tolist()) == list(range(40))  # the first permutation, across the two epochs
    x, y = source.batch(e1[:8])
    rows = 5 + e1[:8].numpy()
    assert torch.equal(x, data.x[rows]) and torch.equal(y.nan_to_num(-1), data.y[rows].nan_to_num(-1))


@pytest.mark.slow
def test_torchrun_builds_the_store_once_and_every_rank_reads_it(tmp_path, config):
    """Under torchrun rank 0 builds RUN.store (GENOCNN_STORE_BYTES=0: always), the others map it; same data as one process."""
    import socket
    import subprocess
    import sys

    fasta, labels = _write(tmp_path, n=200, lengths=(60, 61))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENOCNN_STORE_BYTES": "0"}
    common = ["-m", "genocnn", "train", "--fasta", str(fasta), "--labels", str(labels), "--config", config,
              "--device", "cpu", "--quiet", "--epochs", "2"]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_addr", "127.0.0.1", "--master_port", str(port), *common,
                             "--out", str(tmp_path / "ddp")], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "ddp" / "run.json").read_text())["world_size"] == 2
    stored = open_store(tmp_path / "ddp.store")
    direct = load_labelled(fasta, labels)
    assert np.array_equal(stored.codes, direct.codes) and np.array_equal(stored.labels, direct.labels)
    assert not list(tmp_path.glob(".ddp.store.*"))  # no temporary folder left
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_valid"] + metrics["n_test"] == 200


@pytest.mark.slow
def test_predict_and_motifs_read_a_store_as_they_read_the_fasta(tmp_path, config):
    import pandas as pd

    from genocnn.fasta import read_fasta, write_fasta

    fasta, labels = _write(tmp_path, n=200, lengths=(60, 61))
    runner = CliRunner()
    store, run = tmp_path / "store", tmp_path / "run"
    assert runner.invoke(app, ["prepare", "--fasta", str(fasta), "--labels", str(labels), "--out", str(store)]).exit_code == 0
    result = runner.invoke(app, ["train", "--store", str(store), "--out", str(run), "--config", config,
                                 "--device", "cpu", "--quiet", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    for name, source in (("store", store), ("fasta", fasta)):
        result = runner.invoke(app, ["predict", str(run), str(source), "--out", str(tmp_path / f"{name}.tsv")])
        assert result.exit_code == 0, result.output
    a, b = (pd.read_csv(tmp_path / f"{n}.tsv", sep="\t") for n in ("store", "fasta"))
    assert list(a["id"]) == list(b["id"]) and list(a["mostly_n"]) == list(b["mostly_n"])
    np.testing.assert_allclose(a[["A", "B"]].to_numpy(), b[["A", "B"]].to_numpy(), atol=1e-6)
    # motifs of a store: its rows bound in any task, as a FASTA of those sequences gives them
    data = open_store(store)
    bound = set(np.array(list(data.ids))[(np.asarray(data.labels) == 1).any(1)])
    write_fasta([r for r in read_fasta(fasta) if r[0] in bound], tmp_path / "bound.fa")
    for name, source in (("store", store), ("fasta", tmp_path / "bound.fa")):
        result = runner.invoke(app, ["motifs", str(run), str(source), "--out", str(tmp_path / f"m_{name}"),
                                     "--device", "cpu", "--quiet", "--min-sites", "3"])
        assert result.exit_code == 0, result.output
    ma, mb = (pd.read_csv(tmp_path / f"m_{n}" / "filters.tsv", sep="\t") for n in ("store", "fasta"))
    assert len(ma) == 8 and ma["sites"].sum() > 0
    assert list(ma["sites"]) == list(mb["sites"]) and list(ma["consensus"]) == list(mb["consensus"])
    result = runner.invoke(app, ["predict", str(run), str(tmp_path / "nostore"), "--out", str(tmp_path / "x.tsv")])
    assert result.exit_code == 2 and not (tmp_path / "x.tsv").exists()


# --- stores of BED intervals over a genome ---------------------------------------------------------------


def _genome_and_peaks(tmp_path, between: str = "") -> tuple:
    """A two-chromosome genome FASTA (``between`` records: e.g. blank lines samtools faidx refuses) and 13 peaks."""
    rng = np.random.default_rng(2)
    text = {c: "".join(rng.choice(list("ACGT"), size=n)) for c, n in (("chr1", 20_000), ("chr2", 12_000))}
    genome = tmp_path / "genome.fa"
    genome.write_text(between.join(f">{c} assembled\n" + "".join(s[i : i + 60] + "\n" for i in range(0, len(s), 60))
                                   for c, s in text.items()))
    bed = tmp_path / "peaks.bed"
    bed.write_text("".join(f"chr1\t{a}\t{a + 100}\n" for a in range(1000, 19000, 1500)) + "chr2\t500\t600\n")
    return genome, bed


def test_bed_store_from_a_genome_faidx_cannot_index_equals_the_indexed_one(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    genome, bed = _genome_and_peaks(tmp_path / "a")
    blank, _ = _genome_and_peaks(tmp_path / "b", between="\n\n")
    build_store(tmp_path / "indexed", bed=bed, genome=genome, seed=4)
    with pytest.warns(UserWarning, match=r"genome.fa: not indexable by samtools faidx \(blank lines"):
        build_store(tmp_path / "memory", bed=bed, genome=blank, seed=4)
    a, b = open_store(tmp_path / "indexed"), open_store(tmp_path / "memory")
    assert len(a) == 26 and list(a.ids) == list(b.ids)  # the same GC-matched negatives
    assert np.array_equal(a.codes, b.codes) and np.array_equal(a.labels, b.labels)


def test_bed_store_refuses_an_empty_interval_or_skips_and_counts_it(tmp_path):
    genome, bed = _genome_and_peaks(tmp_path)
    bed.write_text(bed.read_text() + "chr2\t900\t900\n")
    out = tmp_path / "store"
    result = CliRunner().invoke(app, ["prepare", "--bed", str(bed), "--genome", str(genome), "--out", str(out)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert f"{bed}: line 14: empty interval (start = end = 900" in result.stderr and not out.exists()
    with pytest.warns(UserWarning, match=r"peaks.bed: skipped 1 bad interval\(s\) \(first: line 14: empty interval"):
        build_store(out, bed=bed, genome=genome, skip_bad=True)
    assert len(open_store(out)) == 2 * 13
    with pytest.raises(GenocnnError, match="`skip_bad` applies to `bed`/`genome` data only"):
        build_store(tmp_path / "other", fasta=genome, labels=bed, skip_bad=True)


def test_prepare_shows_the_notes_on_bed_intervals(tmp_path):
    genome, bed = _genome_and_peaks(tmp_path)
    bed.write_text(bed.read_text() + "chr2\t11950\t12100\n")
    result = CliRunner().invoke(app, ["prepare", "--bed", str(bed), "--genome", str(genome),
                                      "--out", str(tmp_path / "store"), "--length", "100"])
    assert result.exit_code == 0, result.output
    assert (f"genocnn: warning: {bed}: 1 interval(s) end past their chromosome's end (first: line 14: "
            "chr2 11950-12100, chr2 is 12000 bp)") in result.stderr, result.stderr
    assert f"genocnn: warning: {bed}: 1 window(s) run off a chromosome end and were padded with N" in result.stderr
    assert len(open_store(tmp_path / "store")) == 2 * 14


def test_prepare_records_the_negatives_it_used(tmp_path, tiny_fastas):
    pos, neg = tiny_fastas
    for name, args, made in (("shuffled", [], "shuffle"), ("given", ["--neg", str(neg)], "file")):
        result = CliRunner().invoke(app, ["prepare", "--pos", str(pos), *args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        options = json.loads((tmp_path / name / "manifest.json").read_text())["options"]
        assert options["negatives"] == made
