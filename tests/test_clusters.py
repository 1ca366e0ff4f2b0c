"""Distinct motifs: filters that learned pieces of one motif become one full-length motif."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genocnn.clusters import distinct_motifs, group_influence, member_placements, site_threshold
from genocnn.compare import split_by_task
from genocnn.config import ConvBlock, ModelConfig
from genocnn.encode import one_hot
from genocnn.models import build_model
from genocnn.motifs import extract_motifs, filter_influence
from genocnn.pwm import Motif, trim
from tests.conftest import TINY_MOTIF

MOTIF = "TTGACCGATGCAAGTCGA"  # 18 bp, not a palindrome
OTHER = "CCGCGTATGAGTCT"
THIRD = "AGTGTCCATCAAGT"


def revcomp(s: str) -> str:
    return s[::-1].translate(str.maketrans("ACGT", "TGCA"))


# filter pieces: two forward pieces of MOTIF, one reverse-complement piece, two unrelated motifs
PIECES = {"A": MOTIF[0:14], "B": MOTIF[2:16], "C": revcomp(MOTIF[4:18]), "D": OTHER, "E": THIRD}


def hand_built(weights=(0.5, 0.5, 1.0, 1.2, 0.3)):
    """Conv filters matching PIECES (activation 2 at a match, 1 at one mismatch, else 0), a linear head."""
    cfg = ModelConfig(conv=(ConvBlock(filters=5, kernel_size=14, batch_norm=False, pool="none", dropout=0.0),),
                      dense=(), rc_average=True)
    model = build_model(cfg, n_tasks=1, length=60)
    with torch.no_grad():
        model.first_conv.weight.copy_(one_hot(list(PIECES.values())))
        model.first_conv.bias.fill_(-12.0)
        model.head[-1].weight.copy_(torch.tensor([weights]))
        model.head[-1].bias.fill_(-2.0)
    return model.eval()


def two_task_model(weights, bias, tasks: tuple[str, str]):
    """The PIECES filters of :func:`hand_built` read out by a linear head of two tasks."""
    cfg = ModelConfig(conv=(ConvBlock(filters=5, kernel_size=14, batch_norm=False, pool="none", dropout=0.0),),
                      dense=(), rc_average=True)
    model = build_model(cfg, n_tasks=2, length=60)
    model.tasks = tasks
    with torch.no_grad():
        model.first_conv.weight.copy_(one_hot(list(PIECES.values())))
        model.first_conv.bias.fill_(-12.0)
        model.head[-1].weight.copy_(torch.tensor(weights))
        model.head[-1].bias.copy_(torch.tensor(bias))
    return model.eval()


def planted(n: int = 240, seed: int = 0) -> torch.Tensor:
    """Random 60 bp sequences: MOTIF in half (either strand), OTHER in a third, THIRD in a quarter, apart."""
    rng = np.random.default_rng(seed)
    seqs = []
    for i in range(n):
        s = list(rng.choice(list("ACGT"), 60))
        for word, every, region in ((MOTIF, 2, 0), (OTHER, 3, 20), (THIRD, 4, 40)):
            if i % every == 0:
                w = word if rng.random() < 0.5 else revcomp(word)
                start = region + int(rng.integers(0, 20 - len(w) + 1))
                s[start : start + len(w)] = w
        seqs.append("".join(s))
    return one_hot(seqs)


def nullified_reference(model, x, group) -> float:
    """Mean drop of the probability with the group's activations set to their means, by a forward hook."""
    with torch.no_grad():
        model.eval()
        means = model.first_layer_activations(x).mean(dim=(0, 2))
        base = torch.sigmoid(model(x))

        def hook(_module, _inputs, out):
            out = out.clone()
            out[:, group, :] = means[group][None, :, None]
            return out

        handle = model.blocks[0][2].register_forward_hook(hook)  # the activation: blocks[0][:3]
        try:
            nulled = torch.sigmoid(model(x))
        finally:
            handle.remove()
    return float((base - nulled).mean())


def test_member_placements_follow_offsets_and_strands():
    rng = np.random.default_rng(3)
    full = rng.dirichlet([0.1] * 4, 16).T * 100
    motifs = [Motif("piece", full[:, 4:12]), Motif("full", full), Motif("rc", full[::-1, ::-1][:, 2:10])]
    # frame of the first motif: the full motif starts 4 columns left of it; the rc piece reads leftwards
    assert member_placements(motifs, anchor=0) == [(0, 1), (-4, 1), (9, -1)]
    assert member_placements(motifs, anchor=2)[2] == (0, 1)
    assert member_placements(motifs[:1]) == [(0, 1)]


def test_pieces_of_one_motif_become_one_full_length_motif():
    model, x = hand_built(), planted()
    filters = extract_motifs(model, x, min_sites=5)
    assert [m.name for m in filters] == [f"filter_{i}" for i in range(5)]
    res = distinct_motifs(model, x, filters)
    groups = sorted(sorted(m.extra["filters"]) for m in res.motifs)
    assert groups == [[0, 1, 2], [3], [4]]
    group = next(m for m in res.motifs if len(m.extra["filters"]) == 3)
    # anchor: filter 2 (most influential), which reads MOTIF's reverse strand: the motif follows it
    assert group.extra["anchor"] == "filter_2"
    assert group.consensus == revcomp(MOTIF)
    assert group.extra["placements"] == {"filter_2": (0, 1), "filter_0": (17, -1), "filter_1": (15, -1)}
    # each planted MOTIF counted once although three filters hit it
    assert group.sites == group.extra["sites"] == 120
    assert np.allclose(group.pfm.sum(axis=0), 120)
    singles = {m.extra["filters"][0]: m for m in res.motifs if len(m.extra["filters"]) == 1}
    assert singles[3].consensus in (OTHER, revcomp(OTHER)) and singles[4].consensus in (THIRD, revcomp(THIRD))
    assert list(res.table["motif"]) == [m.name for m in res.motifs]
    assert res.table.set_index("motif").loc[group.name, "informative"] == 18


def test_union_of_windows_gives_the_same_motif_here():
    model, x = hand_built(), planted()
    res = distinct_motifs(model, x, extract_motifs(model, x, min_sites=5), clusters=[1, 1, 1, 2, 3], vote=False)
    group = next(m for m in res.motifs if len(m.extra["filters"]) == 3)
    assert group.consensus == revcomp(MOTIF) and group.sites == 120


def test_groups_are_ranked_by_influence_of_the_whole_group():
    model, x = hand_built(weights=(0.5, 0.5, 0.5, 1.0, 0.3)), planted()
    res = distinct_motifs(model, x, extract_motifs(model, x, min_sites=5))
    assert [m.name for m in res.motifs] == ["cluster_1", "cluster_2", "cluster_3"]
    reference = [nullified_reference(model, x, m.extra["filters"]) for m in res.motifs]
    assert np.allclose([m.extra["influence"] for m in res.motifs], reference, atol=1e-6)
    assert reference == sorted(reference, reverse=True)
    # filter 3 alone outweighs each piece, but the three pieces together come first
    single = filter_influence(model, x)
    assert single[3] > max(single[:3])
    assert sorted(res.motifs[0].extra["filters"]) == [0, 1, 2]
    # other weights, other order
    res = distinct_motifs(hand_built(weights=(0.1, 0.1, 0.1, 2.0, 0.3)), x,
                          extract_motifs(model, x, min_sites=5), clusters=[1, 1, 1, 2, 3])
    assert res.motifs[0].extra["filters"] == [3]


def test_group_influence_equals_nullifying_the_members_together(tiny_run, tiny_fastas):
    model = tiny_run.model
    x = one_hot([s for s in tiny_fastas[0].read_text().split()[1::2]][:120], length=model.length)
    groups = [[0, 1], [2], [3, 4, 5], list(range(8))]
    got = group_influence(model, x, groups, batch_size=50)
    assert got.shape == (4,) and group_influence(model, x, groups, per_task=True).shape == (4, 1)
    assert np.allclose(got, [nullified_reference(model, x, g) for g in groups], atol=1e-5)
    # a group of one is that filter's nullification influence
    assert np.isclose(got[1], filter_influence(model, x)[2], atol=1e-6)


def test_trained_run_gives_the_whole_planted_motif_first(tiny_run, tiny_fastas):
    pos, _ = tiny_fastas
    model = tiny_run.model
    res = distinct_motifs(model, pos, extract_motifs(model, pos, min_sites=5))
    top = res.motifs[0]
    assert top.name == "cluster_1" and top.extra["influence"] == max(m.extra["influence"] for m in res.motifs)
    assert TINY_MOTIF in top.consensus or revcomp(TINY_MOTIF) in top.consensus
    assert len(res.motifs) <= len(extract_motifs(model, pos, min_sites=5))
    assert set(top.extra) >= {"members", "sites", "influence", "filters", "anchor", "placements"}


def test_edge_cases():
    model = hand_built()
    x = planted(n=60)
    assert distinct_motifs(model, x, []).motifs == []
    with pytest.raises(ValueError, match="cluster labels"):
        distinct_motifs(model, x, extract_motifs(model, x, min_sites=5), clusters=[1, 2])
    # a group the model does not rely on (negative weight) is left out unless asked for
    model = hand_built(weights=(0.5, 0.5, 0.5, 1.0, -0.3))
    found = extract_motifs(model, x, min_sites=5)
    assert [m.extra["filters"] for m in distinct_motifs(model, x, found).motifs if m.extra["filters"] == [4]] == []
    kept = distinct_motifs(model, x, found, min_influence=None).motifs
    assert kept[-1].extra["filters"] == [4] and kept[-1].extra["influence"] < 0
    # one that moves the prediction by a few percent of what the task's main motif does: left out unless asked for
    model = hand_built(weights=(0.5, 0.5, 1.0, 1.2, 0.01))
    found = extract_motifs(model, x, min_sites=5)
    share = distinct_motifs(model, x, found, min_share=0).motifs
    assert share[-1].extra["filters"] == [4] and 0 < share[-1].extra["influence"] < 0.05 * share[0].extra["influence"]
    assert [4] not in [m.extra["filters"] for m in distinct_motifs(model, x, found).motifs]


def test_singletons_are_extended_and_split_groups_joined_by_their_full_motifs():
    model, x = hand_built(), planted()
    filters = extract_motifs(model, x, min_sites=5)
    apart = distinct_motifs(model, x, filters, clusters=[1, 2, 3, 4, 5], regroup=False, refine=0)
    assert len(apart.motifs) == 5
    piece = next(m for m in apart.motifs if m.extra["filters"] == [0])
    # filter 0 saw MOTIF[0:14]; its sites, widened by the flanks, give all 18 bp
    assert piece.consensus == MOTIF and piece.sites == 120
    joined = distinct_motifs(model, x, filters, clusters=[1, 2, 3, 4, 5], refine=0)
    assert sorted(sorted(m.extra["filters"]) for m in joined.motifs) == [[0, 1, 2], [3], [4]]
    assert joined.motifs[0].consensus == revcomp(MOTIF) and joined.motifs[0].sites == 120


def test_many_task_groups_are_ranked_by_the_task_they_matter_to():
    """A motif that drives task 0 and counts against task 1 nets out near zero on average: keep it, for task 0."""
    model = two_task_model([[0.5, 0.5, 1.0, 0.0, 0.0], [-1.0, -1.0, -2.0, 1.2, 0.3]], [-2.0, 0.0],
                           ("motif_task", "other_task"))
    x = planted()
    per_task = group_influence(model, x, [[0, 1, 2]], per_task=True)[0]
    assert per_task[0] > 0.05 and per_task.mean() < 0  # averaged over tasks, it would be left out
    res = distinct_motifs(model, x, extract_motifs(model, x, min_sites=5))
    motif = next(m for m in res.motifs if sorted(m.extra["filters"]) == [0, 1, 2])
    assert motif.extra["task"] == "motif_task" and np.isclose(motif.extra["influence"], per_task[0])
    other = next(m for m in res.motifs if m.extra["filters"] == [3])
    assert other.extra["task"] == "other_task"
    assert set(res.table["task"]) == {"motif_task", "other_task"}


def test_a_weak_tail_beyond_the_motif_is_trimmed_off():
    """MOTIF, 4 random bases, then a 0.5-bit column: inside the group's flank, kept by a plain trim, not the motif."""
    rng = np.random.default_rng(3)
    seqs = []
    for i in range(240):
        s = list(rng.choice(list("ACGT"), 60))
        if i % 2 == 0:
            tail = "G" if rng.random() < 0.7 else str(rng.choice(list("ACT")))
            word = MOTIF + "".join(rng.choice(list("ACGT"), 4)) + tail
            word = word if rng.random() < 0.5 else revcomp(word)
            start = int(rng.integers(0, 60 - len(word) + 1))
            s[start : start + len(word)] = word
        seqs.append("".join(s))
    model, x = hand_built(), one_hot(seqs)
    filters = extract_motifs(model, x, min_sites=5)
    group = distinct_motifs(model, x, filters, min_influence=None).motifs[0]
    assert group.extra["filters"] == [2, 0, 1]
    assert group.consensus == revcomp(MOTIF)
    # the untrimmed counts carry the tail: a plain flank trim at 0.3 bit keeps it and the 4 bases before it
    whole = distinct_motifs(model, x, filters, min_influence=None, min_ic=0.0).motifs[0]
    assert trim(whole, 0.3).width == len(MOTIF) + 5
    assert trim(whole, 0.3).consensus.upper().endswith(revcomp(MOTIF))


def test_site_threshold_follows_first_layer_batch_norm():
    """Sparse (no batch norm, the default) first layers count sites at 0.5 of the best vote, batch-normed ones at 0.7."""
    model, x = hand_built(), planted()
    assert site_threshold(model) == 0.5
    cfg = ModelConfig(conv=(ConvBlock(filters=5, kernel_size=14, batch_norm=True),), dense=())
    assert site_threshold(build_model(cfg, n_tasks=1, length=60)) == 0.7
    # a third of the MOTIF copies carry a mismatch at its first base: one member of three sees it weakly
    seqs = ["".join("ACGT"[int(i)] for i in row.argmax(0)) for row in x.numpy()]
    seqs = [q.replace(MOTIF, "A" + MOTIF[1:]) if i % 6 == 0 else q for i, q in enumerate(seqs)]
    x = one_hot(seqs)
    filters = extract_motifs(model, x, min_sites=5)
    default = distinct_motifs(model, x, filters, min_influence=None, refine=0)
    strict = distinct_motifs(model, x, filters, min_influence=None, threshold=0.9, refine=0)
    assert [m.sites for m in default.motifs] == [m.sites for m in
                                                distinct_motifs(model, x, filters, min_influence=None,
                                                                threshold=0.5, refine=0).motifs]
    assert sum(m.sites for m in strict.motifs) < sum(m.sites for m in default.motifs)


def test_refined_motifs_count_the_best_site_of_every_sequence_that_relies_on_them():
    """The strongest sites alone make a consensus; refining counts each relying sequence's best site, variants too.

    A third of the MOTIF copies carry an A at its first base: at a 0.9 site threshold their vote (2.5 of 3)
    is not a site, so the motif says T there only. Every MOTIF sequence is predicted bound and drops
    when the group is nullified, so the refined motif counts all 120, and shows the A in a third.
    """
    model, x = hand_built(), planted()
    seqs = ["".join("ACGT"[int(i)] for i in row.argmax(0)) for row in x.numpy()]
    seqs = [q.replace(MOTIF, "A" + MOTIF[1:]).replace(revcomp(MOTIF), revcomp("A" + MOTIF[1:])) if i % 6 == 0 else q
            for i, q in enumerate(seqs)]
    x = one_hot(seqs)
    filters = extract_motifs(model, x, min_sites=5)
    strict = distinct_motifs(model, x, filters, threshold=0.9, refine=0).motifs[0]
    refined = distinct_motifs(model, x, filters, threshold=0.9).motifs[0]
    assert sorted(refined.extra["filters"]) == [0, 1, 2] and refined.extra["refined"]
    assert strict.sites == 80 and refined.sites == 120
    # the frame reads MOTIF's reverse strand (anchor filter 2): its first base is the last column, complemented
    assert strict.consensus == refined.consensus == revcomp(MOTIF)
    assert strict.ppm[3, -1] < 0.02 and abs(refined.ppm[3, -1] - 40 / 120) < 0.02
    assert refined.extra["placements"] == strict.extra["placements"]


def test_pieces_that_serve_different_tasks_stay_apart():
    """Filters 0-2 read one motif, but 0 and 1 drive task a and count against b, 2 the reverse: two motifs.

    Tomtom links the three (they overlap by 10-14 bp); a model that reads them
    as evidence for different TFs (as MAFK and FOSL1 share ``TGAsTCA``) needs
    one distinct motif per TF. A single-task model keeps them together.
    """
    model = two_task_model([[0.8, 0.8, -0.5, 1.2, 0.0], [-0.5, -0.5, 1.5, 0.0, 0.3]], [-2.0, -2.0], ("a", "b"))
    x = planted()
    filters = extract_motifs(model, x, min_sites=5)
    apart = distinct_motifs(model, x, filters, min_influence=None)
    groups = {tuple(sorted(m.extra["filters"])): m for m in apart.motifs}
    assert set(groups) == {(0, 1), (2,), (3,), (4,)}
    assert groups[(0, 1)].extra["task"] == "a" and groups[(2,)].extra["task"] == "b"
    together = distinct_motifs(model, x, filters, min_influence=None, by_task=False)
    assert sorted(sorted(m.extra["filters"]) for m in together.motifs) == [[0, 1, 2], [3], [4]]


def test_split_by_task_keeps_shared_motifs_and_one_task_models_whole():
    shared = np.array([[0.06, 0.04], [0.05, 0.03], [0.02, 0.07]])  # every member counts for both tasks
    assert split_by_task([3, 3, 3], shared).tolist() == [3, 3, 3]
    opposed = np.array([[0.06, -0.02], [0.0, 0.05], [0.01, 0.0], [0.0, 0.0]])
    assert split_by_task([3, 3, 7, 7], opposed).tolist() == [3, 8, 7, 7]  # a new label after the largest
    assert split_by_task([1, 1], np.array([[0.5], [0.1]])).tolist() == [1, 1]  # one task
