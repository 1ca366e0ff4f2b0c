"""Variant effects: how each SNV or indel of a VCF changes the predicted binding.

For every ALT allele the reference and alternative windows of the model's
length ``L`` are scored (forward and reverse-complement logits averaged, as
in :func:`~genocnn.prediction.predict`, through the one inference primitive
:func:`~genocnn.inference.predict_logits`). Per task the table gives the two
probabilities, ``diff = p(alt) - p(ref)`` and ``logfc = logit(alt) -
logit(ref)``, the log-odds difference (natural log).

Windows (the indel rule)
------------------------
An allele ``a`` (``REF`` or ``ALT`` as written in the VCF, the padding base
of an indel included) is placed in the middle of its window: its first base
at index ``L // 2 - len(a) // 2``, so an SNV sits at ``L // 2`` as the
centre of a ``predict --bed`` window does. The window is filled on the left
with the genome bases before ``POS`` and on the right with those after the
end of ``REF``, so both windows are exactly ``L`` long, centred on their
allele, and an indel shifts each flank by about half its length (a deletion
pulls more genome in on both sides, an insertion pushes some out). An allele
longer than ``L`` is centre-cropped. Windows that run off a chromosome end
are padded with ``N``. The reference window is always the genome's own
sequence, so when ``REF`` disagrees with the genome (``ref_match`` False)
the effect is that of the ALT allele against the genome's bases.

The null (``null=N``)
---------------------
For each SNV, ``N`` random SNVs of the same class, the same trinucleotide
context (the bases before and after kept, so both dinucleotides are) and the
same ALT base, are drawn from random positions of the genome and scored in
the same window position (the centre). ``pvalue_<task>`` is ``(1 + #{null
|logfc| >= |logfc|}) / (N + 1)``: the chance that a random SNV of that kind
changes the prediction at least as much. It says the effect is unusually
large for a random SNV, not that the site is bound; it is per variant and
task, not corrected for the many variants tested, and cannot go below
``1 / (N + 1)``. The null of a class is drawn once (seeded by ``seed`` and
the class) and shared by all variants of that class, so a variant's
p-value does not depend on the rest of the file. The positions come from a
random sample of the genome (the whole genome when smaller than
``pool_bp``). Indels, MNPs and SNVs next to an ``N`` get no p-value (NaN).
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .encode import one_hot
from .errors import GenocnnError
from .genome import chrom_sizes, fetch, open_genome
from .devices import resolve_device
from .inference import model_device, predict_logits
from .vcf import Record, VcfReader, match_chrom

__all__ = ["QUANTITIES", "Chunk", "SnvNull", "Tally", "allele_windows", "default_batch_size", "effect_columns", "iter_effects",
           "score_pairs", "variant_effects"]

#: Per-task columns, in order: ``ref_<task>``, ``alt_<task>``, ``diff_<task>``, ``logfc_<task>``.
QUANTITIES = ("ref", "alt", "diff", "logfc")
ID_COLUMNS = ["chrom", "pos", "id", "ref", "alt", "ref_match"]
POOL_BP = 2_000_000
_CODES = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    _CODES[ord(_b)] = _CODES[ord(_b.lower())] = _i


def allele_windows(span: str, ref_len: int, alt: str, length: int) -> tuple[str, str, int, int]:
    """Reference and alternative windows of ``length`` around a variant (module docstring's rule).

    Parameters
    ----------
    span : str
        Genome bases ``[start - length, start + ref_len + length)`` (N-padded
        off the chromosome), ``start`` being the variant's 0-based position.
    ref_len : int
        Length of ``REF``.
    alt : str
        The ALT allele.
    length : int
        Window length ``L``.

    Returns
    -------
    (str, str, int, int)
        The two windows, and how many genome bases precede the allele in each.

    Examples
    --------
    >>> span = "AAAAA" + "C" + "GGGGG"
    >>> allele_windows(span, 1, "T", 5)
    ('AACGG', 'AATGG', 2, 2)
    >>> allele_windows("AAAAA" + "CT" + "GGGGG", 2, "C", 5)   # a deletion: the right flank moves in
    ('ACTGG', 'AACGG', 1, 2)
    """
    def place(allele: str) -> tuple[str, int]:
        left = length // 2 - len(allele) // 2
        right = span[length + ref_len :]
        if left < 0:
            return (allele[-left:] + right)[:length], 0
        return (span[length - left : length] + allele + right)[:length], left

    ref_window, ref_left = place(span[length : length + ref_len])
    alt_window, alt_left = place(alt)
    return ref_window, alt_window, ref_left, alt_left


def default_batch_size(model, device=None) -> int:
    """Windows per forward pass: 4096 on a GPU, 128 on the CPU (where larger batches ran slower).

    Examples
    --------
    >>> default_batch_size(torch.nn.Linear(2, 1), "cpu")
    128
    """
    where = resolve_device(device) if device is not None else model_device(model)
    return 128 if where.type == "cpu" else 4096


def score_pairs(model, refs: list[str], alts: list[str], batch_size: int = 1024,
                device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of reference and alternative windows, scored together in large batches.

    Returns
    -------
    (torch.Tensor, torch.Tensor), each shape (N, T), float32, on the CPU
        Strand-averaged logits (eval mode), as :func:`~genocnn.prediction.predict` computes them.
    """
    if not refs:
        empty = torch.zeros(0, model.n_tasks)
        return empty, empty
    logits = predict_logits(model, one_hot(refs + alts, length=model.length), batch_size, device)
    return logits[: len(refs)], logits[len(refs) :]


def effect_columns(ref_logits: torch.Tensor, alt_logits: torch.Tensor, tasks: list[str]) -> dict[str, np.ndarray]:
    """``ref_<task>``, ``alt_<task>`` (probabilities), ``diff_<task>`` and ``logfc_<task>`` for every task.

    Examples
    --------
    >>> cols = effect_columns(torch.tensor([[0.0]]), torch.tensor([[2.0]]), ["bound"])
    >>> {k: round(float(v[0]), 3) for k, v in cols.items()}
    {'ref_bound': 0.5, 'alt_bound': 0.881, 'diff_bound': 0.381, 'logfc_bound': 2.0}
    """
    p_ref, p_alt = torch.sigmoid(ref_logits).numpy(), torch.sigmoid(alt_logits).numpy()
    logfc = (alt_logits - ref_logits).numpy()
    out = {}
    for t, task in enumerate(tasks):
        out |= {f"ref_{task}": p_ref[:, t], f"alt_{task}": p_alt[:, t],
                f"diff_{task}": p_alt[:, t] - p_ref[:, t], f"logfc_{task}": logfc[:, t]}
    return out


class SnvNull:
    """Context-matched random SNVs, scored once per class, giving empirical p-values (module docstring).

    Parameters
    ----------
    model : ConvNet
    fa : pyfaidx.Fasta
        The open genome.
    n : int
        Random SNVs per class.
    seed : int
    pool_bp : int
        Genome bases sampled (in 20 kb blocks) to draw positions from.
    """

    def __init__(self, model, fa, n: int, seed: int = 0, pool_bp: int = POOL_BP, batch_size: int = 1024,
                 device=None):
        self.model, self.fa, self.n, self.seed, self.pool_bp = model, fa, n, seed, pool_bp
        self.batch_size, self.device = batch_size, device
        self.text: str | None = None
        self.sites: dict[int, np.ndarray] = {}
        self.cache: dict[tuple[str, str], np.ndarray | None] = {}

    def _pool(self) -> None:
        """Sample genome blocks (with ``L`` real flanking bases) and index their positions by context."""
        length, sizes = self.model.length, chrom_sizes(self.fa)
        rng = np.random.default_rng([self.seed, 0])
        names, lens = list(sizes), np.array(list(sizes.values()), dtype=np.int64)
        if lens.sum() <= self.pool_bp:
            blocks = [(c, 0, s) for c, s in sizes.items()]
        else:
            block = max(20_000, 10 * length)
            picks = rng.choice(len(names), size=max(1, self.pool_bp // block), p=lens / lens.sum())
            starts = [int(rng.integers(0, max(lens[k] - block, 0) + 1)) for k in picks]
            blocks = [(names[k], a, min(a + block, int(lens[k]))) for k, a in zip(picks, starts)]
        texts = [fetch(self.fa, c, a - length, b + length) for c, a, b in blocks]
        core = np.zeros(sum(map(len, texts)), dtype=bool)
        offset = 0
        for (_, a, b), text in zip(blocks, texts):
            core[offset + length : offset + length + b - a] = True
            offset += len(text)
        self.text = "".join(texts)
        codes = _CODES[np.frombuffer(self.text.encode("ascii", "replace"), dtype=np.uint8)].astype(np.int64)
        ctx = np.full(len(codes), -1)
        ok = core[1:-1] & (codes[:-2] < 4) & (codes[1:-1] < 4) & (codes[2:] < 4)
        ctx[1:-1][ok] = (16 * codes[:-2] + 4 * codes[1:-1] + codes[2:])[ok]
        order = np.argsort(ctx, kind="stable")
        bounds = np.searchsorted(ctx[order], np.arange(65))
        self.sites = {k: order[bounds[k] : bounds[k + 1]] for k in range(64)}

    def null_logfc(self, context: str, alt: str) -> np.ndarray | None:
        """``logfc`` of ``n`` random SNVs ``context[1] -> alt`` in ``context``; shape (n, T), or None if none."""
        key = (context, alt)
        if key not in self.cache:
            if self.text is None:
                self._pool()
            code = int(16 * _CODES[ord(context[0])] + 4 * _CODES[ord(context[1])] + _CODES[ord(context[2])])
            sites = self.sites.get(code, np.zeros(0, dtype=np.int64))
            if not len(sites):
                self.cache[key] = None
                return None
            rng = np.random.default_rng([self.seed, 1, code, "ACGT".index(alt)])
            picks = rng.choice(sites, size=self.n, replace=len(sites) < self.n)
            half, length = self.model.length // 2, self.model.length
            refs = [self.text[i - half : i - half + length] for i in picks]
            alts = [w[:half] + alt + w[half + 1 :] for w in refs]
            ref_logits, alt_logits = score_pairs(self.model, refs, alts, self.batch_size, self.device)
            self.cache[key] = (alt_logits - ref_logits).abs().numpy()
        return self.cache[key]

    def pvalues(self, contexts: list[str | None], alts: list[str], logfc: np.ndarray) -> np.ndarray:
        """Empirical p-values, shape (N, T): NaN where ``contexts[i]`` is None or has no null."""
        out = np.full(logfc.shape, np.nan)
        for i, (context, alt) in enumerate(zip(contexts, alts)):
            null = None if context is None else self.null_logfc(context, alt.upper())
            if null is not None:
                out[i] = (1 + (null >= np.abs(logfc[i])[None, :]).sum(axis=0)) / (self.n + 1)
        return out


@dataclass
class Tally:
    """What reading and matching found: skipped alleles by reason, REF mismatches, renamed chromosomes."""

    vcf: str
    genome: str
    skipped: Counter = field(default_factory=Counter)
    scored: int = 0
    mismatches: int = 0
    first_mismatch: str = ""
    renamed: dict[str, str] = field(default_factory=dict)

    def notes(self, skip_ref_mismatch: bool) -> list[str]:
        """Lines for the user: chromosome renaming and REF mismatches."""
        notes = []
        if self.renamed:
            pairs = ", ".join(f"{a} -> {b}" for a, b in itertools.islice(self.renamed.items(), 3))
            notes.append(f"{self.vcf}: chromosome names matched to {self.genome} by a 'chr' prefix ({pairs})")
        if self.mismatches:
            what = ("skipped" if skip_ref_mismatch else
                    "scored against the genome's bases (ref_match False; `skip_ref_mismatch` skips them)")
            notes.append(f"{self.vcf}: REF differs from {self.genome} for {self.mismatches} allele(s) "
                         f"(first: {self.first_mismatch}); {what}")
        return notes


class Chunk(NamedTuple):
    """A block of records and the effects of their scored alleles (rows in record order)."""

    records: list[Record]
    table: pd.DataFrame
    keys: list[tuple[int, int]]  #: per row: (index into ``records``, ALT index within the record)
    refs: list[str]  #: reference windows, per row
    alts: list[str]  #: alternative windows, per row
    lefts: list[tuple[int, int]]  #: genome bases before the allele in the two windows, per row


def _batches(reader: VcfReader, size: int) -> Iterator[list[Record]]:
    block, n = [], 0
    for record in reader:
        block.append(record)
        n += len(record.alleles)
        if n >= size:
            yield block
            block, n = [], 0
    if block:
        yield block


def _same(ref: str, genome: str) -> bool:
    """REF equals the genome's bases, ignoring case; an N in REF matches any base."""
    return len(ref) == len(genome) and all(a in ("N", b) for a, b in zip(ref.upper(), genome.upper()))


def iter_effects(model, reader: VcfReader, fa, tally: Tally, null: int = 0, skip_ref_mismatch: bool = False,
                 batch_size: int | None = None, device=None, seed: int = 0, progress: bool = False,
                 pool_bp: int = POOL_BP) -> Iterator[Chunk]:
    """Score a VCF's alleles block by block (bounded memory); see :func:`variant_effects`.

    Yields
    ------
    Chunk
        About ``4 * batch_size`` alleles at a time.
    """
    length, sizes = model.length, chrom_sizes(fa)
    batch_size = batch_size or default_batch_size(model, device)
    snv_null = SnvNull(model, fa, null, seed, pool_bp, batch_size, device) if null else None
    with tqdm(desc="variants", unit="record", disable=None if progress else True, leave=False) as bar:
        for records in _batches(reader, 4 * batch_size):
            rows, keys, refs, alts, lefts, contexts = [], [], [], [], [], []
            for r, record in enumerate(records):
                for allele in record.alleles:
                    where = f"{reader.path}: line {allele.line}"
                    chrom = match_chrom(allele.chrom, sizes)
                    if chrom is None:
                        raise GenocnnError(f"{where}: chromosome {allele.chrom!r} is not in {tally.genome} "
                                           "(nor with a 'chr' prefix added or removed)")
                    if chrom != allele.chrom:
                        tally.renamed.setdefault(allele.chrom, chrom)
                    start, ref_len = allele.pos - 1, len(allele.ref)
                    if start + ref_len > sizes[chrom]:
                        raise GenocnnError(f"{where}: {allele.chrom}:{allele.pos} {allele.ref} runs past the end "
                                           f"of {chrom} ({sizes[chrom]} bp) in {tally.genome}")
                    span = fetch(fa, chrom, start - length, start + ref_len + length)
                    genome_ref = span[length : length + ref_len]
                    match = _same(allele.ref, genome_ref)
                    if not match:
                        tally.mismatches += 1
                        tally.first_mismatch = tally.first_mismatch or (
                            f"line {allele.line}, REF {allele.ref[:10]}, genome {genome_ref[:10].upper()}")
                        if skip_ref_mismatch:
                            tally.skipped["REF mismatch"] += 1
                            continue
                    ref_w, alt_w, ref_left, alt_left = allele_windows(span, ref_len, allele.alt.upper(), length)
                    snv = ref_len == len(allele.alt) == 1
                    contexts.append(span[length - 1 : length + 2].upper() if snv else None)
                    rows.append((allele.chrom, allele.pos, allele.id, allele.ref, allele.alt, match))
                    keys.append((r, allele.alt_index))
                    refs.append(ref_w)
                    alts.append(alt_w)
                    lefts.append((ref_left, alt_left))
            ref_logits, alt_logits = score_pairs(model, refs, alts, batch_size, device)
            table = pd.DataFrame(rows, columns=ID_COLUMNS).astype({"pos": "int64", "ref_match": bool})
            for name, values in effect_columns(ref_logits, alt_logits, model.tasks).items():
                table[name] = values
            if snv_null is not None:
                contexts = [c if c is not None and set(c) <= set("ACGT") else None for c in contexts]
                pvalues = snv_null.pvalues(contexts, list(table["alt"]), (alt_logits - ref_logits).numpy())
                for t, task in enumerate(model.tasks):
                    table[f"pvalue_{task}"] = pvalues[:, t]
            tally.scored += len(table)
            bar.update(len(records))
            yield Chunk(records, table, keys, refs, alts, lefts)


def empty_table(tasks: list[str], null: int = 0) -> pd.DataFrame:
    """The effects table with no rows: its columns, in order."""
    columns = ID_COLUMNS + [f"{q}_{t}" for t in tasks for q in QUANTITIES]
    return pd.DataFrame(columns=columns + ([f"pvalue_{t}" for t in tasks] if null else []))


def variant_effects(
    model,
    vcf: str | os.PathLike,
    genome: str | os.PathLike,
    null: int = 0,
    skip_ref_mismatch: bool = False,
    batch_size: int | None = None,
    device=None,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Effects of every ALT allele of a VCF on the predicted binding of every task.

    Parameters
    ----------
    model : ConvNet
        From :func:`genocnn.load_model`.
    vcf : path
        VCF, plain or gzip/bgzip (rules in :mod:`genocnn.vcf`).
    genome : path
        Indexed (or indexable) genome FASTA, plain or bgzip (:func:`~genocnn.genome.open_genome`).
    null : int
        Random context-matched SNVs per substitution class for ``pvalue_<task>`` (0: no p-values).
    skip_ref_mismatch : bool
        Drop alleles whose REF differs from the genome (default: score them from the genome's bases).
    batch_size : int, optional
        Windows per forward pass; default :func:`default_batch_size` (large on a GPU).
    device : optional
        Where to run (default: where the model is).
    seed : int
        Seed of the null.
    progress : bool
        Progress bar (records) on a terminal.

    Returns
    -------
    pandas.DataFrame
        One row per scored ALT allele, in file order: ``chrom``, ``pos``
        (1-based, as in the VCF), ``id``, ``ref``, ``alt``, ``ref_match``,
        then per task ``ref_<task>``, ``alt_<task>`` (probabilities),
        ``diff_<task>``, ``logfc_<task>`` (and ``pvalue_<task>`` with ``null``).
        ``attrs["skipped"]`` counts skipped alleles by reason,
        ``attrs["notes"]`` has lines for the user.
    """
    with open_genome(genome) as fa, VcfReader(vcf) as reader:
        tally = Tally(str(vcf), str(genome))
        chunks = [c.table for c in iter_effects(model, reader, fa, tally, null, skip_ref_mismatch, batch_size,
                                                device, seed, progress)]
        tally.skipped.update(reader.skipped)
    table = pd.concat(chunks, ignore_index=True) if chunks else empty_table(model.tasks, null)
    table.attrs["skipped"] = dict(tally.skipped)
    table.attrs["notes"] = tally.notes(skip_ref_mismatch)
    return table
