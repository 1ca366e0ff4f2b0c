"""First-layer filters -> motifs: PFM, PPM, PWM, information content.

For each first-layer filter, the input windows where its activation exceeds a
fraction (default 0.5) of its maximum over the given sequences are stacked and
their bases counted (the Basset / Koo & Eddy procedure). Counts form the PFM;
pseudocounts give the PPM and the log-odds PWM against the background.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from .encode import one_hot
from .predict import iter_records

ALPHABET = "ACGT"
UNIFORM_BACKGROUND = (0.25, 0.25, 0.25, 0.25)


@dataclass
class Motif:
    """A DNA motif held as a position frequency matrix.

    Parameters
    ----------
    name : str
        Identifier written to motif files (no whitespace), e.g. ``"filter_3"``.
    pfm : np.ndarray, shape (4, w), float64
        Base counts per position in A, C, G, T order. Fractional counts are
        allowed (ambiguous bases contribute fractions).
    sites : int
        Number of sequence windows the counts come from (``nsites``).
    background : tuple of 4 float
        Background base frequencies used for the PWM and information content.
    pseudocount : float
        Total pseudocount added to each column, split by the background
        frequencies, before normalising to probabilities.
    description : str
        Free text (e.g. the best JASPAR match), written where formats allow.
    """

    name: str
    pfm: np.ndarray
    sites: int = 0
    background: tuple[float, float, float, float] = UNIFORM_BACKGROUND
    pseudocount: float = 1.0
    description: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pfm = np.asarray(self.pfm, dtype=np.float64)
        if self.pfm.ndim != 2 or self.pfm.shape[0] != 4:
            raise ValueError(f"pfm must have shape (4, w), got {self.pfm.shape}")

    @property
    def width(self) -> int:
        """Number of positions ``w``."""
        return int(self.pfm.shape[1])

    @property
    def ppm(self) -> np.ndarray:
        """Position probability matrix, shape (4, w); columns sum to 1."""
        counts = self.pfm + self.pseudocount * np.asarray(self.background)[:, None]
        return counts / counts.sum(axis=0, keepdims=True)

    @property
    def pwm(self) -> np.ndarray:
        """Log2-odds position weight matrix against the background, shape (4, w)."""
        return np.log2(self.ppm / np.asarray(self.background)[:, None])

    @property
    def information_content(self) -> float:
        """Total information content in bits (relative entropy to the background)."""
        return float(column_information(self.ppm, self.background).sum())

    @property
    def consensus(self) -> str:
        """Most likely base per position; lowercase where it has under 0.5 probability."""
        ppm = self.ppm
        best = ppm.argmax(axis=0)
        return "".join(
            ALPHABET[b] if ppm[b, j] >= 0.5 else ALPHABET[b].lower() for j, b in enumerate(best)
        )


def column_information(ppm: np.ndarray, background=UNIFORM_BACKGROUND) -> np.ndarray:
    """Information content per column in bits.

    Parameters
    ----------
    ppm : np.ndarray, shape (4, w)
        Probabilities; columns sum to 1.
    background : sequence of 4 float
        Background frequencies.

    Returns
    -------
    np.ndarray, shape (w,)
        Relative entropy of each column to the background.
    """
    bg = np.asarray(background, dtype=np.float64)[:, None]
    p = np.clip(ppm, 1e-12, 1.0)
    return (ppm * np.log2(p / bg)).sum(axis=0)


def trim(motif: Motif, min_ic: float = 0.3) -> Motif:
    """Drop flanking columns whose information content is below ``min_ic`` bits.

    Filters are wider than most motifs; their uninformative flanks otherwise
    make Tomtom report spurious matches. At least one column is kept.
    ``extra["trim_offset"]`` records how many columns were cut on the left.

    Examples
    --------
    >>> m = Motif("m", np.array([[5, 20, 0], [5, 0, 0], [5, 0, 20], [5, 0, 0]]), sites=20)
    >>> trim(m).consensus
    'AG'
    """
    ic = column_information(motif.ppm, motif.background)
    keep = np.flatnonzero(ic >= min_ic)
    start, stop = (int(keep[0]), int(keep[-1]) + 1) if len(keep) else (int(ic.argmax()), int(ic.argmax()) + 1)
    return Motif(
        motif.name,
        motif.pfm[:, start:stop],
        motif.sites,
        motif.background,
        motif.pseudocount,
        motif.description,
        {**motif.extra, "trim_offset": start},
    )


class MotifList(list):
    """A list of :class:`Motif` with ``skipped``: {filter index: sites} for filters left out."""

    skipped: dict[int, int]

    def __init__(self, motifs=(), skipped: dict[int, int] | None = None) -> None:
        super().__init__(motifs)
        self.skipped = dict(skipped or {})


def filter_site_counts(
    model, x, threshold: float = 0.5, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Count bases of the windows that activate each first-layer filter.

    A window counts for filter ``f`` when its activation exceeds ``threshold``
    times the filter's maximum activation over all of ``x``.

    Parameters
    ----------
    model : ConvNet
    x : torch.Tensor, shape (N, 4, L), float32
    threshold : float
    batch_size : int

    Returns
    -------
    counts : np.ndarray, shape (F, 4, k), float64
        Summed one-hot windows (ambiguous bases add fractions, padding nothing).
    sites : np.ndarray, shape (F,), int64
        Number of windows counted per filter.
    """
    model = model.eval()
    device = next(model.parameters()).device
    k = model.first_conv.kernel_size[0]
    n_filters = model.first_conv.out_channels
    with torch.no_grad():
        peak = torch.full((n_filters,), -float("inf"))
        for i in range(0, len(x), batch_size):
            act = model.first_layer_activations(x[i : i + batch_size].to(device)).float().cpu()
            peak = torch.maximum(peak, act.amax(dim=(0, 2)))
        cutoff = threshold * peak
        counts = torch.zeros(n_filters, 4, k, dtype=torch.float64)
        sites = torch.zeros(n_filters, dtype=torch.int64)
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            act = model.first_layer_activations(xb.to(device)).float().cpu()
            hits = (act > cutoff[None, :, None]) & (peak[None, :, None] > 0)
            windows = xb.unfold(2, k, 1)  # (B, 4, P, k)
            counts += torch.einsum("bfp,bcpk->fck", hits.double(), windows.double())
            sites += hits.sum(dim=(0, 2))
    return counts.numpy(), sites.numpy()


def extract_motifs(
    model,
    sequences,
    threshold: float = 0.5,
    min_sites: int = 10,
    pseudocount: float = 1.0,
    background=UNIFORM_BACKGROUND,
    batch_size: int = 256,
) -> MotifList:
    """Turn each first-layer filter of ``model`` into a motif.

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
        Sequences whose windows are counted (usually the bound ones).
    threshold : float
        Fraction of each filter's maximum activation a window must exceed.
    min_sites : int
        Filters with fewer windows are skipped (listed in ``.skipped``).
    pseudocount : float
        Total pseudocount per column, split by ``background``.
    background : 4 floats

    Returns
    -------
    MotifList
        Motifs named ``filter_<i>`` in filter order; ``extra["filter"]`` is the
        filter index.
    """
    x = encode_for(model, sequences)
    counts, sites = filter_site_counts(model, x, threshold, batch_size)
    motifs, skipped = [], {}
    for f in range(len(sites)):
        if sites[f] < min_sites:
            skipped[f] = int(sites[f])
            continue
        motifs.append(
            Motif(
                name=f"filter_{f}",
                pfm=counts[f],
                sites=int(sites[f]),
                background=tuple(background),
                pseudocount=pseudocount,
                extra={"filter": f},
            )
        )
    return MotifList(motifs, skipped)


def encode_for(model, sequences) -> torch.Tensor:
    """Sequences (path, strings, (id, seq) pairs or a tensor) -> (N, 4, L) at the model's length."""
    if isinstance(sequences, torch.Tensor):
        return sequences
    return one_hot([s for _, s in iter_records(sequences)], length=model.length)


class NullificationEffects(NamedTuple):
    """What nullifying each first-layer filter does to a model's output.

    Attributes
    ----------
    influence : np.ndarray, shape (F, T), float64
        Mean decrease of the predicted probability per filter and task.
    loss_change : np.ndarray, shape (F,), float64
        Mean increase of the binary cross-entropy (averaged over tasks) against
        the labels; positive = the model does worse without the filter.
    """

    influence: np.ndarray
    loss_change: np.ndarray


def nullification_effects(model, sequences, labels=None, batch_size: int = 256) -> NullificationEffects:
    """Nullify each first-layer filter in turn and measure predictions and loss.

    Each filter's activation is replaced by its mean over all sequences and
    positions (Basset-style nullification).

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
    labels : array-like, shape (N, T) or (N,), optional
        0/1 labels for the loss change. None treats every sequence as bound
        (label 1 for every task), e.g. for the peaks given to ``genocnn motifs``.
    batch_size : int

    Returns
    -------
    NullificationEffects
    """
    x = encode_for(model, sequences)
    model = model.eval()
    device = next(model.parameters()).device
    activation_layer = model.blocks[0][2]
    n_filters = model.first_conv.out_channels
    y = None if labels is None else torch.as_tensor(np.asarray(labels, dtype=np.float32))
    if y is not None and y.ndim == 1:
        y = y[:, None]
    if y is not None and len(y) != len(x):
        raise ValueError(f"labels has {len(y)} rows for {len(x)} sequences")
    with torch.no_grad():
        total = torch.zeros(n_filters, dtype=torch.float64)
        positions = 0
        for i in range(0, len(x), batch_size):
            act = model.first_layer_activations(x[i : i + batch_size].to(device)).float()
            total += act.sum(dim=(0, 2)).double().cpu()
            positions += act.shape[0] * act.shape[2]
        means = (total / max(positions, 1)).float().to(device)
        state = {"filter": None}

        def nullify(_module, _inputs, output):
            f = state["filter"]
            if f is None:
                return output
            output = output.clone()
            output[:, f, :] = means[f]
            return output

        handle = activation_layer.register_forward_hook(nullify)
        influence, loss_change = None, np.zeros(n_filters)
        try:
            for i in range(0, len(x), batch_size):
                xb = x[i : i + batch_size].to(device)
                state["filter"] = None
                logits = model(xb).float()
                yb = torch.ones_like(logits) if y is None else y[i : i + batch_size].to(device).expand_as(logits)
                if influence is None:
                    influence = np.zeros((n_filters, logits.shape[1]))
                base = torch.sigmoid(logits)
                base_loss = _bce(logits, yb)
                replay = _first_layer_replay(model, xb, logits)
                for f in range(n_filters):
                    if replay is not None:
                        nulled = replay(f, means[f])
                    else:
                        state["filter"] = f
                        nulled = model(xb).float()
                    influence[f] += (base - torch.sigmoid(nulled)).sum(dim=0).double().cpu().numpy()
                    loss_change[f] += float((_bce(nulled, yb) - base_loss).sum())
        finally:
            handle.remove()
    n = max(len(x), 1)
    if influence is None:
        influence = np.zeros((n_filters, len(getattr(model, "tasks", [])) or 1))
    return NullificationEffects(influence / n, loss_change / n)


def _first_layer_replay(model, xb: torch.Tensor, logits: torch.Tensor):
    """Logits with one first-layer filter set to a value, without recomputing the first layer.

    The first layer's activations of ``xb`` (and of its reverse complement
    when the model averages strands) are computed once; each call replays
    only the layers after them, about 10x faster than a full forward pass.

    Returns
    -------
    callable (filter, value) -> torch.Tensor (B, T), or None
        None when replaying does not reproduce ``logits`` (a model whose
        forward is not blocks -> global pool -> head with optional strand
        averaging); the caller then nullifies through a forward hook.
    """
    try:
        acts = [model.first_layer_activations(xb)]
        if model.config.rc_average and not model.training:
            acts.append(model.first_layer_activations(xb.flip(-2, -1)))

        def tail(a: torch.Tensor) -> torch.Tensor:
            h = model.blocks[0][3:](a)
            for block in model.blocks[1:]:
                h = block(h)
            return model.head(model.global_pool(h)).float()

        def replay(f: int | None = None, value: torch.Tensor | None = None) -> torch.Tensor:
            out = []
            for a in acts:
                if f is None:
                    out.append(tail(a))
                    continue
                kept = a[:, f, :].clone()
                a[:, f, :] = value
                out.append(tail(a))
                a[:, f, :] = kept
            return out[0] if len(out) == 1 else 0.5 * (out[0] + out[1])

        if not torch.allclose(replay(), logits, rtol=1e-4, atol=1e-5):
            return None
        return replay
    except (AttributeError, TypeError, IndexError, RuntimeError):
        return None


def _bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per sequence, averaged over tasks: shape (B,)."""
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return loss.mean(dim=1).double()


def filter_influence(model, sequences, batch_size: int = 256, per_task: bool = False) -> np.ndarray:
    """Per-filter influence: how much predictions drop when a filter is nullified.

    Each first-layer filter's activation is replaced by its mean over all
    sequences and positions (Basset-style nullification); the influence is the
    mean decrease of the predicted probability, averaged over tasks unless
    ``per_task``. See :func:`nullification_effects` for the loss change too.

    Parameters
    ----------
    model : ConvNet
    sequences : path, iterable of str / (id, str), or torch.Tensor (N, 4, L)
    batch_size : int
    per_task : bool
        Return one column per task instead of the mean over tasks.

    Returns
    -------
    np.ndarray, shape (F,), or (F, T) when ``per_task``
        Larger = the model relies more on that filter for binding calls.
    """
    influence = nullification_effects(model, sequences, batch_size=batch_size).influence
    return influence if per_task else influence.mean(axis=1)
