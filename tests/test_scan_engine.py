"""The device-side scan engine: the default model's fast path against naive windows, device-side calls, torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genocnn.config import Config
from genocnn.encode import one_hot, reverse_complement
from genocnn.models import build_model
from genocnn.scanengine import Engine, distinct_columns, expand_codes, sliding_max, text_codes
from genocnn.scanruns import runs_on_device
from genocnn.scanning import call_sites, scan, scan_genome, write_bedgraph
from genocnn.tiling import naive_logits

from tests.conftest import TINY_MOTIF, write_fa

ROOT = Path(__file__).resolve().parent.parent


def _default_model(length: int = 120, tasks: int = 3, batch_norm: bool = False):
    """The default architecture (64 x 15 conv, max pool 4, global max, dense 256); ``batch_norm``: with
    first-layer batch norm and random statistics, some scales negative (the folded path)."""
    torch.manual_seed(1)
    cfg = Config().model
    model = build_model(replace(cfg, conv=(replace(cfg.conv[0], batch_norm=batch_norm),)), tasks, length)
    if batch_norm:
        norm = model.blocks[0][1]
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.data.uniform_(-1.5, 1.5)  # some negative scales: the max must not assume a positive one
    return model.eval()


def _dna(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    seq = rng.choice(list("ACGTacgtRYN"), size=n, p=[0.2] * 4 + [0.04] * 4 + [0.01, 0.01, 0.02])
    seq[n // 3 : n // 3 + 90] = "N"  # a gap: its windows are not scored
    return "".join(seq)


@pytest.mark.parametrize("stride, batch_norm", [(1, False), (3, True)])
def test_default_model_fast_path_matches_naive_logits(stride, batch_norm):
    model = _default_model(batch_norm=batch_norm)
    seq = _dna(1500, seed=stride)
    blocks = list(scan(model, [("c", seq)], stride=stride, chunk_size=257, progress=False))
    probs = np.concatenate([b.probs for b in blocks])
    strand = np.concatenate([b.strand for b in blocks])
    with torch.inference_mode():
        x = one_hot(seq)
        starts = torch.arange(0, len(seq) - model.length + 1, stride)
        fwd = naive_logits(model, x, starts, 64)
        rev = naive_logits(model, reverse_complement(x), len(seq) - model.length - starts, 64)
    expected = torch.sigmoid(0.5 * (fwd + rev)).numpy()
    bases = np.array([sum(c in "ACGTacgt" for c in seq[s : s + model.length]) for s in starts.tolist()])
    expected[bases < 0.5 * model.length] = np.nan
    assert np.isnan(probs).any() and not np.isnan(probs).all()
    np.testing.assert_allclose(probs, expected, atol=2e-5, rtol=0)
    agree = np.where(fwd.numpy() >= rev.numpy(), 1, -1) == strand
    assert agree[np.abs(fwd.numpy() - rev.numpy()) > 1e-4].all()


def test_head_runs_once_per_distinct_feature_column():
    """Neighbouring windows of the default model mostly share their pooled features; each copy maps back exactly."""
    model = _default_model(length=200)
    engine = Engine(model, 1, 64, torch.device("cpu"))
    x, _ = expand_codes(text_codes(_dna(3000, seed=5).replace("N", "A")))
    flat = engine.flat
    conv = torch.nn.functional.conv1d(x, flat.weight)[0]
    feats = flat.activation(sliding_max(conv, flat.width) + flat.bias[:, None])[:64]
    kept, group = distinct_columns(feats)
    assert torch.equal(kept[:, group], feats)
    assert (kept[:, 1:] != kept[:, :-1]).any(0).all()  # no two neighbours kept alike
    assert 0.3 < kept.shape[1] / feats.shape[1] < 0.8  # a filter's window max changes at ~2/C of the steps


def test_sliding_max_is_a_windowed_max():
    x = torch.randn(3, 500)
    for width in (1, 2, 7, 64, 186, 500):
        expected = x.unfold(1, width, 1).amax(-1)
        assert torch.equal(sliding_max(x, width), expected)


def test_device_runs_match_the_host_site_caller():
    rng = np.random.default_rng(0)
    p = torch.tensor(rng.random(5000), dtype=torch.float32)
    p[100:140] = float("nan")
    p[2000:2010] = 0.99  # ties: the first one is the summit
    strand = torch.tensor(rng.choice([-1, 1], size=5000), dtype=torch.int8)
    p[3000:3005] = 0.0  # the lowest probability, inside the one long run at threshold 0
    for threshold in (0.0, 0.5, 0.9, 0.99):  # 0: two runs of thousands of windows (split by the NaN)
        runs = runs_on_device(p, strand, threshold)
        mask = (p >= threshold).numpy()
        edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
        assert runs.begin.tolist() == np.flatnonzero(edges == 1).tolist()
        assert runs.end.tolist() == np.flatnonzero(edges == -1).tolist()
        for b, e, best, at, s in zip(*runs):
            assert best == p[b:e].max() and at == b + int(np.argmax(p[b:e].numpy())) and s == strand[at]


def test_scan_genome_calls_on_the_device_as_the_host_caller_does(tmp_path):
    model = _default_model(length=100, tasks=2)
    records = [("chr1", _dna(3000, 5)), ("chr2", _dna(150, 6)), ("tiny", "ACGTACGTAA")]
    probs = np.concatenate([b.probs[:, 1] for b in scan(model, records, progress=False)])
    threshold = float(np.nanquantile(probs, 0.9))
    host = call_sites(scan(model, records, progress=False, chunk_size=500), threshold, task=1)
    write_bedgraph(scan(model, records, progress=False), tmp_path / "host.bedGraph", task=1)
    sites = scan_genome(model, records, tmp_path / "s.bed", threshold=threshold, task=1,
                        bedgraph=tmp_path / "dev.bedGraph", progress=False, chunk_size=333)
    assert len(host) > 3
    cols = ["chrom", "start", "end", "strand", "summit"]
    assert sites[cols].values.tolist() == host[cols].values.tolist()
    np.testing.assert_allclose(sites["prob"], host["prob"], atol=1e-6)
    assert (tmp_path / "dev.bedGraph").read_text() == (tmp_path / "host.bedGraph").read_text()


def _genome(n: int, planted: list[int], seed: int = 3) -> str:
    rng = np.random.default_rng(seed)
    seq = list(rng.choice(list("ACGT"), size=n))
    for s in planted:
        seq[s : s + len(TINY_MOTIF)] = TINY_MOTIF
    return "".join(seq)


@pytest.mark.slow  # two processes start torch: about 20 s on 2 shared cores
def test_torchrun_scan_gives_the_single_process_sites(tiny_run, tmp_path):
    # chunks of 2**14 window starts (the CPU default), taken by the ranks in turn: chrA's two chunks go to
    # different ranks, with a planted site across their boundary
    fasta = write_fa(tmp_path / "genome.fa", [("chrA", _genome(30_000, [1000, 16_370, 25_000])),
                                              ("chrB", _genome(8000, [2500], seed=4)), ("short", "ACGTACGT")])
    common = [str(tiny_run.run_dir), str(fasta), "--threshold", "0.53", "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    single = [sys.executable, "-m", "genocnn", "scan", *common, "--out", str(tmp_path / "one.narrowPeak"),
              "--bedgraph", str(tmp_path / "one.bedGraph")]
    subprocess.run(single, check=True, cwd=ROOT, env=env, capture_output=True)
    multi = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "genocnn", "scan",
             *common, "--out", str(tmp_path / "two.narrowPeak"), "--bedgraph", str(tmp_path / "two.bedGraph")]
    result = subprocess.run(multi, cwd=ROOT, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("sites") == 1  # rank 0 reports
    one = (tmp_path / "one.narrowPeak").read_text()
    assert one and one == (tmp_path / "two.narrowPeak").read_text()
    assert (tmp_path / "one.bedGraph").read_text() == (tmp_path / "two.bedGraph").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".genocnn-scan-")]


def test_worker_threads_give_the_same_scores_and_restore_the_thread_count():
    model = _default_model(length=100, tasks=1)
    seq = _dna(5000, seed=9)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = np.concatenate([b.probs for b in scan(model, [seq], chunk_size=2000, progress=False)])
        torch.set_num_threads(2)  # blocks on two worker threads
        two = np.concatenate([b.probs for b in scan(model, [seq], chunk_size=2000, progress=False)])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_head_with_windows_as_rows_matches_the_column_head():
    # the GPU head (windows as rows, bias and ReLU fused) and the CPU one (columns, distinct columns)
    from genocnn.scanengine import _flat, _head_columns, _head_rows

    model = _default_model(tasks=4)
    flat = _flat(model)
    h = torch.relu(torch.randn(64, 500))
    h[:, 100:140] = h[:, 99:100]  # repeated columns, as neighbouring windows give
    torch.testing.assert_close(_head_rows(flat, h), _head_columns(flat, h), rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_scan_matches_the_cpu_scan(tmp_path):
    from genocnn.scanengine import strided_max

    c = torch.randn(128, 5000, device="cuda")
    for width in (3, 7, 186, 300):
        assert torch.equal(strided_max(c, width), sliding_max(c.cpu(), width).cuda())
    engine = Engine(_default_model(tasks=2).cuda(), 1, 256, torch.device("cuda"))
    feat = engine._features(c, 5000 - engine.flat.width + 1)
    assert engine._kernel  # the Triton kernel ran
    torch.testing.assert_close(feat, torch.relu(sliding_max(c, engine.flat.width) + engine.flat.bias[:, None]),
                               rtol=0, atol=0)
    model = _default_model(length=100, tasks=2)
    records = [("chr1", _dna(300_000, 5)), ("chr2", _dna(150, 6)), ("tiny", "ACGTACGTAA")]
    cpu = np.concatenate([b.probs for b in scan(model, records, progress=False)])
    gpu = np.concatenate([b.probs for b in scan(model.cuda(), records, device="cuda", progress=False)])
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-5)
    threshold = float(np.nanquantile(cpu[:, 1], 0.99))
    fa = write_fa(tmp_path / "g.fa", records)
    on_gpu = scan_genome(model, fa, tmp_path / "gpu.bed", threshold=threshold, task=1, device="cuda", progress=False,
                         bedgraph=tmp_path / "gpu.bedgraph", chunk_size=50_000)  # several chunks in flight
    on_cpu = scan_genome(model.cpu(), fa, tmp_path / "cpu.bed", threshold=threshold, task=1, device="cpu",
                         progress=False, bedgraph=tmp_path / "cpu.bedgraph")
    tracks = [pd.read_csv(tmp_path / f"{d}.bedgraph", sep="\t", header=None, skiprows=1) for d in ("cpu", "gpu")]
    assert len(tracks[0]) > 1000 and tracks[1][[0, 1, 2]].equals(tracks[0][[0, 1, 2]])
    np.testing.assert_allclose(tracks[1][3], tracks[0][3], atol=1e-4)  # written with 5 significant digits
    assert len(on_cpu) > 10
    a, b = (set(t[["chrom", "start", "end"]].itertuples(index=False)) for t in (on_cpu, on_gpu))
    assert len(a & b) >= 0.99 * max(len(a), len(b))  # a window within 1e-5 of the threshold may flip


@pytest.mark.parametrize("max_runs", [2**16, 8])  # 8: more runs than the fixed outputs hold, redone at once
def test_deferred_runs_match_the_direct_ones(monkeypatch, max_runs):
    import genocnn.scanruns as se

    monkeypatch.setattr(se, "MAX_RUNS", max_runs)
    rng = np.random.default_rng(1)
    p = torch.tensor(rng.random(4000), dtype=torch.float32)
    p[:50] = 0.95  # a run at the very start, and one at the very end
    p[-30:] = 0.97
    p[600:700] = float("nan")
    p[1000:1010] = 0.99  # ties
    strand = torch.tensor(rng.choice([-1, 1], size=4000), dtype=torch.int8)
    for threshold in (0.0, 0.5, 0.9, 0.995, 2.0):
        direct = runs_on_device(p, strand, threshold)
        pending = se.PendingRuns(p, strand, threshold, values=True, defer=True)
        deferred = pending.result()
        for a, b in zip(deferred, direct):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        np.testing.assert_array_equal(pending.values, p.numpy())


def test_running_max_and_min_in_rows_equal_torch_scans():
    from genocnn.scanruns import running

    x = torch.randint(-(2**40), 2**40, (10_007,))
    for width in (1, 7, 1024, 20_000):
        assert torch.equal(running(torch.maximum, x, width), torch.cummax(x, 0).values)
        assert torch.equal(running(torch.minimum, x, width), torch.cummin(x, 0).values)
    assert running(torch.maximum, x[:0]).shape == (0,)
