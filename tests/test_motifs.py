import numpy as np
import torch

from genocnn.motifs import extract_motifs, filter_influence
from genocnn.pwm import Motif, column_information
from tests.conftest import TINY_MOTIF


def test_motif_matrices():
    m = Motif("m", np.array([[8, 0, 2], [0, 8, 2], [0, 0, 2], [0, 0, 2]]), sites=8)
    assert np.allclose(m.ppm.sum(0), 1)
    assert m.consensus == "ACa"
    assert np.allclose(column_information(m.ppm)[2], 0, atol=1e-9)
    assert m.pwm[0, 0] > 1.5 and m.pwm[1, 0] < -1


def test_window_counts_match_a_naive_loop(tiny_run, tiny_fastas):
    from genocnn.encode import one_hot
    from genocnn.fasta import read_fasta
    from genocnn.motifs import filter_site_counts

    pos, _ = tiny_fastas
    x = one_hot([s for _, s in read_fasta(pos)][:40], length=100)
    counts, sites = filter_site_counts(tiny_run.model, x, threshold=0.5, batch_size=9)
    act = tiny_run.model.first_layer_activations(x).detach()
    k = tiny_run.model.first_conv.kernel_size[0]
    f = int(np.argmax(sites))
    inside = torch.tensor([[float(x[s, :, p : p + k].sum()) >= k / 2 for p in range(act.shape[2])]
                           for s in range(len(x))])  # windows at most half padding
    assert not inside.all()  # some sequences are shorter than 100 bp: the rule is exercised
    cutoff = 0.5 * act[:, f][inside].max()
    naive = torch.zeros(4, k, dtype=torch.float64)
    n = 0
    for s, p in ((act[:, f] > cutoff) & inside).nonzero().tolist():
        naive += x[s, :, p : p + k].double()
        n += 1
    assert sites[f] == n and np.allclose(counts[f], naive.numpy())


def test_planted_motif_is_the_most_influential_filter(tiny_run, tiny_fastas):
    pos, _ = tiny_fastas
    motifs = extract_motifs(tiny_run.model, pos, min_sites=5)
    influence = filter_influence(tiny_run.model, pos)
    assert len(motifs) + len(motifs.skipped) == tiny_run.model.first_conv.out_channels
    top = next(m for m in motifs if m.extra["filter"] == int(np.argmax(influence)))
    consensus = top.consensus.upper()
    rc = consensus[::-1].translate(str.maketrans("ACGT", "TGCA"))
    # the 10 bp filter sees the planted 10-mer, possibly shifted by a base or two
    assert any(TINY_MOTIF[i : i + 7] in consensus or TINY_MOTIF[i : i + 7] in rc for i in range(4))
    assert all(np.allclose(m.ppm.sum(0), 1) for m in motifs)


def test_min_sites_skips_filters(tiny_run, tiny_fastas):
    pos, _ = tiny_fastas
    motifs = extract_motifs(tiny_run.model, pos, min_sites=10**9)
    assert len(motifs) == 0 and len(motifs.skipped) == tiny_run.model.first_conv.out_channels
