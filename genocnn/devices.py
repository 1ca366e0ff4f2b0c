"""Devices: ``auto``/cpu/cuda/cuda:N/mps, and the process group under ``torchrun``."""

from __future__ import annotations

import os

import torch

from .errors import GenocnnError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto``/None -> CUDA if available, else MPS, else CPU; also ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise GenocnnError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise GenocnnError(f"device {device!r} requested but CUDA is not available")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise GenocnnError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise GenocnnError(f"device {device!r} requested but MPS is not available")
    if resolved.type not in ("cpu", "cuda", "mps") or (resolved.type == "cpu" and resolved.index is not None):
        raise GenocnnError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    return resolved


def cpu_threads(threads: int | None = None, share: int = 1) -> int:
    """Set torch's CPU thread count and return it.

    ``threads`` given: exactly that many. None: the cores this process may
    run on (its CPU affinity, not every core of the machine) divided by
    ``share`` (processes on this machine, e.g. ``torchrun`` ranks), unless
    ``OMP_NUM_THREADS`` is set, which then wins.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> cpu_threads(1)
    1
    >>> _ = cpu_threads(before)
    """
    if threads is not None:
        if threads < 1:
            raise GenocnnError(f"`threads` must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch.set_num_threads(max(1, cores // max(share, 1)))
    return torch.get_num_threads()


class Distributed:
    """Rank and world size under ``torchrun`` (one process, rank 0, otherwise)."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.active = self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def setup(self, device: torch.device) -> torch.device:
        """Start the process group (NCCL on CUDA, gloo on CPU); returns this rank's device."""
        if not self.active:
            return device
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return device

    def barrier(self) -> None:
        """Wait for every rank (nothing in a single process)."""
        if self.active and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's share of a global batch (DistributedSampler-style striding)."""
        return index[self.rank :: self.world] if self.active else index

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
