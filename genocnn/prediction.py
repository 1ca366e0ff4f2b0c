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

from .encode import MIN_BASE_FRACTION, base_fraction, one_hot
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
    table.insert(0, "id", ids)
    table["mostly_n"] = np.array(mostly_n, dtype=bool)
    if cropped or padded:
        warnings.warn(f"{cropped} of {len(ids)} sequences were centre-cropped and {padded} zero-padded to the "
                      f"model length {model.length}", stacklevel=2)
    return table
