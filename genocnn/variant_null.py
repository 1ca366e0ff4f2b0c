"""Scoring REF/ALT window pairs, and the context-matched random-SNV null of ``genocnn variants``.

The null's rule is described in :mod:`genocnn.variants` ("The null").
"""

from __future__ import annotations

import numpy as np
import torch

from .devices import resolve_device
from .encode import MIN_BASE_FRACTION, one_hot
from .fasta import DNA_LETTERS
from .genome import chrom_sizes, fetch
from .inference import model_device, predict_logits

__all__ = ["POOL_BP", "SnvNull", "default_batch_size", "score_pairs"]

POOL_BP = 2_000_000
_CODES = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    _CODES[ord(_b)] = _CODES[ord(_b.lower())] = _i
_DNA_BYTE = np.zeros(256, dtype=bool)  #: bytes :func:`~genocnn.fasta.dna_problem` accepts
_DNA_BYTE[[ord(c) for c in DNA_LETTERS]] = True


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
        raw = np.frombuffer(self.text.encode("ascii", "replace"), dtype=np.uint8)
        codes = _CODES[raw].astype(np.int64)
        core &= _usable_windows(codes < 4, _DNA_BYTE[raw], length)
        ctx = np.full(len(codes), -1)
        ok = core[1:-1] & (codes[:-2] < 4) & (codes[1:-1] < 4) & (codes[2:] < 4)
        ctx[1:-1][ok] = (16 * codes[:-2] + 4 * codes[1:-1] + codes[2:])[ok]
        order = np.argsort(ctx, kind="stable")
        bounds = np.searchsorted(ctx[order], np.arange(65))
        self.sites = {k: order[bounds[k] : bounds[k + 1]] for k in range(64)}

    def null_logfc(self, context: str, alt: str) -> np.ndarray | None:
        """``logfc`` of ``n`` random SNVs ``context[1] -> alt`` in ``context``; shape (n, T), or None if none."""
        key = (context, alt)
        if alt not in ("A", "C", "G", "T"):  # an ALT N (or IUPAC code): no null of that kind
            return None
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
        """Empirical p-values, shape (N, T): NaN where ``contexts[i]`` is None or has no null (an ALT ``N``)."""
        out = np.full(logfc.shape, np.nan)
        for i, (context, alt) in enumerate(zip(contexts, alts)):
            null = None if context is None else self.null_logfc(context, alt.upper())
            if null is not None:
                out[i] = (1 + (null >= np.abs(logfc[i])[None, :]).sum(axis=0)) / (self.n + 1)
        return out


def _usable_windows(is_base: np.ndarray, is_dna: np.ndarray, length: int) -> np.ndarray:
    """Per position ``i``: whether ``[i - length // 2, i - length // 2 + length)`` is all DNA and mostly bases.

    Positions whose window runs off the text are False.

    Examples
    --------
    >>> text = np.frombuffer(b"ACGTNNNNNA*GTACG", dtype=np.uint8)
    >>> is_base = np.isin(text, list(b"ACGT"))
    >>> _usable_windows(is_base, _DNA_BYTE[text], 4).astype(int)
    array([0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0])
    """
    n, half = len(is_base), length // 2
    if n < length:
        return np.zeros(n, dtype=bool)
    bases = np.concatenate([[0], np.cumsum(is_base, dtype=np.int64)])
    bad = np.concatenate([[0], np.cumsum(~is_dna, dtype=np.int64)])
    starts = np.arange(n) - half
    inside = (starts >= 0) & (starts + length <= n)
    starts = np.clip(starts, 0, n - length)
    return (inside & (bases[starts + length] - bases[starts] >= MIN_BASE_FRACTION * length)
            & (bad[starts + length] == bad[starts]))
