"""Shared fixtures: tiny seeded data and one small trained run reused across tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CTCF_FASTA = ROOT / "data" / "ctcf_gm12878_top500.fa"

# A strong 10 bp motif planted in "bound" sequences of the tiny fixture.
TINY_MOTIF = "TGACGTCATG"


def _random_dna(rng: np.random.Generator, n: int, length: int) -> list[str]:
    return ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]


def write_fa(path: Path, records) -> Path:
    path.write_text("".join(f">{i}\n{s}\n" for i, s in records))
    return path


@pytest.fixture(scope="session")
def tiny_fastas(tmp_path_factory) -> tuple[Path, Path]:
    """300 bound sequences (60-100 bp, motif planted) and 300 unbound ones."""
    rng = np.random.default_rng(1)
    d = tmp_path_factory.mktemp("tiny")
    pos, neg = [], []
    for i in range(300):
        length = int(rng.integers(60, 101))
        s = _random_dna(rng, 1, length)[0]
        start = int(rng.integers(0, length - len(TINY_MOTIF)))
        pos.append((f"p{i}", s[:start] + TINY_MOTIF + s[start + len(TINY_MOTIF):]))
        neg.append((f"n{i}", _random_dna(rng, 1, length)[0]))
    return write_fa(d / "pos.fa", pos), write_fa(d / "neg.fa", neg)


@pytest.fixture(scope="session")
def tiny_config():
    from genocnn.config import config_from_dict

    return config_from_dict({
        # 8 filters: dropping 40 % of them (the default's pooled dropout) weakens what this tiny model learns
        "model": {"conv": [{"filters": 8, "kernel_size": 10, "pool_size": 4, "batch_norm": True}], "dense": [8],
                  "pooled_dropout": 0.0},
        "training": {"epochs": 15, "patience": 15, "lr": 0.01, "batch_size": 32},
        "motifs": {"min_sites": 5},
    })


@pytest.fixture(scope="session")
def tiny_run(tiny_fastas, tiny_config, tmp_path_factory):
    from genocnn.training import train

    pos, neg = tiny_fastas
    return train(pos, neg, out=tmp_path_factory.mktemp("run") / "run", config=tiny_config,
                 device="cpu", progress=False)
