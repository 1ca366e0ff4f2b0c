"""Distinct motifs: one full-length motif per group of filters that learned the same motif.

A network's first layer learns a motif several times over: shifted pieces,
reverse complements, pieces of different lengths (the CTCF demo gives a dozen
10-15 bp pieces of CTCF). :func:`distinct_motifs` turns them into one motif
per group:

1. group the filter motifs that match each other by Tomtom
   (:func:`~genocnn.compare.cluster_motifs`, or given labels), and split a
   group of a many-task model whose members matter to different tasks, each
   counting little for the other's (:func:`~genocnn.compare.split_by_task`: MAFK's and
   FOSL1's filters share ``TGAsTCA``, but the model reads them apart);
2. take the group's most influential filter as its anchor and place every
   member in the anchor's frame by Tomtom's offset and strand, along the
   group's strongest links (:func:`member_placements`);
3. read the members' first-layer activations on both strands of the
   sequences, each divided by the filter's maximum, map every window into
   the anchor's frame (reverse complemented for members on the other strand)
   and sum them per (sequence, strand, anchored position): a site is where
   that vote exceeds ``threshold`` times the group's best, counted once
   (sites whose centres are within ``merge`` bases are one);
4. count the sites' bases over the span of all members plus ``flank`` bases
   each side into a PFM and keep its core, the columns of greatest summed
   ``ic - min_ic`` (:func:`~genocnn.pwm.trim` with ``core=True``: a weak
   tail that ends in one column just over ``min_ic`` goes too); a group of
   one filter gets such an extended motif too;
5. compare the group motifs by Tomtom and, once, join the groups whose
   full-length motifs match (pieces that overlapped too little to link),
   splitting by task again;
6. refine each ranked motif on the sequences that rely on it (predicted
   bound for its task, and predicted lower with the group nullified): the
   best window of its log-odds in each, with ``flank`` columns more each
   side, counted again three times over (:mod:`genocnn.refine`), then cut
   to its core as in step 4. The windows where the filters fire strongest
   are the consensus-like sites; the refined motif has the sites' own
   variation, which is what JASPAR's matrices hold.

Groups are ranked by their influence, the mean drop of the prediction when
all their filters are nullified at once (:func:`group_influence`), taken for
the task where it is largest (``task``: a many-TF model's motif matters to
its own TF, and averaging over tasks would dilute it, or cancel it where
the other tasks use it as evidence against), named ``cluster_<rank>``
(``cluster_1`` the most influential), and those the model does not rely on
for any task (influence <= 0), or relies on for less than 5 % of what the
most influential group of that task does, are left out.

Choices, by measurement (``bench/distinct.py``; ``bench/RESULTS.md``,
"Distinct motifs": the CTCF peaks run and 13 simulated single-TF runs):

* The default over seqlet motifs (:func:`~genocnn.seqlets.attribution_motifs`):
  both rank the planted motif first on all 14 runs, but these match its
  JASPAR matrix better on 12 of 14 (CTCF q 7e-21 against 6e-16 by ISM),
  span it in full (REST 20 of 20 columns, TP53 18 of 18; ISM 15 and 15) and
  need no attribution pass (3-10 s per run; ISM 14-217 s on 300-500 seqs).
  Seqlets return fewer motifs (1-2, against 1-15 of influence > 0).
* Summed activations, not the union of every member's windows above the
  threshold: the union gathers each member's weak windows and blurs the
  motif (CTCF at 0.7: 7 informative columns against 14; worse q on all 13
  runs compared).
* Influence in the group's own task, and the 5 % share: on the Koo & Eddy
  12-TF simulation (``bench/recovery.py``, exponential first layer) the 11
  groups that are planted motifs had influence 0.26-0.40, each in its own
  TF's task; the next 16 groups, single filters, 0.001-0.012 (at most 3 %
  of their task's best), none named after a planted TF. Averaged over
  tasks, the planted ones fall to a twelfth and the cut has no gap to use.
* Splitting by task (``share = 0.25``, not tuned): on the Koo & Eddy
  simulation one bZIP group held MAFK's ``GCTGAGTCAG`` filters and FOSL1's
  ``ATGACTCAT`` ones (each +0.03 to +0.07 on its own TF's task, about 0 or
  negative on the other's); its motif was named for one of the two. Split,
  MAFK's is named Maf-related and FOSL1's bZIP; on the held-out design
  PAX5's ``GGTCACGC`` filters leave ESR1's group and PAX5 is named.
* ``threshold``: 0.5 without first-layer batch norm (the default: sparse
  activations, whose best site is near the consensus), 0.7 with it
  (:func:`site_threshold`). Without batch norm 0.5 / 0.6 / 0.7 named 11 / 10
  / 7 planted TFs on the Koo & Eddy simulation and 9 / 8 / 8 held out (at
  0.7 the motifs are consensus strings a column-shuffled copy matches as
  well) and keep 14 of 14 one-TF names honest; with batch norm 0.7 beat 0.6
  on 7 of 12 simulations, and 0.5 cut CTCF to 9 informative columns.
  Realigning sites to the group's PWM was tried and dropped (no gain on
  CTCF, CEBPB 3e-16 -> 2e-12).
* Refining (step 6) on the sequences that rely on the motif, not on the
  sites above the threshold: on the Koo & Eddy simulation 12 / 12 planted
  TFs named at seeds 0 and 1, 8 and 9 at TF level (before 11 and 12, 5 and
  4), held out 10 / 10 with 8 at TF level (before 6), the 14 one-TF runs
  all honest with SOX2 now named; the CTCF peaks' motif keeps 13
  informative columns of 15 (before 15: the peaks' own best sites carry
  13). Sequences merely predicted bound were too many: a one-task model
  bound by either of two motifs counted every sequence for both.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .compare import cluster_motifs, split_by_task
from .encode import reverse_complement
from .inference import encode_for, evaluating, predict_logits
from .motifs import group_nullification
from .pwm import Motif, column_information, trim
from .refine import MIN_REFINE_DROP, count_sites, refine_motifs

__all__ = ["DistinctMotifs", "distinct_motifs", "group_influence", "member_placements", "site_threshold"]


class DistinctMotifs(NamedTuple):
    """What :func:`distinct_motifs` found."""

    motifs: list[Motif]  #: ``cluster_<rank>``, most influential group first
    table: pd.DataFrame  #: one row per motif (see :func:`distinct_motifs`)


def group_influence(model, x, groups: Sequence[Sequence[int]], per_task: bool = False,
                    batch_size: int = 256) -> np.ndarray:
    """Influence of groups of first-layer filters, each group nullified as a whole.

    Parameters
    ----------
    model : ConvNet
    x : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
    groups : sequence of sequences of int
        Filter indices per group (G groups).
    per_task : bool
        One column per task instead of the mean over tasks.
    batch_size : int

    Returns
    -------
    np.ndarray, shape (G,), or (G, T) when ``per_task``
        Mean drop of the predicted probability when every filter of the group
        is replaced by its mean activation (Basset-style nullification).
    """
    influence = group_nullification(model, x, groups, batch_size)
    return influence if per_task else influence.mean(axis=1)


def site_threshold(model) -> float:
    """The default site threshold of :func:`distinct_motifs` for ``model``: 0.5, or 0.7 with first-layer batch norm.

    Batch norm shifts a filter's activations so that they are dense; without
    it they are sparse and the group's best site is near the consensus, so a
    site needs a lower share of it (module notes).
    """
    return 0.7 if isinstance(model.blocks[0][1], torch.nn.BatchNorm1d) else 0.5


def member_placements(motifs: Sequence[Motif], anchor: int = 0) -> list[tuple[int, int]]:
    """Place motifs in the frame of ``motifs[anchor]`` by Tomtom offsets and strands.

    Motifs are placed one at a time along the best remaining Tomtom link
    (smallest p-value) between a placed and an unplaced motif, composing the
    offsets and strands of the links (a spanning tree grown from the anchor).

    Parameters
    ----------
    motifs : sequence of Motif
        The group's motifs, as compared (usually trimmed).
    anchor : int
        Index of the motif whose columns define the frame.

    Returns
    -------
    list of (int, int), one per motif
        ``(a, s)``: column ``j`` of the motif faces frame column ``a + s * j``;
        ``s = -1`` means its reverse complement matches (column ``j`` then holds
        the complement of the frame's base).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> full = rng.dirichlet([0.1] * 4, 16).T * 100
    >>> piece = Motif("p", full[:, 4:12])
    >>> rc = Motif("r", full[::-1, ::-1][:, 2:10])
    >>> member_placements([Motif("f", full), piece, rc])
    [(0, 1), (4, 1), (13, -1)]
    """
    from memelite import tomtom

    n = len(motifs)
    placed = {anchor: (0, 1)}
    if n < 2:
        return [placed[anchor]]
    ppms = [np.asarray(m.ppm, dtype=np.float64) for m in motifs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fewer than 25 targets
        p, _, offsets, _, strands = tomtom(ppms, ppms)  # [query, target]
    p = np.asarray(p, dtype=np.float64)
    while len(placed) < n:
        todo = [j for j in range(n) if j not in placed]
        j, i = min(((j, i) for j in todo for i in placed), key=lambda ji: p[ji])
        a, s = placed[i]
        o = int(offsets[j, i])
        if strands[j, i]:  # column c of j faces column o + c of rc(i), i.e. column w_i - 1 - o - c of i
            placed[j] = (a + s * (motifs[i].width - 1 - o), -s)
        else:
            placed[j] = (a + s * o, s)
    return [placed[k] for k in range(n)]


def _strand_activations(model, xb: torch.Tensor, filters: torch.Tensor, device) -> np.ndarray:
    """Activations of ``filters`` on both strands of a batch: shape (2, B, M, P), float32, >= 0.

    ``[1]`` is the reverse complement of ``xb``, so its position ``p`` is the
    window ending at forward position ``L - 1 - p``.
    """
    xb = xb.to(device)
    acts = [model.first_layer_activations(v)[:, filters.to(device)].float().clamp(min=0).cpu().numpy()
            for v in (xb, reverse_complement(xb))]
    return np.stack(acts)


def _group_sites(model, x: torch.Tensor, filters: list[int], groups: list[list[tuple[int, int, int]]],
                 threshold: float, vote: bool, batch_size: int) -> list[np.ndarray]:
    """Candidate sites of each group in its anchor's frame, from both strands of ``x``.

    Members are ``(column of filters, a, s)``: filter column ``c`` faces frame
    column ``a + s c``. A window at ``p`` puts frame column 0 at ``origin = p -
    s a`` on strand ``s``; a window at ``p`` of the reverse complement, at
    ``origin = L - 1 - p + s a`` on strand ``-s`` (frame column ``u`` is
    position ``origin + strand u``). Activations are divided by each filter's
    maximum; ``vote``: summed per (sequence, origin, strand) and kept above
    ``threshold`` times the group's largest sum; else each window above it.

    Returns
    -------
    list of np.ndarray, shape (S, 4), float64
        Per group, rows ``(sequence, origin, strand, score)``.
    """
    idx = torch.as_tensor(filters, dtype=torch.long)
    length = x.shape[2]
    with evaluating(model) as device:
        peak = np.zeros(len(filters), dtype=np.float32)
        for i in range(0, len(x), batch_size):
            peak = np.maximum(peak, _strand_activations(model, x[i : i + batch_size], idx, device).max(axis=(0, 1, 3)))
        scale = np.where(peak > 0, 1 / np.maximum(peak, 1e-30), 0)[None, None, :, None]
        found: list[list[np.ndarray]] = [[] for _ in groups]
        best = np.zeros(len(groups))
        for i in range(0, len(x), batch_size):
            act = _strand_activations(model, x[i : i + batch_size], idx, device) * scale  # (2, B, M, P)
            p = act.shape[3]
            for g, members in enumerate(groups):
                off = max(abs(a) for _, a, _ in members)
                placed = np.zeros((len(members), 2, act.shape[1], length + 2 * off), dtype=np.float32)
                for j, (col, a, s) in enumerate(members):  # index = origin + off; [0] strand +, [1] strand -
                    placed[j, int(s < 0), :, off - s * a : off - s * a + p] = act[0, :, col]
                    start = off + s * a + length - p
                    placed[j, int(s > 0), :, start : start + p] = act[1, :, col, ::-1]
                for votes in [placed.sum(axis=0)] if vote else placed:
                    best[g] = max(best[g], float(votes.max()))
                    cut = threshold * (best[g] if vote else 1.0)
                    strand, seq, origin = np.nonzero(votes > cut)
                    found[g].append(np.stack([seq + i, origin - off, 1 - 2 * strand, votes[strand, seq, origin]],
                                             axis=1).astype(np.float64))
    out = []
    for g, rows in enumerate(found):
        rows = np.concatenate(rows) if rows else np.zeros((0, 4))
        out.append(rows[rows[:, 3] > threshold * best[g]] if vote else rows)
    return out


def _dedupe(sites: np.ndarray, merge: int, width: int) -> np.ndarray:
    """Keep one site per sequence within ``merge`` bases (site centres, either strand), best score first.

    ``sites`` has rows ``(sequence, origin, strand, score)`` in a frame of
    columns ``lo .. hi - 1`` with ``width = lo + hi - 1``; the centre of a site
    is at ``origin + strand * width / 2``. Returns the kept rows.
    """
    order = np.argsort(-sites[:, 3], kind="stable")  # best score first
    centres = 2 * sites[:, 1].astype(np.int64) + sites[:, 2].astype(np.int64) * width
    taken: dict[int, set[int]] = {}
    keep = []
    for r in order:
        near = taken.setdefault(int(sites[r, 0]), set())
        c = int(centres[r])
        if any(c + d in near for d in range(-2 * merge, 2 * merge + 1)):
            continue
        near.add(c)
        keep.append(r)
    return sites[np.sort(np.asarray(keep, dtype=np.int64))]


def distinct_motifs(
    model,
    x,
    motifs: Sequence[Motif],
    clusters: Sequence[int] | None = None,
    threshold: float | None = None,
    flank: int = 5,
    merge: int = 1,
    vote: bool = True,
    regroup: bool = True,
    by_task: bool = True,
    min_influence: float | None = 0.0,
    min_share: float = 0.05,
    min_ic: float = 0.3,
    p_value: float = 1e-4,
    pseudocount: float = 1.0,
    refine: int = 3,
    batch_size: int = 256,
) -> DistinctMotifs:
    """One full-length, site-based motif per group of filters that learned the same motif.

    Parameters
    ----------
    model : ConvNet
    x : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
        The sequences whose activating windows are counted (usually the
        bound ones, those given to :func:`~genocnn.motifs.extract_motifs`).
    motifs : sequence of Motif
        Filter motifs from :func:`~genocnn.motifs.extract_motifs`
        (``extra["filter"]`` set), trimmed or not (``extra["trim_offset"]``
        is honoured; untrimmed ones are trimmed at ``min_ic`` to be compared).
    clusters : sequence of int, optional
        Group label per motif; default :func:`~genocnn.compare.cluster_motifs`
        of the trimmed motifs at ``p_value``.
    threshold : float, optional
        Sites: members' activations (each over its maximum, both strands)
        summed per anchored site above ``threshold`` times the group's best
        sum. Default :func:`site_threshold` (0.5 without first-layer batch
        norm, 0.7 with it; see the module notes).
    flank : int
        Bases added each side of the group's span before trimming.
    merge : int
        Sites of a sequence whose centres (either strand) are at most this
        many bases apart are one site (the best scoring).
    vote : bool
        False: the union of member windows above ``threshold`` instead.
    regroup : bool
        Join, once, the groups whose full-length motifs match by Tomtom
        (:func:`~genocnn.compare.cluster_motifs` at ``p_value``).
    by_task : bool
        Split groups whose members matter to different tasks, each counting
        little for the other's (:func:`~genocnn.compare.split_by_task`), before and after
        ``regroup``; a one-task model is not affected.
    min_influence : float or None
        Groups whose influence (their largest over tasks) is not above this
        are left out (default 0: those the model relies on for no task in
        ``x``); None keeps all, whatever ``min_share``.
    min_share : float
        Groups whose influence is under this share of the most influential
        group of the same task are left out too (0 keeps them): single
        filters that touch a prediction by a few percent of what the task's
        own motif does.
    min_ic : float
        Flanking columns under this many bits are trimmed (with weak tails:
        the core of greatest summed ``ic - min_ic`` is kept).
    p_value : float
        Tomtom link for :func:`~genocnn.compare.cluster_motifs`.
    pseudocount : float
        Of the returned motifs.
    refine : int
        Rounds of :func:`~genocnn.refine.refine_motifs` (step 6), with
        ``flank`` columns each side, on the sequences predicted bound for
        the motif's task and at least ``MIN_REFINE_DROP`` (0.1) lower with
        its filters nullified; 0 keeps the motifs of the group's sites.
    batch_size : int

    Returns
    -------
    DistinctMotifs
        ``motifs``: ``cluster_1``, ``cluster_2``, ... by decreasing group
        influence, PFM shape (4, w); ``sites`` is the number of distinct
        sites (of a refined motif: the sequences counted, ``extra["refined"]``
        True), ``extra`` holds ``members`` (filter motif names, anchor
        first), ``filters``, ``anchor``, ``sites``, ``influence`` (of the
        task where it is largest, ``task``), ``group``
        (the group label), ``placements`` ({member: (column, strand)}: the
        motif column facing the filter's column 0, and +1 or -1) and
        ``trim_offset``. ``table``: one row per motif with ``motif, group,
        anchor, members, n_members, sites, width, ic, informative`` (columns
        >= 0.5 bit), ``consensus, influence, task``. Groups without any site above
        the threshold are left out.
    """
    x = encode_for(model, x)
    threshold = site_threshold(model) if threshold is None else threshold
    motifs = list(motifs)
    shown = [m if "trim_offset" in m.extra else trim(m, min_ic) for m in motifs]
    labels = np.asarray(cluster_motifs(shown, p_value) if clusters is None else clusters)
    if len(labels) != len(motifs):
        raise ValueError(f"{len(labels)} cluster labels for {len(motifs)} motifs")
    filters = [int(m.extra["filter"]) for m in motifs]
    known: dict[tuple[int, ...], np.ndarray] = {}

    def influence(sets: list[tuple[int, ...]]) -> list[np.ndarray]:
        """Per-task influence, shape (T,), of each set of filters."""
        todo = list(dict.fromkeys(s for s in sets if s not in known))
        if todo:
            known.update(zip(todo, group_influence(model, x, todo, per_task=True, batch_size=batch_size)))
        return [known[s] for s in sets]

    def build(labels: np.ndarray) -> list[Motif]:
        labels = split_by_task(labels, own) if by_task else labels
        groups = [np.flatnonzero(labels == g) for g in dict.fromkeys(labels.tolist())]
        single = [float(v.max()) for v in own]
        total = influence([tuple(filters[i] for i in g) for g in groups])
        return _group_motifs(model, x, motifs, shown, filters, groups, labels, single, total,
                             threshold, flank, merge, vote, min_ic, pseudocount, batch_size)

    own = np.array(influence([(f,) for f in filters])) if motifs else np.zeros((0, 1))
    found = build(labels) if motifs else []
    if regroup and len(found) > 1:
        joined = cluster_motifs(found, p_value)
        if len(set(joined.tolist())) < len(found):
            by_index = {i: g for g, m in zip(joined, found) for i in m.extra.pop("index")}
            found = build(np.array([by_index.get(i, len(motifs) + 1 + i) for i in range(len(motifs))]))
    if min_influence is not None:
        found = [m for m in found if m.extra["influence"] > min_influence]
        best: dict[str, float] = {}
        for m in found:
            best[m.extra["task"]] = max(best.get(m.extra["task"], 0.0), m.extra["influence"])
        found = [m for m in found if m.extra["influence"] >= min_share * best[m.extra["task"]]]
    found.sort(key=lambda m: -m.extra["influence"])
    if refine and found:
        bound = (torch.sigmoid(predict_logits(model, x, batch_size)) >= 0.5).numpy()  # (N, T)
        tasks = list(model.tasks)
        own = [tasks.index(m.extra["task"]) for m in found]
        drops = group_nullification(model, x, [m.extra["filters"] for m in found], batch_size, per_sequence_in=own)
        relying = bound[:, own].T & (drops >= MIN_REFINE_DROP)  # (G, N)
        found = refine_motifs(x, found, relying, refine, flank, min_ic, pseudocount)
    for rank, m in enumerate(found, 1):
        m.name = f"cluster_{rank}"
        m.extra.pop("index", None)
    return DistinctMotifs(found, _table(found))


def _group_motifs(model, x, motifs, shown, filters, groups, labels, single, total, threshold, flank, merge,
                  vote, min_ic, pseudocount, batch_size) -> list[Motif]:
    """The site-based motif of each group (unnamed, unranked); see :func:`distinct_motifs`."""
    k = model.first_conv.kernel_size[0]
    tasks = list(model.tasks)
    columns = {f: c for c, f in enumerate(dict.fromkeys(filters))}
    ordered, layouts = [], []
    for members in groups:
        members = sorted(members, key=lambda i: -single[i])  # anchor first
        # filter column c of member i faces frame column a + s c (Tomtom placed the trimmed columns)
        places = [(a - s * shown[i].extra.get("trim_offset", 0), s)
                  for i, (a, s) in zip(members, member_placements([shown[i] for i in members], 0))]
        ordered.append(members)
        layouts.append([(columns[filters[i]], a, s) for i, (a, s) in zip(members, places)])
    candidates = _group_sites(model, x, list(columns), layouts, threshold, vote, batch_size)
    found = []
    for g, (members, layout, sites) in enumerate(zip(ordered, layouts, candidates)):
        span = [c for _, a, s in layout for c in (a, a + s * (k - 1))]
        lo, hi = min(span) - flank, max(span) + 1 + flank
        sites = _dedupe(sites, merge, lo + hi - 1)
        if not len(sites):
            continue
        full = trim(Motif("group", count_sites(x.numpy(), sites, lo, hi), len(sites), pseudocount=pseudocount),
                    min_ic, core=True)
        cut = lo + full.extra["trim_offset"]
        names = [motifs[i].name for i in members]
        full.extra.update({
            "members": names, "filters": [filters[i] for i in members], "anchor": names[0],
            "sites": len(sites), "influence": float(total[g].max()), "task": tasks[int(total[g].argmax())],
            "group": int(labels[members[0]]),
            "placements": {nm: (int(a - cut), int(s)) for nm, (_, a, s) in zip(names, layout)},
            "index": [int(i) for i in members],
        })
        found.append(full)
    return found


def _table(found: list[Motif]) -> pd.DataFrame:
    """One row per distinct motif (columns as documented in :func:`distinct_motifs`)."""
    columns = ["motif", "group", "anchor", "members", "n_members", "sites", "width", "ic", "informative",
               "consensus", "influence", "task"]
    rows = [{"motif": m.name, "group": m.extra["group"], "anchor": m.extra["anchor"],
             "members": ",".join(m.extra["members"]), "n_members": len(m.extra["members"]),
             "sites": m.sites, "width": m.width, "ic": round(m.information_content, 3),
             "informative": int((column_information(m.ppm, m.background) >= 0.5).sum()),
             "consensus": m.consensus, "influence": m.extra["influence"], "task": m.extra["task"]} for m in found]
    return pd.DataFrame(rows, columns=columns)
