"""genocnn: convolutional networks that predict TF binding from DNA and export the motifs they learn.

The data flow (README's module map has every module)::

    fasta -> encode -> data -> models -> training -> prediction / motifs / scanning -> export -> report

Public API (imported lazily, so ``import genocnn`` is cheap)::

    read_fasta(path)                       -> iterator of (id, sequence)
    one_hot(sequences, length=None)        -> torch.Tensor (N, 4, L)
    train(pos, neg=None, out=..., ...)     -> Run
    load_model(run_dir)                    -> ConvNet
    predict(model, fasta_or_sequences)     -> pandas.DataFrame
    extract_motifs(model, sequences)       -> list of Motif (PFM (4, w))
    write_motifs(motifs, path, format=...) -> None
    variant_effects(model, vcf, genome)    -> pandas.DataFrame (one row per ALT allele)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "GenocnnError": "errors",
    "read_fasta": "fasta",
    "write_fasta": "fasta",
    "one_hot": "encode",
    "reverse_complement": "encode",
    "Config": "config",
    "load_config": "config",
    "build_model": "models",
    "train": "training",
    "Run": "training",
    "load_model": "checkpoint",
    "predict": "prediction",
    "Motif": "pwm",
    "trim": "pwm",
    "extract_motifs": "motifs",
    "filter_influence": "motifs",
    "write_motifs": "motif_io",
    "read_motifs": "motif_io",
    "jaspar_motifs": "compare",
    "name_motifs": "compare",
    "name_table": "naming",
    "tomtom_matches": "compare",
    "export_motifs": "export",
    "write_report": "report",
    "cluster_motifs": "compare",
    "nullification_effects": "motifs",
    "write_logos": "logos",
    "scan": "scanning",
    "call_sites": "sites",
    "scan_genome": "scanning",
    "simulate": "simulation",
    "simulate_multitask": "simulation",
    "attribute": "attribution",
    "ism": "attribution",
    "gradient_x_input": "attribution",
    "attribution_motifs": "seqlets",
    "variant_effects": "variants",
    "write_variant_effects": "variant_files",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'genocnn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
