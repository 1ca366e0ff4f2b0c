"""One typed config schema (data, model, training, motifs), loaded from YAML.

The dataclasses below are the single source of defaults; the presets in
``configs/`` mirror their keys. Unknown keys and wrong types raise
:class:`~genocnn.errors.GenocnnError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import GenocnnError



def find_preset_dir(candidates: tuple[Path, ...]) -> Path:
    """The first folder of ``candidates`` holding ``default.yaml`` (else the first candidate)."""
    return next((d for d in candidates if (d / "default.yaml").is_file()), candidates[0])


#: The repo's ``configs/`` (source checkout, editable install) or its installed copy
#: (a wheel puts it in ``<prefix>/share/genocnn/configs``).
PRESET_DIR = find_preset_dir(
    (Path(__file__).resolve().parent.parent / "configs", Path(sys.prefix) / "share" / "genocnn" / "configs")
)
#: Largest seed (numpy and torch take seeds below 2**32 everywhere).
MAX_SEED = 2**32 - 1
ACTIVATIONS = ("relu", "exp")
POOLS = ("max", "avg", "none")


@dataclass(frozen=True)
class DataConfig:
    """How sequences become a dataset.

    Attributes
    ----------
    length : int or None
        Model input length L; ``None`` means the training set's longest sequence,
        capped at ``max_length``. Other lengths are centre-cropped or zero-padded.
    max_length : int
        Cap for the automatic length.
    valid_fraction, test_fraction : float
        Fractions of the labelled sequences held out for early stopping and for
        the final metrics; the split is drawn from the seed.
    negatives_per_positive : int
        Dinucleotide-shuffled copies of each positive used as negatives when no
        negative FASTA is given.
    """

    length: int | None = None
    max_length: int = 1000
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    negatives_per_positive: int = 1

    def validate(self, where: str) -> None:
        if self.length is not None and self.length < 1:
            raise GenocnnError(f"{where}: data.length must be a positive integer or null")
        if self.max_length < 1:
            raise GenocnnError(f"{where}: data.max_length must be positive")
        for key in ("valid_fraction", "test_fraction"):
            if not 0.0 < getattr(self, key) < 0.5:
                raise GenocnnError(f"{where}: data.{key} must be between 0 and 0.5")
        if self.negatives_per_positive < 1:
            raise GenocnnError(f"{where}: data.negatives_per_positive must be >= 1")


@dataclass(frozen=True)
class ConvBlock:
    """One convolution block: Conv1d -> [BatchNorm] -> activation -> [pool] -> [dropout].

    ``batch_norm`` is off by default: without it the first layer's filters
    read as motifs directly and the defaults reach the oracles more closely
    (``bench/RESULTS.md``, "Batch norm off in the first layer").
    """

    filters: int = 64
    kernel_size: int = 15
    activation: Literal["relu", "exp"] = "relu"
    batch_norm: bool = False
    pool: Literal["max", "avg", "none"] = "max"
    pool_size: int = 4
    dropout: float = 0.1
    dilation: int = 1


@dataclass(frozen=True)
class ModelConfig:
    """Network architecture.

    Attributes
    ----------
    conv : list of ConvBlock
        Convolution blocks in order; the first one's filters become motifs.
    global_pool : {"max", "avg", "none"}
        Pooling over the remaining positions after the last block
        (``none`` flattens).
    dense : list of int
        Hidden units of the dense layers before the output layer.
    dense_dropout : float
        Dropout after each dense layer.
    pooled_dropout : float
        Dropout, in training only, on the globally pooled outputs (each
        filter's strongest match) before the dense layers. Dropping whole
        filters makes the model learn each motif in several of them, so
        fewer first-layer filters are left untrained (bench/RESULTS.md,
        "Pooled dropout"). Tuned for the default 64 filters; a first layer of
        only a few filters (the test suite's 8) learns less with it: set 0.
    rc_average : bool
        Average forward and reverse-complement logits at inference.
    """

    conv: tuple[ConvBlock, ...] = (ConvBlock(),)
    global_pool: Literal["max", "avg", "none"] = "max"
    dense: tuple[int, ...] = (256,)
    dense_dropout: float = 0.2
    pooled_dropout: float = 0.4
    rc_average: bool = True

    def validate(self, where: str) -> None:
        if not self.conv:
            raise GenocnnError(f"{where}: model.conv needs at least one block")
        for i, b in enumerate(self.conv):
            key = f"model.conv[{i}]"
            if b.filters < 1 or b.kernel_size < 1 or b.dilation < 1:
                raise GenocnnError(f"{where}: {key}: filters, kernel_size and dilation must be >= 1")
            if b.activation not in ACTIVATIONS:
                raise GenocnnError(f"{where}: {key}.activation must be one of {ACTIVATIONS}, got {b.activation!r}")
            if b.pool not in POOLS:
                raise GenocnnError(f"{where}: {key}.pool must be one of {POOLS}, got {b.pool!r}")
            if b.pool != "none" and b.pool_size < 1:
                raise GenocnnError(f"{where}: {key}.pool_size must be >= 1")
            if not 0.0 <= b.dropout < 1.0:
                raise GenocnnError(f"{where}: {key}.dropout must be in [0, 1)")
        if self.global_pool not in POOLS:
            raise GenocnnError(f"{where}: model.global_pool must be one of {POOLS}")
        if any(d < 1 for d in self.dense):
            raise GenocnnError(f"{where}: model.dense sizes must be >= 1")
        for name in ("dense_dropout", "pooled_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise GenocnnError(f"{where}: model.{name} must be in [0, 1)")


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation settings.

    Attributes
    ----------
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Sequences per step (before reverse-complement augmentation) on the
        CPU and other devices; the batch ``lr`` is meant for.
    cuda_batch_size : int or None
        Sequences per step on CUDA, where small batches leave the GPU waiting
        for Python: 256 by default, with the learning rate scaled by
        ``sqrt(cuda_batch_size / batch_size)`` (the square-root rule for
        Adam: 1e-3 at 64 becomes 2e-3 at 256; on the 10-TF benchmark this
        keeps batch 64's AUROC, 512 at 2.83e-3 did not: ``bench/RESULTS.md``).
        ``null``: ``batch_size`` and ``lr`` as given on CUDA too.
    lr, weight_decay : float
        AdamW settings.
    patience : int
        Epochs without a better validation AUROC before stopping.
    rc_augment : bool
        Add a reverse-complemented copy of each batch during training.
    amp : bool
        Mixed precision (autocast to ``amp_dtype``) when training on CUDA.
        Off by default: for these small convolutional models bfloat16
        autocast measured slower than fp32, which on CUDA runs its matrix
        products and convolutions on TF32 tensor cores.
    amp_dtype : {"bfloat16", "float16"}
        Autocast type; float16 uses a gradient scaler.
    compile : bool
        ``torch.compile`` the network when training on CUDA.
    scheduler : {"plateau", "cosine", "none"}
        Learning-rate schedule: ``plateau`` multiplies the rate by
        ``lr_factor`` after ``lr_patience`` epochs without a better validation
        AUROC; ``cosine`` anneals it to zero over ``epochs``.
    lr_factor : float
    lr_patience : int
    seed : int
    steps_per_epoch : int or None
        None: an epoch is every training sequence once. N: an epoch is N
        batches of a reproducible shuffled stream (for sets too large for full
        epochs); validation, early stopping and ``last.pt`` come after each.
    calibration_bp : int
        Bases of dinucleotide-shuffled held-out sequence scanned after training
        to relate scan thresholds to false calls per Mbp (``genocnn scan --fpr``);
        0 skips the calibration.
    """

    epochs: int = 60
    batch_size: int = 64
    cuda_batch_size: int | None = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    patience: int = 10
    rc_augment: bool = True
    amp: bool = False
    amp_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    compile: bool = False
    scheduler: Literal["plateau", "cosine", "none"] = "none"
    lr_factor: float = 0.2
    lr_patience: int = 2
    seed: int = 0
    calibration_bp: int = 2_000_000
    steps_per_epoch: int | None = None

    def validate(self, where: str) -> None:
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise GenocnnError(f"{where}: training.steps_per_epoch must be >= 1 (or null for full epochs)")
        if self.calibration_bp < 0:
            raise GenocnnError(f"{where}: training.calibration_bp must be >= 0")
        for key in ("epochs", "batch_size", "patience", "lr_patience"):
            if getattr(self, key) < 1:
                raise GenocnnError(f"{where}: training.{key} must be >= 1")
        if self.cuda_batch_size is not None and self.cuda_batch_size < 1:
            raise GenocnnError(f"{where}: training.cuda_batch_size must be >= 1 or null")
        if not 0 < self.lr_factor < 1:
            raise GenocnnError(f"{where}: training.lr_factor must be between 0 and 1")
        if self.lr <= 0:
            raise GenocnnError(f"{where}: training.lr must be > 0")
        if self.weight_decay < 0:
            raise GenocnnError(f"{where}: training.weight_decay must be >= 0")
        if not 0 <= self.seed <= MAX_SEED:
            raise GenocnnError(f"{where}: training.seed must be between 0 and {MAX_SEED}, got {self.seed}")


@dataclass(frozen=True)
class MotifConfig:
    """Turning first-layer filters into motifs.

    Attributes
    ----------
    threshold : float
        Fraction of a filter's maximum activation a window must exceed to count.
    min_sites : int
        Filters with fewer windows are skipped and reported.
    pseudocount : float
        Total pseudocount per column, split by the background.
    trim_ic : float
        Flanking columns under this many bits are trimmed before export
        (0 keeps the full filter width).
    """

    threshold: float = 0.5
    min_sites: int = 10
    pseudocount: float = 1.0
    trim_ic: float = 0.3

    def validate(self, where: str) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise GenocnnError(f"{where}: motifs.threshold must be between 0 and 1")
        if self.min_sites < 1:
            raise GenocnnError(f"{where}: motifs.min_sites must be >= 1")
        if self.pseudocount < 0:
            raise GenocnnError(f"{where}: motifs.pseudocount must be >= 0")
        if not 0.0 <= self.trim_ic < 2.0:
            raise GenocnnError(f"{where}: motifs.trim_ic must be in [0, 2)")


@dataclass(frozen=True)
class Config:
    """The whole configuration of a run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    motifs: MotifConfig = field(default_factory=MotifConfig)

    def validate(self, where: str = "config") -> Config:
        """Check value ranges; raise GenocnnError naming ``where`` and the key."""
        self.data.validate(where)
        self.model.validate(where)
        self.training.validate(where)
        self.motifs.validate(where)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, not tuples) for YAML and checkpoints."""
        return _plain(asdict(self))

    def replace(self, **sections: Any) -> Config:
        """Return a copy with sections' fields replaced, e.g. ``training={"epochs": 3}``."""
        updated = {
            name: dataclasses.replace(getattr(self, name), **values) for name, values in sections.items()
        }
        return dataclasses.replace(self, **updated)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, data: Any, where: str, path: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys and types."""
    if not isinstance(data, dict):
        raise GenocnnError(f"{where}: '{path or 'config'}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{path}." if path else ""
        raise GenocnnError(
            f"{where}: unknown key '{prefix}{unknown[0]}' (allowed: {', '.join(sorted(names))})"
        )
    kwargs = {k: _coerce(hints[k], v, where, f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise GenocnnError(f"{where}: '{key}' must be a list")
        return tuple(_coerce(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is Literal:
        if value not in args:
            raise GenocnnError(f"{where}: '{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise GenocnnError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GenocnnError(f"{where}: '{key}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GenocnnError(f"{where}: '{key}' must be a number, got {value!r}")
        return float(value)
    return value


def config_from_dict(data: dict[str, Any] | None, where: str = "config") -> Config:
    """Build and validate a :class:`Config` from a nested mapping.

    Examples
    --------
    >>> cfg = config_from_dict({"training": {"epochs": 3}})
    >>> cfg.training.epochs, cfg.training.lr
    (3, 0.001)
    """
    return _build(Config, data or {}, where, "").validate(where)


def apply_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Apply ``section.key=value`` overrides (values parsed as YAML; list items by index).

    Examples
    --------
    >>> cfg = apply_overrides(Config(), ["training.lr=3e-4", "model.conv.0.filters=32"])
    >>> cfg.training.lr, cfg.model.conv[0].filters
    (0.0003, 32)
    """
    data = config.to_dict()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise GenocnnError(f"`overrides` item {item!r}: expected section.key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise GenocnnError(f"`overrides` item {item!r}: value is not valid YAML") from None
        parts = key.strip().split(".")
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise GenocnnError(f"`overrides` item {item!r}: no item {part} in '{'.'.join(parts[:depth])}'")
                part = int(part)
            elif not isinstance(node, dict) or part not in node:
                raise GenocnnError(f"`overrides` item {item!r}: unknown key '{'.'.join(parts[: depth + 1])}'")
            if last:
                node[part] = value
            else:
                node = node[part]
    return config_from_dict(data, where="`overrides`")


def preset_names() -> list[str]:
    """Names of the YAML presets shipped in ``configs/``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | os.PathLike) -> Path:
    """A preset name (``deepbind``) or a YAML path -> an existing file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise GenocnnError(f"{path}: config file not found")
        return path
    preset = PRESET_DIR / f"{name_or_path}.yaml"
    if not preset.is_file():
        raise GenocnnError(
            f"{name_or_path}: no such config file or preset (presets: {', '.join(preset_names())})"
        )
    return preset


def load_config(name_or_path: str | os.PathLike | None = None) -> Config:
    """Load a config from a preset name or YAML file; ``None`` gives the defaults.

    Raises
    ------
    GenocnnError
        Unreadable YAML, unknown keys or bad values, naming the file and key.
    """
    if name_or_path is None:
        return Config().validate()
    path = resolve_config_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise GenocnnError(f"{path}: not valid YAML{line}: {detail}") from None
    return config_from_dict(data, where=str(path))


def dump_config(config: Config) -> str:
    """The config as YAML text (keys exactly the schema's fields)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
