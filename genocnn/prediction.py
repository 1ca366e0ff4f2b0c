"""Batched predictions per sequence: probabilities of binding, one column per task."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator

import pandas as pd
import torch
from tqdm.auto import tqdm

from .encode import one_hot
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
        Column ``id`` then one probability column per task (``bound`` for a
        pos/neg model), rows in input order.
    """
    tasks = model.tasks
    ids: list[str] = []
    probs: list[torch.Tensor] = []
    # shown on terminals only, and cleared when done or on an error
    with tqdm(desc="predicting", unit="seq", disable=None if progress else True, leave=False) as bar:
        for batch in _batches(iter_records(fasta_or_sequences), batch_size):
            x = one_hot([s for _, s in batch], length=model.length)
            probs.append(torch.sigmoid(predict_logits(model, x, batch_size)))
            ids.extend(name for name, _ in batch)
            bar.update(len(batch))
    values = torch.cat(probs).numpy() if probs else torch.zeros(0, len(tasks)).numpy()
    table = pd.DataFrame(values, columns=tasks)
    table.insert(0, "id", ids)
    return table
