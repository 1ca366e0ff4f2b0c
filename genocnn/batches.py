"""Training batches from 1-byte codes: gathered where the codes live, one-hot encoded on the device.

:class:`BatchSource` serves the rows of one split. Codes in memory are kept
as a compact uint8 copy of the split (on CUDA, moved to the device once when
they fit, and gathered there); codes in a memory-mapped store are gathered
per batch, rows in file order, and only the batch is moved. Either way
:func:`~genocnn.encode.codes_to_one_hot` runs on the device, so the float
one-hot of the whole set is never held.

With ``training.steps_per_epoch`` an epoch is that many batches of a
reproducible stream: consecutive permutations of the rows, the k-th drawn
from ``seed + k``, so epoch e starts where epoch e - 1 ended, whatever
process computes it (resume included).
"""

from __future__ import annotations

import numpy as np
import torch

from .data import Dataset, gather_rows, is_mapped, label_counts, labels_to_float
from .encode import codes_to_one_hot

__all__ = ["VALID_MAX_BASES", "BatchSource", "codes_one_hot", "positive_weights_of", "validation_rows"]

#: Validation uses at most this many bases (evenly spaced rows of the split) on huge sets: 128 MB as one-hot.
VALID_MAX_BASES = 8_000_000
#: Codes moved to a CUDA device when they take at most this fraction of its memory.
_DEVICE_FRACTION = 0.25


def codes_one_hot(data: Dataset, rows: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """One-hot of ``data``'s rows ``rows``, shape (n, 4, L), float32, encoded on ``device``."""
    codes = torch.from_numpy(gather_rows(data.codes, np.asarray(rows, dtype=np.int64)))
    return codes_to_one_hot(codes.to(device))


def positive_weights_of(labels: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """Per-task weight of positives among ``rows``: known negatives / known positives, shape (T,)."""
    pos, known = (torch.from_numpy(c).float() for c in label_counts(labels, rows))
    return (known - pos) / pos.clamp(min=1)


def validation_rows(rows: np.ndarray, length: int, max_bases: int = VALID_MAX_BASES) -> np.ndarray:
    """The validation rows used: all of them, or evenly spaced ones holding at most ``max_bases`` bases."""
    keep = max(1, max_bases // max(length, 1))
    if len(rows) <= keep:
        return rows
    return rows[np.linspace(0, len(rows) - 1, keep).round().astype(np.int64)]


class BatchSource:
    """The rows ``rows`` of ``data`` as training batches on ``device``.

    Parameters
    ----------
    data : Dataset
    rows : numpy.ndarray of int
        The split's rows.
    device : torch.device
    seed : int
        Seed of the stream of :meth:`order` with ``steps``.
    """

    def __init__(self, data: Dataset, rows: np.ndarray, device: torch.device, seed: int = 0) -> None:
        self.rows, self.device, self.seed = np.asarray(rows, dtype=np.int64), device, seed
        self.mapped = is_mapped(data.codes)
        self.data = data
        if self.mapped:
            return
        codes = torch.from_numpy(np.ascontiguousarray(data.codes[self.rows]))
        labels = torch.from_numpy(np.ascontiguousarray(data.labels[self.rows]))
        if device.type == "cuda" and codes.numel() <= _DEVICE_FRACTION * torch.cuda.get_device_properties(
                device).total_memory:
            codes, labels = codes.to(device), labels.to(device)
        elif device.type == "cuda":
            codes, labels = codes.pin_memory(), labels.pin_memory()
        self.codes, self.labels = codes, labels

    def __len__(self) -> int:
        return len(self.rows)

    def order(self, epoch: int, generator: torch.Generator, batch_size: int, steps: int | None) -> torch.Tensor:
        """Positions (into the split) of epoch ``epoch``'s samples, in batch order.

        ``steps`` None: a permutation from ``generator`` (a full epoch).
        Otherwise ``steps * batch_size`` positions of the seeded stream.
        """
        n = len(self.rows)
        if steps is None:
            return torch.randperm(n, generator=generator)
        start, count = (epoch - 1) * steps * batch_size, steps * batch_size
        parts, k = [], start // n
        offset = start - k * n
        while count > 0:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + 1_000_003 * (k + 1)))
            take = perm[offset : offset + count]
            parts.append(take)
            count -= len(take)
            k, offset = k + 1, 0
        return torch.cat(parts)

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One-hot (b, 4, L) and float labels (b, T, NaN unknown) of the split's ``positions``, on the device."""
        if self.mapped:
            rows = self.rows[positions.numpy()]
            codes = torch.from_numpy(gather_rows(self.data.codes, rows))
            labels = torch.from_numpy(gather_rows(self.data.labels, rows))
        else:
            codes = self.codes[positions.to(self.codes.device)]
            labels = self.labels[positions.to(self.labels.device)]
        codes = codes.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        y = labels.float()
        return codes_to_one_hot(codes), y.masked_fill(labels < 0, float("nan"))


def split_labels(data: Dataset, rows: np.ndarray) -> torch.Tensor:
    """Float labels (NaN unknown) of ``rows``, shape (n, T)."""
    return labels_to_float(gather_rows(data.labels, np.asarray(rows, dtype=np.int64)))
