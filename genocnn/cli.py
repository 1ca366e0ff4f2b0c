"""Command line: a thin typer layer over the Python API.

Every user mistake surfaces as one line on stderr and exit status 2.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import GenocnnError

app = typer.Typer(
    help="Train CNNs on DNA to predict TF binding and export the motifs they learn.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _user_errors(command):
    """Turn GenocnnError into one stderr line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GenocnnError as exc:
            typer.echo(f"genocnn: error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


DEVICE_HELP = "auto (CUDA with mixed precision when present), cpu, cuda, cuda:N or mps"


@app.command()
@_user_errors
def train(
    pos: Path = typer.Option(..., "--pos", help="FASTA (.gz ok) of bound sequences, e.g. ChIP-seq peaks."),
    out: Path = typer.Option(..., "--out", help="Run directory to write."),
    neg: Optional[Path] = typer.Option(None, "--neg", help="FASTA of unbound sequences [default: dinucleotide-shuffled positives]."),
    config: Optional[str] = typer.Option(None, "--config", help="Preset name (see configs/) or YAML file."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override training.epochs."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override training.seed."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Train a binding model; writes model.pt, config.yaml, history.tsv, metrics.json."""
    from .train import train as run_training

    run = run_training(pos, neg, out, config, epochs, seed, device, progress=not quiet)
    typer.echo(
        f"test AUROC {run.metrics['auroc']:.4f}  AUPRC {run.metrics['auprc']:.4f}  "
        f"({run.metrics['n_test']} held-out sequences); run written to {run.run_dir}"
    )


@app.command()
@_user_errors
def predict(
    run: Path = typer.Argument(..., help="Run directory from `genocnn train`."),
    seqs: Path = typer.Argument(..., help="FASTA (.gz ok) of sequences to score."),
    out: Path = typer.Option(..., "--out", help="TSV to write: id, then one probability column per task."),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """Predict binding probabilities for every sequence of a FASTA file."""
    from .atomic import atomic_open
    from .predict import predict as run_predict
    from .train import load_model

    table = run_predict(load_model(run, device), seqs, batch_size)
    with atomic_open(out) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    typer.echo(f"{len(table)} predictions written to {out}")


@app.command()
@_user_errors
def motifs(
    run: Path = typer.Argument(..., help="Run directory from `genocnn train`."),
    seqs: Path = typer.Argument(..., help="FASTA of sequences whose windows make the motifs (usually the bound ones)."),
    out: Path = typer.Option(..., "--out", help="Directory for motifs.meme/.jaspar/.transfac and filters.tsv."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Fraction of a filter's max activation [default: from the run config, 0.5]."),
    min_sites: Optional[int] = typer.Option(None, "--min-sites", help="Skip filters with fewer windows [default: from the run config]."),
    db: Optional[Path] = typer.Option(None, "--db", help="MEME file to name motifs against [default: JASPAR CORE vertebrates]."),
    top: int = typer.Option(5, "--top", help="How many motifs to print."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
) -> None:
    """Turn first-layer filters into motifs, rank them by influence and name them against JASPAR."""
    from .report import export_motifs
    from .train import load_model

    table = export_motifs(load_model(run, device), seqs, out, threshold, min_sites, db)
    exported = table[table["status"] == "exported"]
    typer.echo(f"{len(exported)} motifs written to {out}/ ({len(table) - len(exported)} filters skipped)")
    shown = exported.head(top)[["motif", "influence", "consensus", "jaspar_id", "jaspar_name", "p_value"]]
    if len(shown):
        typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


@app.command()
@_user_errors
def simulate(
    out: Path = typer.Option(..., "--out", help="Directory for pos.fa, neg.fa, truth.tsv and motif.meme."),
    tf: str = typer.Option("CTCF", "--tf", help="JASPAR matrix id or TF name planted in bound sequences."),
    n: int = typer.Option(2000, "--n", min=1, help="Bound and unbound sequences (each)."),
    length: int = typer.Option(200, "--length", min=1),
    site_fraction: float = typer.Option(1.0, "--site-fraction", min=0.0, max=1.0, help="Bound sequences that get a site."),
    decoys: Optional[str] = typer.Option(None, "--decoys", help="Comma-separated JASPAR ids/names planted in all sequences, '' for none [default: GATA1, SP1, SPI1, CEBPA]."),
    decoy_rate: float = typer.Option(0.5, "--decoy-rate", min=0.0, max=1.0),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Make labelled example data by planting a real JASPAR motif in random background."""
    from .simulate import DEFAULT_DECOYS
    from .simulate import simulate as run_simulation

    decoy_ids = DEFAULT_DECOYS if decoys is None else tuple(d for d in decoys.split(",") if d)
    sim = run_simulation(out, tf, n, length, site_fraction, decoy_ids, decoy_rate, seed=seed)
    typer.echo(f"planted {sim.motif.name} {sim.motif.description}; wrote {sim.pos}, {sim.neg}, {sim.truth}, {sim.motifs}")


@app.command()
@_user_errors
def scan(
    run: Path = typer.Argument(..., help="Run directory from `genocnn train`."),
    genome: Path = typer.Argument(..., help="FASTA (.gz ok) of long sequences, e.g. a genome; every record is scanned."),
    out: Path = typer.Option(..., "--out", help="BED6 of called sites to write."),
    threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0, help="Probability a window needs to be part of a site."),
    stride: int = typer.Option(1, "--stride", min=1, help="Score every stride-th window start (1: every position)."),
    task: Optional[str] = typer.Option(None, "--task", help="Task to call sites on [default: the first]."),
    bedgraph: Optional[Path] = typer.Option(None, "--bedgraph", help="Also write the per-position probability track."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Windows per batch (models without global pooling)."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Score every window along long sequences and write the called sites as BED."""
    from .scan import scan_genome
    from .train import load_model

    sites = scan_genome(load_model(run, device), genome, out, threshold, stride, task, bedgraph, batch_size,
                        progress=not quiet)
    track = f" and the track to {bedgraph}" if bedgraph is not None else ""
    typer.echo(f"{len(sites)} sites written to {out}{track}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="genocnn")


if __name__ == "__main__":
    sys.exit(main())
