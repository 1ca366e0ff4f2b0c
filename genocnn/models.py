"""Build a Conv1d / pooling / dense network from a :class:`ModelConfig`.

No training code lives here: the network is a plain ``nn.Module`` mapping
one-hot DNA ``(N, 4, L)`` to one logit per task ``(N, T)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .config import Config, ConvBlock, ModelConfig
from .encode import reverse_complement
from .errors import GenocnnError


class Exp(nn.Module):
    """Exponential activation (Koo & Ploenzke 2021): sharpens first-layer motifs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x.clamp(max=20.0))


def _activation(name: str) -> nn.Module:
    return Exp() if name == "exp" else nn.ReLU()


def _pool(kind: str, size: int) -> nn.Module:
    if kind == "none" or size <= 1:
        return nn.Identity()
    cls = nn.MaxPool1d if kind == "max" else nn.AvgPool1d
    return cls(size, ceil_mode=True)


def conv_block(in_channels: int, block: ConvBlock) -> nn.Sequential:
    """Conv1d (no padding) -> [BatchNorm] -> activation -> [pool] -> [dropout].

    The first three layers are kept together as ``block[:3]`` so that the
    activations of a block (before pooling) can be read off for motifs.
    """
    layers: list[nn.Module] = [
        nn.Conv1d(in_channels, block.filters, block.kernel_size, dilation=block.dilation),
        nn.BatchNorm1d(block.filters) if block.batch_norm else nn.Identity(),
        _activation(block.activation),
        _pool(block.pool, block.pool_size),
        nn.Dropout(block.dropout) if block.dropout > 0 else nn.Identity(),
    ]
    return nn.Sequential(*layers)


def output_length(config: ModelConfig, length: int) -> int:
    """Positions left after all conv blocks for an input of ``length`` (before global pooling)."""
    for b in config.conv:
        length = length - b.dilation * (b.kernel_size - 1)
        if length < 1:
            return 0
        if b.pool != "none" and b.pool_size > 1:
            length = -(-length // b.pool_size)
    return length


class ConvStage(NamedTuple):
    """One conv block as its parts: ``pool(post(conv(x)))`` (dropout is off at inference)."""

    conv: nn.Conv1d
    post: nn.Module  # batch norm (or identity) then the activation
    pool: nn.Module  # MaxPool1d, AvgPool1d or Identity


class ConvNet(nn.Module):
    """Convolutional network over one-hot DNA.

    Parameters
    ----------
    config : ModelConfig
        Architecture.
    n_tasks : int
        Number of output logits.
    length : int
        Input length L the network is built for. With global pooling any
        length of at least the receptive field works; without, exactly L.
    tasks : list of str, optional
        Task names, one per logit (default ``task0, task1, ...``); they name
        the columns of :func:`genocnn.predict`.
    run_config : Config, optional
        The full configuration the model was trained with (set by training and
        by :func:`genocnn.load_model`); ``None`` for a freshly built network.
    calibration : dict, optional
        False calls per Mbp of shuffled background against scan threshold,
        per task (:func:`genocnn.calibration.calibrate`); ``None`` if not measured.

    Attributes
    ----------
    tasks : list of str
    run_config : Config or None

    Examples
    --------
    >>> from genocnn.config import ModelConfig
    >>> net = ConvNet(ModelConfig(), n_tasks=1, length=100).eval()
    >>> net(torch.zeros(2, 4, 100)).shape
    torch.Size([2, 1])
    """

    def __init__(
        self,
        config: ModelConfig,
        n_tasks: int,
        length: int,
        tasks: list[str] | None = None,
        run_config: Config | None = None,
        calibration: dict | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.length = length
        self.tasks = list(tasks) if tasks else [f"task{i}" for i in range(n_tasks)]
        if len(self.tasks) != n_tasks:
            raise GenocnnError(f"{len(self.tasks)} task names for a model with {n_tasks} outputs")
        self.run_config = run_config
        self.calibration = calibration
        remaining = output_length(config, length)
        if remaining < 1:
            raise GenocnnError(
                f"model input length {length} is shorter than the network's receptive field; "
                "use longer sequences, set data.length, or use smaller kernels/pools"
            )
        channels = 4
        blocks = []
        for block in config.conv:
            blocks.append(conv_block(channels, block))
            channels = block.filters
        self.blocks = nn.ModuleList(blocks)
        if config.global_pool == "max":
            self.global_pool: nn.Module = nn.AdaptiveMaxPool1d(1)
            width = channels
        elif config.global_pool == "avg":
            self.global_pool = nn.AdaptiveAvgPool1d(1)
            width = channels
        else:
            self.global_pool = nn.Identity()
            width = channels * remaining
        self.pooled_dropout = nn.Dropout(config.pooled_dropout)  # no weights: state dicts unchanged
        dense: list[nn.Module] = []
        for units in config.dense:
            dense += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(config.dense_dropout)]
            width = units
        dense.append(nn.Linear(width, n_tasks))
        self.head = nn.Sequential(nn.Flatten(), *dense)

    @property
    def n_tasks(self) -> int:
        """Number of outputs T."""
        return len(self.tasks)

    @property
    def first_conv(self) -> nn.Conv1d:
        """The first-layer convolution, whose filters become motifs."""
        return self.blocks[0][0]

    def conv_stages(self) -> list[ConvStage]:
        """Every conv block as ``(conv, post, pool)``, in order (for engines that re-tile the network)."""
        return [ConvStage(b[0], nn.Sequential(b[1], b[2]), b[3]) for b in self.blocks]

    def first_layer_activations(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the first block before pooling.

        Parameters
        ----------
        x : torch.Tensor, shape (N, 4, L), float32

        Returns
        -------
        torch.Tensor, shape (N, F, L - k + 1)
            Position ``i`` covers input window ``x[:, :, i : i + k]``.
        """
        return self.blocks[0][:3](x)

    def after_first_layer(self, a: torch.Tensor) -> torch.Tensor:
        """The network after :meth:`first_layer_activations`: activations -> one-strand logits.

        Parameters
        ----------
        a : torch.Tensor, shape (N, F, P)

        Returns
        -------
        torch.Tensor, shape (N, T)
        """
        h = self.blocks[0][3:](a)
        for block in self.blocks[1:]:
            h = block(h)
        return self.head(self.pooled_dropout(self.global_pool(h)))

    def strand_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``x`` as given, without reverse-complement averaging: shape (N, T)."""
        return self.after_first_layer(self.first_layer_activations(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N, T); forward/reverse-complement averaged in eval mode if configured."""
        logits = self.strand_logits(x)
        if self.averages_strands:
            logits = 0.5 * (logits + self.strand_logits(reverse_complement(x)))
        return logits

    @property
    def averages_strands(self) -> bool:
        """Whether :meth:`forward` averages the two strands now (configured, and in eval mode)."""
        return bool(self.config.rc_average and not self.training)


def build_model(
    config: ModelConfig,
    n_tasks: int,
    length: int,
    tasks: list[str] | None = None,
    run_config: Config | None = None,
) -> ConvNet:
    """Build the network described by ``config``; see :class:`ConvNet`."""
    return ConvNet(config, n_tasks, length, tasks, run_config)


def task_index(model: ConvNet, task: int | str | None) -> int:
    """Output column of ``task``: a task name (``model.tasks``), an index, or None for the first.

    Raises
    ------
    GenocnnError
        Unknown name or index out of range.
    """
    n_tasks = model.n_tasks
    if task is None:
        return 0
    if isinstance(task, str):
        tasks = model.tasks
        if task in tasks:
            return tasks.index(task)
        if not task.isdigit():
            raise GenocnnError(f"unknown task {task!r}; the model's tasks: {', '.join(tasks) or n_tasks}")
        task = int(task)
    if not 0 <= task < n_tasks:
        raise GenocnnError(f"unknown task {task}: the model has {n_tasks} task(s)")
    return int(task)
