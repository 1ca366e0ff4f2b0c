"""Genome scanning: the fast fully convolutional scan against naive per-window predictions."""

from __future__ import annotations

import numpy as np

try:
    import pyBigWig  # noqa: F401

    HAVE_BIGWIG = True
except ImportError:
    HAVE_BIGWIG = False
import pytest
import torch
from typer.testing import CliRunner

from genocnn.cli import app
from genocnn.config import config_from_dict
from genocnn.encode import one_hot, reverse_complement_sequence
from genocnn.errors import GenocnnError
from genocnn.models import build_model
from genocnn.scanning import ScanBlock, call_sites, scan, scan_genome, write_bedgraph

from tests.conftest import TINY_MOTIF, write_fa

ARCHITECTURES = {
    "deepbind_max": ({"conv": [{"filters": 6, "kernel_size": 12, "pool": "none", "batch_norm": False}],
                      "global_pool": "max", "dense": [5]}, 40),
    "two_block_dilated": ({"conv": [{"filters": 6, "kernel_size": 7, "pool": "max", "pool_size": 4},
                                    {"filters": 5, "kernel_size": 3, "dilation": 2, "pool": "max", "pool_size": 3}],
                           "global_pool": "max", "dense": [4]}, 101),
    "avg_pools": ({"conv": [{"filters": 6, "kernel_size": 5, "pool": "avg", "pool_size": 3},
                            {"filters": 5, "kernel_size": 3, "pool": "avg", "pool_size": 2}],
                   "global_pool": "avg", "dense": []}, 77),
    "exp_no_rc": ({"conv": [{"filters": 6, "kernel_size": 9, "activation": "exp", "pool": "max", "pool_size": 4}],
                   "global_pool": "max", "dense": [4], "rc_average": False}, 60),
    "flatten": ({"conv": [{"filters": 4, "kernel_size": 5, "pool": "max", "pool_size": 2}],
                 "global_pool": "none", "dense": [4]}, 30),
}


def _model(name: str, n_tasks: int = 2):
    model_config, length = ARCHITECTURES[name]
    torch.manual_seed(0)
    model = build_model(config_from_dict({"model": model_config}).model, n_tasks, length)
    for module in model.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _sequence(n: int, seed: int = 0) -> str:
    """Random DNA with lowercase stretches and N runs."""
    rng = np.random.default_rng(seed)
    seq = rng.choice(list("ACGT"), size=n)
    for _ in range(n // 500 + 1):
        i = int(rng.integers(0, n))
        seq[i : i + 30] = "N"
        j = int(rng.integers(0, n))
        seq[j : j + 200] = np.char.lower(seq[j : j + 200])
    return "".join(seq)


@torch.no_grad()
def _naive(model, seq: str, stride: int = 1) -> np.ndarray:
    """The reference: the model on each window, one by one in batches."""
    length = model.length
    windows = [seq[i : i + length] for i in range(0, len(seq) - length + 1, stride)] or [seq]
    probs = torch.sigmoid(model(one_hot(windows, length=length))).numpy()
    bases = np.array([sum(c in "ACGTacgt" for c in w) for w in windows])
    probs[bases < 0.5 * length] = np.nan  # mostly N or padding: not scored
    return probs


def _collect(blocks) -> tuple[np.ndarray, np.ndarray]:
    blocks = list(blocks)
    return np.concatenate([b.positions for b in blocks]), np.concatenate([b.probs for b in blocks])


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("stride", [1, 5])
def test_fast_scan_matches_naive_windows(name, stride):
    model = _model(name)
    seq = _sequence(2500, seed=len(name))
    positions, probs = _collect(scan(model, [("chr1", seq)], stride=stride, progress=False, chunk_size=300))
    assert positions.tolist() == list(range(0, len(seq) - model.length + 1, stride))
    np.testing.assert_allclose(probs, _naive(model, seq, stride), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["two_block_dilated", "avg_pools"])
def test_chunk_size_does_not_change_scores(name):
    model = _model(name)
    seq = _sequence(500, seed=3)
    _, whole = _collect(scan(model, [seq], progress=False, chunk_size=10_000))
    for chunk in (5, 37):  # chunk edges at every alignment of the pooling grid
        _, parts = _collect(scan(model, [seq], progress=False, chunk_size=chunk))
        np.testing.assert_allclose(parts, whole, atol=1e-5, rtol=0)


def test_soft_masking_and_strand_symmetry():
    model = _model("two_block_dilated")
    seq = _sequence(800, seed=5).upper()
    _, upper = _collect(scan(model, [seq], progress=False))
    _, lower = _collect(scan(model, [seq.lower()], progress=False))
    _, rc = _collect(scan(model, [reverse_complement_sequence(seq)], progress=False))
    np.testing.assert_allclose(lower, upper, atol=1e-6)
    np.testing.assert_allclose(rc[::-1], upper, atol=1e-5)  # rc-averaged model: same score either strand


def test_strand_follows_the_larger_logit():
    model = _model("deepbind_max")
    seq = _sequence(300, seed=2).upper()
    (block,) = scan(model, [seq], progress=False)
    x = one_hot([seq[i : i + model.length] for i in block.positions])
    with torch.no_grad():
        forward, reverse = model.strand_logits(x), model.strand_logits(x.flip(-2, -1))
    assert np.array_equal(block.strand, np.where((forward >= reverse).numpy(), 1, -1))
    (no_rc,) = scan(_model("exp_no_rc"), [seq], progress=False)
    assert (no_rc.strand == 0).all()


@pytest.mark.parametrize("name", ["two_block_dilated", "flatten"])
def test_short_and_exact_length_sequences(name):
    model = _model(name)
    length = model.length
    for seq in ("ACGTN" * 3, "acg", _sequence(length, seed=1)):
        (block,) = scan(model, [("s", seq)], progress=False)
        assert block.positions.tolist() == [0] and block.chrom_length == len(seq)
        np.testing.assert_allclose(block.probs, _naive(model, seq), atol=1e-5)
    assert call_sites(scan(model, [("s", "ACGT")], progress=False), threshold=0.0).empty  # mostly padding
    half = "ACGT" * (length // 8 + 1)  # at least half the window is sequence: scored
    sites = call_sites(scan(model, [("s", half)], progress=False), threshold=0.0)
    assert sites[["start", "end"]].values.tolist() == [[0, len(half)]]


def test_multi_record_fasta(tmp_path):
    model = _model("avg_pools", n_tasks=1)
    records = [("chrA", _sequence(400, 1)), ("chrB", "ACGT" * 5), ("chrC", _sequence(900, 2))]
    path = write_fa(tmp_path / "g.fa", records)
    blocks = list(scan(model, path, progress=False, chunk_size=128))
    assert [b.chrom for b in blocks if b.positions[0] == 0] == ["chrA", "chrB", "chrC"]
    for name, seq in records:
        probs = np.concatenate([b.probs for b in blocks if b.chrom == name])
        np.testing.assert_allclose(probs, _naive(model, seq), atol=1e-4)


def _block(chrom, probs, start=0, stride=1, window=10, chrom_length=100, strand=None):
    probs = np.asarray(probs, dtype=np.float32)[:, None]
    strand = np.ones_like(probs, dtype=np.int8) if strand is None else np.asarray(strand, np.int8)[:, None]
    positions = start + stride * np.arange(len(probs))
    return ScanBlock(chrom, positions, probs, strand, window, stride, chrom_length)


def test_call_sites_merges_runs_across_blocks_and_records():
    blocks = [
        _block("chr1", [0.1, 0.6, 0.8, 0.2, 0.7], strand=[1, 1, -1, 1, 1]),
        _block("chr1", [0.9, 0.5, 0.1], start=5, strand=[-1, 1, 1]),  # continues the run at 4
        _block("chr1", [0.55, 0.56], start=8, chrom_length=10 + 9),  # run to the record's end
        _block("chr2", [0.95, 0.1], strand=[1, 1]),  # new record: nothing carried over
    ]
    sites = call_sites(blocks, threshold=0.5)
    # the three runs on chr1 have overlapping windows: one site, summit at the centre of the best run
    assert sites.drop(columns="prob").values.tolist() == [
        ["chr1", 1, 19, "site_1", 900, "-", 5 + 10 // 2],
        ["chr2", 0, 10, "site_2", 950, "+", 0 + 10 // 2],
    ]
    apart = call_sites([_block("chr1", [0.9] + [0.1] * 10 + [0.7, 0.1], chrom_length=100)], threshold=0.5)
    assert apart[["start", "end", "summit"]].values.tolist() == [[0, 10, 5], [11, 21, 16]]
    # a record whose first block starts a run right after a run at the end of the previous record
    split = call_sites([_block("x", [0.1, 0.9]), _block("x", [0.9, 0.1])], threshold=0.5)
    assert split[["start", "end"]].values.tolist() == [[1, 11], [0, 10]]
    assert call_sites([_block("chr1", [0.1, 0.2])]).empty
    stride = call_sites([_block("c", [0.7, 0.8, 0.1, 0.6], stride=5)], threshold=0.5)
    assert stride[["start", "end"]].values.tolist() == [[0, 15], [15, 25]]


def test_summit_is_the_centre_of_the_run_not_its_best_window():
    """Over a site the scores are a plateau the model's window wide; the best window may sit at its edge."""
    plateau = np.full(41, 0.97)
    plateau[0] = 0.99  # the single best window, at the plateau's left edge
    probs = np.concatenate([[0.1] * 30, [0.6] * 5, plateau, [0.6] * 5, [0.1] * 30])
    whole = call_sites([_block("chr1", probs, window=50, chrom_length=200)], threshold=0.5)
    assert whole[["start", "end", "summit"]].values.tolist() == [[30, 130, (30 + 80) // 2 + 25]]
    for cut in (33, 40, 60, 75):  # the same site from two blocks, split anywhere
        parts = [_block("chr1", probs[:cut], window=50, chrom_length=200),
                 _block("chr1", probs[cut:], start=cut, window=50, chrom_length=200)]
        assert call_sites(parts, threshold=0.5).values.tolist() == whole.values.tolist()


def test_bedgraph_track(tmp_path):
    blocks = [_block("chr1", [0.25, 0.5], stride=2), _block("chr2", [0.75], window=10, chrom_length=6)]
    write_bedgraph(blocks, tmp_path / "t.bedGraph")
    lines = (tmp_path / "t.bedGraph").read_text().splitlines()
    assert lines == ["track type=bedGraph", "chr1\t5\t7\t0.25", "chr1\t7\t9\t0.5", "chr2\t3\t4\t0.75"]


def test_bad_arguments():
    model = _model("deepbind_max")
    with pytest.raises(GenocnnError, match="stride"):
        list(scan(model, ["ACGT" * 20], stride=0, progress=False))
    with pytest.raises(GenocnnError, match="empty"):
        list(scan(model, [("a", "")], progress=False))
    with pytest.raises(GenocnnError, match="unknown task"):
        scan_genome(model, ["ACGT" * 20], "unused.bed", task="nope", progress=False)


def _genome(n: int, starts: list[int], seed: int = 7) -> str:
    rng = np.random.default_rng(seed)
    seq = list("".join(rng.choice(list("ACGT"), size=n)))
    for i, s in enumerate(starts):
        site = TINY_MOTIF if i % 2 == 0 else reverse_complement_sequence(TINY_MOTIF)
        seq[s : s + len(site)] = site
    seq[9000:9100] = "N" * 100
    seq[12000:13000] = [c.lower() for c in seq[12000:13000]]
    return "".join(seq)


def test_cli_scan_finds_planted_sites(tiny_run, tmp_path):
    # tiny_run's probabilities are compressed (bound ~0.54, unbound ~0.51), hence the threshold
    planted = [2000, 5500, 12300, 16000]
    fasta = write_fa(tmp_path / "genome.fa", [("chrT", _genome(20_000, planted)), ("short", "ACGTACGT")])
    out, track, wig = tmp_path / "sites.bed", tmp_path / "track.bedGraph", tmp_path / "track.bw"
    extra = ["--bigwig", str(wig)] if HAVE_BIGWIG else []
    result = CliRunner().invoke(app, ["scan", str(tiny_run.run_dir), str(fasta), "--out", str(out),
                                      "--bedgraph", str(track), "--threshold", "0.53", "--device", "cpu",
                                      "--quiet", *extra])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert all(len(r) == 6 and r[3].startswith("site_") and r[5] in "+-" for r in rows)
    intervals = [(int(r[1]), int(r[2])) for r in rows if r[0] == "chrT"]
    for s in planted:
        assert any(a <= s and s + len(TINY_MOTIF) <= b for a, b in intervals), (s, intervals)
    covered = np.zeros(20_000, dtype=bool)
    for a, b in intervals:
        covered[a:b] = True
    assert covered.mean() < 0.25  # the planted sites are not hit by calling everything
    length = tiny_run.model.length
    lines = track.read_text().splitlines()
    gap = [s for s in range(20_000 - length + 1) if len(set(range(s, s + length)) & set(range(9000, 9100))) > length / 2]
    assert len(lines) == 1 + (20_000 - length + 1) - len(gap)  # no values for mostly-N windows, nor for "short"
    assert not any(line.startswith("short") for line in lines)
    assert not any(a <= 9050 < b for a, b in intervals)  # no call in the N gap
    if HAVE_BIGWIG:  # the bigWig holds the same values as the bedGraph
        import pyBigWig

        graph = [line.split("\t") for line in track.read_text().splitlines()[1:]]
        bw = pyBigWig.open(str(wig))
        assert bw.chroms() == {"chrT": 20_000, "short": 8}
        for chrom, start, end, value in graph[:: 997]:
            assert bw.values(chrom, int(start), int(end))[0] == pytest.approx(float(value), abs=1e-4)
        bw.close()


@pytest.mark.parametrize("args", [["missing.fa"], ["bad.fa"], ["genome.fa", "--task", "nope"]])
def test_cli_scan_bad_input_is_one_line(tiny_run, tmp_path, args):
    (tmp_path / "bad.fa").write_text(">x\nACGTJJ\n")
    write_fa(tmp_path / "genome.fa", [("x", "ACGT" * 40)])
    paths = [str(tmp_path / args[0]), *args[1:]]
    result = CliRunner().invoke(app, ["scan", str(tiny_run.run_dir), *paths, "--out", str(tmp_path / "s.bed"),
                                      "--quiet"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("genocnn: error:")
    assert not (tmp_path / "s.bed").exists()
