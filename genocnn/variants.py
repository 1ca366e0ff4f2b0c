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

The genome bases a variant's windows use must be DNA (A/C/G/T, N and the
IUPAC codes, either case, as :func:`~genocnn.fasta.dna_problem` checks, as
``scan`` requires): any other character stops with an error naming the
genome, the chromosome and the position. A variant whose reference or
alternative window is less than :data:`~genocnn.encode.MIN_BASE_FRACTION`
A/C/G/T (N gaps, chromosome ends, an ALT of Ns) is not scored, as ``scan``
does not score such windows: its row has ``mostly_n`` True and empty (NaN)
scores and p-values.

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
``pool_bp``); a position is drawn only if its window holds no character
outside DNA and is at least ``MIN_BASE_FRACTION`` A/C/G/T. Indels, MNPs,
SNVs next to an ``N``, SNVs to a base other than A/C/G/T (an ALT ``N``:
scored, with no null to compare it with) and rows not scored (``mostly_n``)
get no p-value (NaN).
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

from .encode import MIN_BASE_FRACTION, base_fraction
from .errors import GenocnnError, check_count
from .fasta import DNA_LETTERS, dna_problem
from .genome import chrom_sizes, fetch, open_genome
from .variant_null import POOL_BP, SnvNull, default_batch_size, score_pairs
from .vcf import Record, VcfReader, match_chrom

__all__ = ["QUANTITIES", "Chunk", "SnvNull", "Tally", "allele_windows", "default_batch_size", "effect_columns",
           "genome_range", "is_mostly_n", "iter_effects", "score_pairs", "variant_effects"]

#: Per-task columns, in order: ``ref_<task>``, ``alt_<task>``, ``diff_<task>``, ``logfc_<task>``.
QUANTITIES = ("ref", "alt", "diff", "logfc")
ID_COLUMNS = ["chrom", "pos", "id", "ref", "alt", "ref_match", "mostly_n"]


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


def genome_range(ref_len: int, alt_len: int, length: int, ref_left: int, alt_left: int) -> tuple[int, int]:
    """The slice of the span of :func:`allele_windows` whose genome bases the two windows use.

    Parameters
    ----------
    ref_len, alt_len : int
        Lengths of ``REF`` and ``ALT``.
    length : int
        Window length ``L``.
    ref_left, alt_left : int
        Genome bases before the allele in each window (from :func:`allele_windows`).

    Returns
    -------
    (int, int)
        ``lo, hi``: ``span[lo:hi]`` holds every genome base of both windows
        (and ``REF``'s own bases in between).

    Examples
    --------
    >>> genome_range(1, 1, 5, 2, 2)        # an SNV: the 5 bases around it
    (3, 8)
    >>> genome_range(2, 1, 5, 1, 2)        # a deletion pulls one more base in on the left
    (3, 9)
    """
    right = max(length - (length // 2 - ref_len // 2) - ref_len, length - (length // 2 - alt_len // 2) - alt_len, 0)
    return length - max(ref_left, alt_left), length + ref_len + right


def is_mostly_n(*windows: str) -> bool:
    """Whether any window is less than :data:`~genocnn.encode.MIN_BASE_FRACTION` A/C/G/T (not scored).

    Examples
    --------
    >>> is_mostly_n("ACGTN", "ACNNN"), is_mostly_n("ACGTN", "ACGNN"), is_mostly_n("NNNNN")
    (True, False, True)
    """
    return any(base_fraction(w, len(w)) < MIN_BASE_FRACTION for w in windows)


def _check_genome_text(span: str, lo: int, hi: int, start: int, length: int, chrom: str, genome: str,
                       where: str) -> None:
    """Refuse non-DNA characters in ``span[lo:hi]`` (the span starts at 0-based ``start - length``)."""
    problem = dna_problem(span[lo:hi])
    if problem is None:
        return
    first = next(i for i in range(lo, hi) if span[i] not in DNA_LETTERS)
    raise GenocnnError(f"{genome}: chromosome {chrom!r} at position {start - length + first + 1} {problem} "
                       f"(in the window of the variant of {where})")


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


@dataclass
class Tally:
    """What reading and matching found: skipped alleles by reason, REF mismatches, renamed chromosomes, mostly-N rows."""

    vcf: str
    genome: str
    skipped: Counter = field(default_factory=Counter)
    scored: int = 0  #: alleles scored (rows not ``mostly_n``)
    mismatches: int = 0
    first_mismatch: str = ""
    renamed: dict[str, str] = field(default_factory=dict)
    mostly_n: int = 0  #: rows not scored: a window less than MIN_BASE_FRACTION A/C/G/T

    def notes(self, skip_ref_mismatch: bool) -> list[str]:
        """Lines for the user: chromosome renaming, REF mismatches and alleles not scored (mostly N)."""
        notes = []
        if self.renamed:
            pairs = ", ".join(f"{a} -> {b}" for a, b in itertools.islice(self.renamed.items(), 3))
            notes.append(f"{self.vcf}: chromosome names matched to {self.genome} by a 'chr' prefix ({pairs})")
        if self.mismatches:
            what = ("skipped" if skip_ref_mismatch else
                    "scored against the genome's bases (ref_match False; `skip_ref_mismatch` skips them)")
            notes.append(f"{self.vcf}: REF differs from {self.genome} for {self.mismatches} allele(s) "
                         f"(first: {self.first_mismatch}); {what}")
        if self.mostly_n:
            notes.append(f"{self.vcf}: {self.mostly_n} allele(s) not scored: their REF or ALT window is less than "
                         f"{MIN_BASE_FRACTION:.0%} A/C/G/T in {self.genome} (column mostly_n; scores left empty)")
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


def _score_unmasked(model, refs: list[str], alts: list[str], masked: list[bool], batch_size: int,
                    device) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`score_pairs` of the rows not ``masked``; masked rows get NaN logits."""
    keep = [i for i, m in enumerate(masked) if not m]
    ref_logits, alt_logits = score_pairs(model, [refs[i] for i in keep], [alts[i] for i in keep], batch_size, device)
    if len(keep) == len(refs):
        return ref_logits, alt_logits
    full_ref, full_alt = (torch.full((len(refs), model.n_tasks), float("nan")) for _ in range(2))
    full_ref[keep], full_alt[keep] = ref_logits, alt_logits
    return full_ref, full_alt


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
            rows, keys, refs, alts, lefts, contexts, masked = [], [], [], [], [], [], []
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
                    ref_w, alt_w, ref_left, alt_left = allele_windows(span, ref_len, allele.alt.upper(), length)
                    lo, hi = genome_range(ref_len, len(allele.alt), length, ref_left, alt_left)
                    _check_genome_text(span, lo, hi, start, length, chrom, tally.genome, where)
                    genome_ref = span[length : length + ref_len]
                    match = _same(allele.ref, genome_ref)
                    if not match:
                        tally.mismatches += 1
                        tally.first_mismatch = tally.first_mismatch or (
                            f"line {allele.line}, REF {allele.ref[:10]}, genome {genome_ref[:10].upper()}")
                        if skip_ref_mismatch:
                            tally.skipped["REF mismatch"] += 1
                            continue
                    mostly_n = is_mostly_n(ref_w, alt_w)
                    snv = ref_len == len(allele.alt) == 1 and not mostly_n
                    contexts.append(span[length - 1 : length + 2].upper() if snv else None)
                    masked.append(mostly_n)
                    rows.append((allele.chrom, allele.pos, allele.id, allele.ref, allele.alt, match, mostly_n))
                    keys.append((r, allele.alt_index))
                    refs.append(ref_w)
                    alts.append(alt_w)
                    lefts.append((ref_left, alt_left))
            ref_logits, alt_logits = _score_unmasked(model, refs, alts, masked, batch_size, device)
            table = pd.DataFrame(rows, columns=ID_COLUMNS).astype({"pos": "int64", "ref_match": bool,
                                                                    "mostly_n": bool})
            for name, values in effect_columns(ref_logits, alt_logits, model.tasks).items():
                table[name] = values
            if snv_null is not None:
                contexts = [c if c is not None and set(c) <= set("ACGT") else None for c in contexts]
                pvalues = snv_null.pvalues(contexts, list(table["alt"]), (alt_logits - ref_logits).numpy())
                for t, task in enumerate(model.tasks):
                    table[f"pvalue_{task}"] = pvalues[:, t]
            tally.mostly_n += sum(masked)
            tally.scored += len(table) - sum(masked)
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
        One row per ALT allele (not skipped), in file order: ``chrom``, ``pos``
        (1-based, as in the VCF), ``id``, ``ref``, ``alt``, ``ref_match``,
        ``mostly_n`` (True: a window less than
        :data:`~genocnn.encode.MIN_BASE_FRACTION` A/C/G/T, not scored, its
        scores NaN), then per task ``ref_<task>``, ``alt_<task>``
        (probabilities), ``diff_<task>``, ``logfc_<task>`` (and
        ``pvalue_<task>`` with ``null``; NaN for indels, MNPs, SNVs next to
        an ``N`` or to an ALT other than A/C/G/T).
        ``attrs["skipped"]`` counts skipped alleles by reason,
        ``attrs["notes"]`` has lines for the user.

    Raises
    ------
    GenocnnError
        A bad VCF (naming the file and line), a chromosome the genome lacks,
        or a character that is not DNA in the genome bases of a window
        (naming the genome, the chromosome and the position).
    """
    check_count("batch_size", batch_size)
    check_count("null", null, 0)
    with open_genome(genome) as fa, VcfReader(vcf) as reader:
        tally = Tally(str(vcf), str(genome))
        chunks = [c.table for c in iter_effects(model, reader, fa, tally, null, skip_ref_mismatch, batch_size,
                                                device, seed, progress)]
        tally.skipped.update(reader.skipped)
    table = pd.concat(chunks, ignore_index=True) if chunks else empty_table(model.tasks, null)
    table.attrs["skipped"] = dict(tally.skipped)
    table.attrs["notes"] = tally.notes(skip_ref_mismatch)
    return table
