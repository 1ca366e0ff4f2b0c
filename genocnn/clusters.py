"""Distinct motifs: one full-length motif per group of filters that learned the same motif.

A network's first layer learns a motif several times over: shifted pieces,
reverse complements, pieces of different lengths (the CTCF demo gives a dozen
10-15 bp pieces of CTCF). :func:`distinct_motifs` turns them into one motif
per group:

1. group the filter motifs that match each other by Tomtom
   (:func:`~genocnn.compare.cluster_motifs`, or given labels);
2. take the group's most influential filter as its anchor and place every
   member in the anchor's frame by Tomtom's offset and strand, along the
   group's strongest links (a spanning tree grown from the anchor, so members
   linked to the anchor only through another member are placed through it);
3. collect every member's activating windows in the sequences (activation
   above ``threshold`` times the filter's maximum, as
   :func:`~genocnn.motifs.filter_site_counts`), map each into the anchor's
   frame (reverse complemented for members on the other strand), widen it to
   the span of all members plus ``flank`` bases each side, and count each
   site once (sites of several members at the same sequence, strand and
   anchored position, within ``merge`` bases, are one site);
4. count bases into a PFM and trim flanks under ``min_ic`` bits
   (:func:`~genocnn.pwm.trim`).

Groups are ranked by their influence, the mean drop of the prediction when
all their filters are nullified at once (:func:`group_influence`), and named
``cluster_<rank>`` (``cluster_1`` the most influential).

Why site-based group motifs: the motif is read from the sequences, not
averaged from filters, so it is as long as the sites are (CTCF's core, not
10-15 bp pieces), and the ranking is the model's own (nullifying the group);
it needs no attribution pass (in-silico mutagenesis costs 3 L forward passes
per sequence). The measured comparison with the seqlet motifs of attribution
maps (:func:`~genocnn.seqlets.attribution_motifs`) is what ``bench/distinct.py``
prints; it has not been run over the benchmark set yet.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from .compare import cluster_motifs
from .encode import reverse_complement
from .inference import encode_for, evaluating
from .motifs import group_nullification
from .pwm import Motif, column_information, trim

__all__ = ["DistinctMotifs", "distinct_motifs", "group_influence", "member_placements"]


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

    Each group is a list of members ``(column of filters, a, s)``: filter
    column ``c`` faces frame column ``a + s c``. A member's window at ``p``
    puts frame column 0 at ``origin = p - s a`` on strand ``s``, and its window
    at ``p`` of the reverse complement at ``origin = L - 1 - p + s a`` on
    strand ``-s`` (frame column ``u`` is sequence position ``origin + strand
    u``, complemented on strand -1). Activations are divided by each filter's
    maximum over both strands of ``x``. ``vote``: members' activations are
    summed per (sequence, origin, strand), and sums above ``threshold``
    times the group's largest are kept; otherwise every member window above
    ``threshold`` is kept.

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


def _windows(x: np.ndarray, sites: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """One-hot windows of frame columns ``lo .. hi - 1`` of ``sites`` (rows ``sequence, origin, strand, ...``).

    Frame column ``u`` of a site is sequence position ``origin + u`` on the
    ``+`` strand (``strand = 1``) and the complement of ``origin - u`` on the
    ``-`` strand; positions outside the sequence are all-zero.

    Returns
    -------
    np.ndarray, shape (S, hi - lo, 4), float32
    """
    u = np.arange(lo, hi)
    n, origin, strand = sites[:, 0].astype(np.int64), sites[:, 1].astype(np.int64), sites[:, 2].astype(np.int64)
    pos = origin[:, None] + strand[:, None] * u[None, :]  # (S, W)
    inside = (pos >= 0) & (pos < x.shape[2])
    windows = x[n[:, None], :, np.clip(pos, 0, x.shape[2] - 1)] * inside[..., None]  # (S, W, 4)
    return np.where((strand == -1)[:, None, None], windows[..., ::-1], windows)  # complement


def _count_sites(x: np.ndarray, sites: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Base counts of frame columns ``lo .. hi - 1`` over ``sites``: shape (4, hi - lo), float64."""
    return _windows(x, sites, lo, hi).sum(axis=0, dtype=np.float64).T


def _ppm(counts: np.ndarray, pseudocount: float) -> np.ndarray:
    """Counts (4, w) -> probabilities with a uniform pseudocount, shape (4, w)."""
    return (counts + pseudocount / 4) / (counts.sum(axis=0, keepdims=True) + pseudocount)


def _realign(x: np.ndarray, sites: np.ndarray, lo: int, hi: int, counts: np.ndarray, shift: int,
             pseudocount: float) -> np.ndarray:
    """Move each site to the strand and shift (up to ``shift`` bases) that best match ``counts``.

    Each site is scored by the log-odds PWM of ``counts`` (4, hi - lo) over the
    same stretch of sequence read on either strand, moved by ``-shift ..
    shift`` bases; ties keep the site where it is. Returns the moved rows.
    """
    pwm = np.log2(_ppm(counts, pseudocount) * 4).T.astype(np.float32)  # (W, 4)
    moves = [(0, False)] + [(d, flip) for flip in (False, True) for d in range(-shift, shift + 1)
                            if (d, flip) != (0, False)]
    out = sites.copy()
    for start in range(0, len(sites), 4096):
        chunk = sites[start : start + 4096]
        best, choice = np.full(len(chunk), -np.inf), np.zeros(len(chunk), dtype=np.int64)
        candidates = []
        for m, (d, flip) in enumerate(moves):
            cand = chunk.copy()
            if flip:  # the same stretch of sequence, read on the other strand
                cand[:, 1] += cand[:, 2] * (lo + hi - 1)
                cand[:, 2] *= -1
            cand[:, 1] += d
            score = np.einsum("swb,wb->s", _windows(x, cand, lo, hi), pwm)
            better = score > best
            best[better], choice[better] = score[better], m
            candidates.append(cand)
        out[start : start + len(chunk)] = np.stack(candidates)[choice, np.arange(len(chunk))]
    return out


def distinct_motifs(
    model,
    x,
    motifs: Sequence[Motif],
    clusters: Sequence[int] | None = None,
    threshold: float = 0.5,
    flank: int = 5,
    merge: int = 1,
    vote: bool = True,
    realign: int = 2,
    shift: int = 3,
    min_ic: float = 0.3,
    p_value: float = 1e-4,
    pseudocount: float = 1.0,
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
    threshold : float
        Activations are divided by each filter's maximum over both strands
        of ``x``. With ``vote``, the members' activations are summed per
        anchored site and sites above ``threshold`` times the group's largest
        sum are kept; without, every member window above ``threshold``.
    flank : int
        Bases added each side of the group's span before trimming.
    merge : int
        Sites of one sequence whose centres (either strand) are at most this
        many bases apart are counted once, the best scoring one.
    vote : bool
        Sum the members' activations per site (True) or take the union of
        their windows (False).
    realign : int
        Rounds of realignment: every site moves to the strand and shift (up
        to ``shift`` bases) that best match the group's motif so far
        (0: keep the Tomtom placements).
    shift : int
    min_ic : float
        Flanking columns under this many bits are trimmed.
    p_value : float
        Tomtom link for :func:`~genocnn.compare.cluster_motifs`.
    pseudocount : float
        Of the returned motifs.
    batch_size : int

    Returns
    -------
    DistinctMotifs
        ``motifs``: ``cluster_1``, ``cluster_2``, ... by decreasing group
        influence, PFM shape (4, w); ``sites`` is the number of distinct
        sites, ``extra`` holds ``members`` (filter motif names, anchor
        first), ``filters``, ``anchor``, ``sites``, ``influence``, ``group``
        (the cluster label), ``placements`` ({member: (column, strand)}: the
        motif column facing the filter's column 0, and +1 or -1) and
        ``trim_offset``. ``table``: one row per motif with ``motif, group,
        anchor, members, n_members, sites, width, ic, informative`` (columns
        >= 0.5 bit), ``consensus, influence``. Groups without any site above
        the threshold are left out.
    """
    x = encode_for(model, x)
    motifs = list(motifs)
    if not motifs:
        return DistinctMotifs([], _table([]))
    shown = [m if "trim_offset" in m.extra else trim(m, min_ic) for m in motifs]
    labels = np.asarray(cluster_motifs(shown, p_value) if clusters is None else clusters)
    if len(labels) != len(motifs):
        raise ValueError(f"{len(labels)} cluster labels for {len(motifs)} motifs")
    groups = [np.flatnonzero(labels == g) for g in dict.fromkeys(labels.tolist())]
    filters = [int(m.extra["filter"]) for m in motifs]
    sets = [(f,) for f in filters] + [tuple(filters[i] for i in g) for g in groups if len(g) > 1]
    unique = list(dict.fromkeys(sets))
    influence = dict(zip(unique, group_influence(model, x, unique, batch_size=batch_size)))
    single = [influence[(f,)] for f in filters]
    total = [influence[tuple(filters[i] for i in g)] for g in groups]
    k = model.first_conv.kernel_size[0]
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
    xs = x.numpy()
    found = []
    for g, (members, layout, sites) in enumerate(zip(ordered, layouts, candidates)):
        span = [c for _, a, s in layout for c in (a, a + s * (k - 1))]
        lo, hi = min(span) - flank, max(span) + 1 + flank
        sites = _dedupe(sites, merge, lo + hi - 1)
        if not len(sites):
            continue
        for _ in range(realign):  # every site to the strand and shift that best match the motif so far
            sites = _dedupe(_realign(xs, sites, lo, hi, _count_sites(xs, sites, lo, hi), shift, pseudocount),
                            merge, lo + hi - 1)
        full = trim(Motif("group", _count_sites(xs, sites, lo, hi), len(sites), pseudocount=pseudocount), min_ic)
        cut = lo + full.extra["trim_offset"]
        names = [motifs[i].name for i in members]
        full.extra.update({
            "members": names, "filters": [filters[i] for i in members], "anchor": names[0],
            "sites": len(sites), "influence": float(total[g]), "group": int(labels[members[0]]),
            "placements": {nm: (int(a - cut), int(s)) for nm, (_, a, s) in zip(names, layout)},
        })
        found.append(full)
    found.sort(key=lambda m: -m.extra["influence"])
    for rank, m in enumerate(found, 1):
        m.name = f"cluster_{rank}"
    return DistinctMotifs(found, _table(found))


def _table(found: list[Motif]) -> pd.DataFrame:
    """One row per distinct motif (columns as documented in :func:`distinct_motifs`)."""
    columns = ["motif", "group", "anchor", "members", "n_members", "sites", "width", "ic", "informative",
               "consensus", "influence"]
    rows = [{"motif": m.name, "group": m.extra["group"], "anchor": m.extra["anchor"],
             "members": ",".join(m.extra["members"]), "n_members": len(m.extra["members"]),
             "sites": m.sites, "width": m.width, "ic": round(m.information_content, 3),
             "informative": int((column_information(m.ppm, m.background) >= 0.5).sum()),
             "consensus": m.consensus, "influence": m.extra["influence"]} for m in found]
    return pd.DataFrame(rows, columns=columns)
