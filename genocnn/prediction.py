"""Batched predictions per sequence: probabilities of binding, one column per task."""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .batches import codes_one_hot
from .data import Dataset
from .encode import MIN_BASE_FRACTION, base_fraction, one_hot
from .errors import GenocnnError, check_count
from .fasta import iter_records
from .models import ConvNet
from .inference import predict_logits


def _batches(records: Iterator[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    while batch := list(itertools.islice(records, size)):
        yield batch


def predict(
    model: ConvNet,
    fasta_or_sequences: str | os.PathLike | Iterable,
    batch_size: int = 256,
    progress: bool = False,
) -> pd.DataFrame:
    """Binding probabilities for each sequence, streaming in batches.

    Parameters
    ----------
    model : ConvNet
        From :func:`genocnn.load_model` or ``train(...).model``.
    fasta_or_sequences : path, or iterable of str or of (id, sequence)
        Sequences of any length: they are centre-cropped or zero-padded to the
        model's input length, as in training.
    batch_size : int
    progress : bool
        Show a progress bar (sequences/s) when stderr is a terminal.

    Returns
    -------
    pandas.DataFrame
        Column ``id``, one probability column per task (``bound`` for a
        pos/neg model), then ``mostly_n``: True where less than half of the
        model-length window is A/C/G/T (N runs or padding; such scores mean
        little). Rows in input order.

    Warns
    -----
    UserWarning
        Once per call, with counts, when sequences were cropped or padded to the model length.
    """
    check_count("batch_size", batch_size)
    tasks = model.tasks
    ids: list[str] = []
    probs: list[torch.Tensor] = []
    mostly_n: list[bool] = []
    cropped = padded = 0
    # shown on terminals only, and cleared when done or on an error
    with tqdm(desc="predicting", unit="seq", disable=None if progress else True, leave=False) as bar:
        for batch in _batches(iter_records(fasta_or_sequences), batch_size):
            seqs = [s for _, s in batch]
            x = one_hot(seqs, length=model.length)
            mostly_n += [base_fraction(s, model.length) < MIN_BASE_FRACTION for s in seqs]
            cropped += sum(len(s) > model.length for s in seqs)
            padded += sum(len(s) < model.length for s in seqs)
            probs.append(torch.sigmoid(predict_logits(model, x, batch_size)))
            ids.extend(name for name, _ in batch)
            bar.update(len(batch))
    values = torch.cat(probs).numpy() if probs else torch.zeros(0, len(tasks)).numpy()
    table = pd.DataFrame(values, columns=tasks)
    table.insert(0, "id", pd.Series(ids, dtype=object))  # object even when empty
    table["mostly_n"] = np.array(mostly_n, dtype=bool)
    if cropped or padded:
        warnings.warn(f"{cropped} of {len(ids)} sequences were centre-cropped and {padded} zero-padded to the "
                      f"model length {model.length}", stacklevel=2)
    return table


def predict_codes(model: ConvNet, data: Dataset, batch_size: int = 256, block: int = 8192,
                  progress: bool = False) -> pd.DataFrame:
    """:func:`predict` for a :class:`~genocnn.data.Dataset` of 1-byte codes (a store), a block of rows at a time.

    Parameters
    ----------
    data : Dataset
        Codes of shape (N, L) with ``L`` the model length (a store opened by
        :func:`genocnn.store.open_store`); its labels are not used.
    block : int
        Rows one-hot encoded at a time.

    Returns
    -------
    pandas.DataFrame
        As :func:`predict`: ``id``, one probability column per task, ``mostly_n``.

    Raises
    ------
    GenocnnError
        When the sequences' length is not the model's.
    """
    check_count("batch_size", batch_size)
    check_count("block", block)
    if data.length != model.length:
        raise GenocnnError(f"the store holds sequences of {data.length} bp, the model reads {model.length} bp; "
                           "build the store again with --length " + str(model.length))
    probs, mostly_n = [], []
    with tqdm(desc="predicting", unit="seq", total=len(data), disable=None if progress else True, leave=False) as bar:
        for start in range(0, len(data), block):
            rows = np.arange(start, min(start + block, len(data)))
            x = codes_one_hot(data, rows)
            mostly_n.append((x.amax(1) == 1).float().mean(1).numpy() < MIN_BASE_FRACTION)  # A/C/G/T columns
            probs.append(torch.sigmoid(predict_logits(model, x, batch_size)))
            bar.update(len(rows))
    values = torch.cat(probs).numpy() if probs else np.zeros((0, len(model.tasks)), dtype=np.float32)
    table = pd.DataFrame(values, columns=model.tasks)
    table.insert(0, "id", list(data.ids[0 : len(data)]) if len(data) else [])
    table["mostly_n"] = np.concatenate(mostly_n) if mostly_n else np.zeros(0, dtype=bool)
    return table
