"""Command line: a thin typer layer over the Python API.

Every user mistake surfaces as one line on stderr and exit status 2.
"""

from __future__ import annotations

import functools
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

from .atomic import check_outputs
from .errors import GenocnnError, as_flags

app = typer.Typer(
    help="Train CNNs on DNA to predict TF binding and export the motifs they learn.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


#: Library parameters whose command-line flag is spelt differently.
FLAGS = {"overrides": "--set"}


def _main_rank() -> bool:
    """Rank 0 of a torchrun job, or no job at all (read from the environment: no torch import)."""
    import os

    return os.environ.get("RANK", "0") == "0"


def _user_errors(command):
    """Turn GenocnnError into one stderr line (parameter names as flags) and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GenocnnError as exc:
            if _main_rank():  # under torchrun every rank meets the same mistake: rank 0 says it
                typer.echo(f"genocnn: error: {as_flags(str(exc), FLAGS)}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM through main(): temporary outputs are already removed
            if _main_rank():
                typer.echo("genocnn: interrupted; nothing half-written was left", err=True)
            raise typer.Exit(130) from None

    return wrapper


def _check_seed(seed: int | None) -> None:
    from .config import MAX_SEED

    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise GenocnnError(f"--seed must be between 0 and {MAX_SEED}, got {seed}")


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"genocnn {__version__}")
        raise typer.Exit()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one ``genocnn: warning:`` line; other libraries' as Python prints them."""
    if Path(filename).resolve().parent == Path(__file__).resolve().parent:
        typer.echo(f"genocnn: warning: {message}", err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


@app.callback()
def _main(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Train CNNs on DNA to predict TF binding and export the motifs they learn."""
    ctx.with_resource(warnings.catch_warnings())  # restored when the command ends
    warnings.showwarning = _show_warning


DEVICE_HELP = "auto (CUDA when present), cpu, cuda, cuda:N or mps"


@app.command()
@_user_errors
def prepare(
    out: Path = typer.Option(..., "--out", help="Store folder to write (replaced if it is a store)."),
    fasta: Optional[Path] = typer.Option(None, "--fasta", help="FASTA of all sequences, with --labels."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="TSV: id, then one 0/1/NA column per task."),
    pos: Optional[Path] = typer.Option(None, "--pos", help="FASTA of bound sequences."),
    neg: Optional[Path] = typer.Option(None, "--neg", help="FASTA of unbound sequences.  [default: dinucleotide shuffles of --pos]"),
    bed: Optional[Path] = typer.Option(None, "--bed", help="BED/narrowPeak of bound regions (needs --genome)."),
    genome: Optional[Path] = typer.Option(None, "--genome", help="Genome FASTA for --bed."),
    length: Optional[int] = typer.Option(None, "--length", help="Sequence length L.  [default: the longest, capped at 1000; BED: the median interval]"),
    seed: int = typer.Option(0, "--seed", help="Seed of shuffled or GC-matched negatives."),
    negatives: Optional[str] = typer.Option(None, "--negatives", help="With --bed: gc (GC-matched genomic windows) or shuffle (dinucleotide shuffles).  [default: gc]"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="With --bed: skip bad BED lines (counted on stderr) instead of failing."),
) -> None:
    """Encode sequences once into a memory-mapped store (1 byte a base) for `train --store`."""
    from .store import build_store, open_store

    _check_seed(seed)
    if length is not None and length < 1:
        raise GenocnnError(f"--length must be >= 1, got {length}")
    path = build_store(out, fasta=fasta, labels=labels, pos=pos, neg=neg, bed=bed, genome=genome,
                       length=length, seed=seed, negatives=negatives or "gc", skip_bad=skip_bad)
    data = open_store(path)
    typer.echo(f"wrote {path}: {len(data)} sequences of length {data.length}, {len(data.tasks)} task(s)")


@app.command()
@_user_errors
def train(
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to write.  [required unless --resume]"),
    pos: Optional[Path] = typer.Option(None, "--pos", help="FASTA (.gz ok) of bound sequences, e.g. ChIP-seq peaks."),
    neg: Optional[Path] = typer.Option(None, "--neg", help="FASTA of unbound sequences.  [default: dinucleotide shuffles of --pos]"),
    fasta: Optional[Path] = typer.Option(None, "--fasta", help="FASTA of all sequences, for multi-task --labels."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="TSV: id, then one 0/1/NA column per task."),
    config: Optional[str] = typer.Option(None, "--config", help="Preset name (see `genocnn config list`) or YAML file.  [default: default]"),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Config override, e.g. --set training.lr=3e-4 (repeatable).", show_default=False),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Maximum epochs (early stopping may end sooner).  [default: training.epochs of the config, 60]"),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the split, the shuffles and the weights.  [default: training.seed of the config, 0]"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory from its last.pt."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty --out, deleting the files of the run already there first."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    bed: Optional[Path] = typer.Option(None, "--bed", help="BED/narrowPeak of bound regions, re-centred on summit or midpoint (needs --genome)."),
    genome: Optional[Path] = typer.Option(None, "--genome", help="Genome FASTA, plain or bgzip (not plain gzip); .fai built beside it."),
    negatives: Optional[str] = typer.Option(None, "--negatives", help="With --bed: gc (GC-matched genomic windows) or shuffle (dinucleotide shuffles).  [default: gc]"),
    valid_chroms: Optional[str] = typer.Option(None, "--valid-chroms", help="With --bed: comma-separated chromosomes held out for validation, e.g. chr8,chr9.  [default: a random stratified split]"),
    test_chroms: Optional[str] = typer.Option(None, "--test-chroms", help="With --bed: comma-separated chromosomes held out for the test metrics, e.g. chr10,chr11.  [default: a random stratified split]"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip bad BED lines (counted on stderr) instead of failing."),
    store: Optional[Path] = typer.Option(None, "--store", help="A store made by `genocnn prepare`, instead of input files."),
) -> None:
    """Train a binding model; writes model.pt, last.pt, config.yaml, history.tsv, metrics.json, run.json."""
    from .training import train as run_training

    if resume is not None and out is not None and Path(out).resolve() != Path(resume).resolve():
        raise GenocnnError(f"--resume {resume} and --out {out} name different runs")
    out = resume if resume is not None else out
    if out is None:
        raise GenocnnError("--out is required (the run directory to write)")
    if epochs is not None and epochs < 1:
        raise GenocnnError(f"--epochs must be >= 1, got {epochs}")
    _check_seed(seed)
    held = [[c.strip() for c in (names or "").split(",") if c.strip()] for names in (valid_chroms, test_chroms)]
    last = Path(out) / "last.pt"
    before = last.stat().st_mtime_ns if last.is_file() else None  # an old run's (--force), or this one's (--resume)
    try:
        run = run_training(
            pos, neg, out, config, epochs, seed, device, progress=not quiet,
            fasta=fasta, labels=labels, overrides=set_, resume=resume is not None, force=force, command=sys.argv,
            bed=bed, genome=genome, negatives=negatives, skip_bad=skip_bad,
            valid_chroms=held[0], test_chroms=held[1], store=store,
        )
    except KeyboardInterrupt:
        if not _main_rank():
            raise typer.Exit(130) from None  # rank 0 says what is left
        saved = last.is_file() and (resume is not None or last.stat().st_mtime_ns != before)
        if saved:  # not the old run's last.pt that --force had yet to clear
            typer.echo(f"genocnn: interrupted; the finished epochs are kept: continue with "
                       f"`genocnn train --resume {out}`", err=True)
            raise typer.Exit(130) from None
        raise
    if _main_rank():
        typer.echo(run.stopping)
        per_task = run.metrics["tasks"]
        if len(per_task) > 1:
            for name, m in per_task.items():
                typer.echo(f"{name}: test AUROC {m['auroc']:.4f}  AUPRC {m['auprc']:.4f}")
        typer.echo(
            f"test AUROC {run.metrics['auroc']:.4f}  AUPRC {run.metrics['auprc']:.4f}  "
            f"({run.metrics['n_test']} held-out sequences); run written to {run.run_dir}"
        )


config_app = typer.Typer(help="Show the configuration presets.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
@_user_errors
def config_show(
    preset: str = typer.Argument("default", help="Preset name or YAML file."),
    set_: list[str] = typer.Option([], "--set", metavar="KEY=VALUE", help="Override to apply before printing (repeatable).", show_default=False),
) -> None:
    """Print a preset (or file) as the full YAML config, overrides applied."""
    from .config import apply_overrides, dump_config, load_config

    typer.echo(dump_config(apply_overrides(load_config(preset), set_)), nl=False)


@config_app.command("list")
def config_list() -> None:
    """List the presets shipped in configs/."""
    from .config import preset_names

    for name in preset_names():
        typer.echo(name)


@app.command()
@_user_errors
def predict(
    run: Path = typer.Argument(..., help="Run directory from `genocnn train`."),
    seqs: Optional[Path] = typer.Argument(None, help="FASTA (.gz ok) of sequences to score, or a store from `genocnn prepare` (or give --bed and --genome)."),
    out: str = typer.Option(..., "--out", help="TSV to write: id, then one probability column per task."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Sequences per batch."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    bed: Optional[Path] = typer.Option(None, "--bed", help="Score the model-length window around each interval of this BED/narrowPeak (needs --genome); ids are chrom:start-end."),
    genome: Optional[Path] = typer.Option(None, "--genome", help="Genome FASTA (plain or bgzip) for --bed."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip bad BED lines (counted on stderr) instead of failing."),
) -> None:
    """Predict binding probabilities for every sequence of a FASTA file, or every interval of a BED."""
    from .atomic import atomic_open
    from .prediction import predict as run_predict, predict_codes
    from .checkpoint import load_model
    from .store import is_store, open_store

    if (bed is None) != (genome is None):
        raise GenocnnError("--bed and --genome go together")
    if (seqs is None) == (bed is None):
        raise GenocnnError("give either a FASTA of sequences or --bed and --genome")
    check_outputs({"--out": out}, {"SEQS": seqs, "--bed": bed, "--genome": genome}, run)
    model = load_model(run, device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        if bed is not None:
            from .genome import peak_windows

            windows = peak_windows(bed, genome, model.length, skip_bad)
            for note in windows.notes:
                typer.echo(f"genocnn: {note}", err=True)
            table = run_predict(model, list(zip(windows.ids, windows.sequences)), batch_size, progress=True)
        elif is_store(seqs):
            table = predict_codes(model, open_store(seqs), batch_size, progress=True)
        else:
            table = run_predict(model, seqs, batch_size, progress=True)
    for w in caught:
        typer.echo(f"genocnn: warning: {w.message}", err=True)
    with atomic_open(out) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    masked = int(table["mostly_n"].sum())
    note = f" ({masked} mostly N or padding: column mostly_n)" if masked else ""
    typer.echo(f"{len(table)} predictions written to {out}{note}")


@app.command()
@_user_errors
def motifs(
    run: Path = typer.Argument(..., help="Run directory from `genocnn train`."),
    seqs: Path = typer.Argument(..., help="FASTA of sequences whose windows make the motifs (usually the bound ones), or a store from `genocnn prepare` (its rows bound in any task, at most 20,000)."),
    out: Path = typer.Option(..., "--out", help="Directory for motifs.meme/.jaspar/.transfac/.motif (HOMER), filters.tsv, logos/ and report.html."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Fraction of a filter's max activation a window needs to count as a site.  [default: motifs.threshold of the run config, 0.5]"),
    min_sites: Optional[int] = typer.Option(None, "--min-sites", help="Skip filters with fewer windows.  [default: motifs.min_sites of the run config, 10]"),
    db: Optional[Path] = typer.Option(None, "--db", help="Motif file (MEME/JASPAR/TRANSFAC/HOMER) to name motifs against.  [default: JASPAR CORE of --jaspar-release and --tax-group]"),
    jaspar_release: Optional[str] = typer.Option(None, "--jaspar-release", help="JASPAR release, e.g. JASPAR2022.  [default: the latest pyjaspar ships]"),
    tax_group: str = typer.Option("vertebrates", "--tax-group", help="JASPAR taxonomic group (vertebrates, insects, plants, fungi, nematodes, urochordates, ...) or 'all'."),
    top: int = typer.Option(5, "--top", min=0, help="How many filter motifs to print."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Turn first-layer filters into motifs, rank them by influence, name them against JASPAR, cluster them, draw logos and an HTML report.

    Influence is the drop of the predicted probability when a filter is
    nullified; loss_change treats every given sequence as bound (label 1).
    """
    from .batches import codes_one_hot
    from .export import export_motifs
    from .report import REPORT_FILE, cluster_sentence
    from .checkpoint import load_model
    from .data import bound_rows
    from .store import MOTIF_ROWS, is_store, open_store

    group = None if tax_group.lower() == "all" else tax_group
    if out.resolve() in (Path.cwd().resolve(), run.resolve()):
        raise GenocnnError(f"--out {out}: give a directory of its own for the motifs, not "
                           + ("the current directory" if out.resolve() == Path.cwd().resolve() else "the run directory"))
    model = load_model(run, device)
    if is_store(seqs):  # a store: its bound rows (any task), at most MOTIF_ROWS evenly spaced
        data = open_store(seqs)
        seqs = codes_one_hot(data, bound_rows(data, MOTIF_ROWS))
    table = export_motifs(model, seqs, out, threshold, min_sites, db,
                          run_dir=run, release=jaspar_release, tax_group=group, progress=not quiet)
    exported = table[table["status"] == "exported"]
    distinct = table.attrs["clusters"]
    typer.echo(f"{len(distinct)} distinct motifs (clusters.tsv, clusters.meme, ...):")
    if len(distinct):
        typer.echo(distinct[["rank", "motif", "width", "sites", "influence", "consensus", "jaspar_name",
                             "name_level"]].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    typer.echo(f"{len(exported)} filter motifs written to {out}/ ({len(table) - len(exported)} filters skipped)")
    typer.echo(cluster_sentence(table))
    named = exported["jaspar_name"].fillna("") != ""
    source = " ".join(exported[["jaspar_release", "jaspar_collection"]].iloc[0]) if len(exported) else ""
    typer.echo(f"{int(named.sum())} of {len(exported)} motifs named (calibrated rule) against {source}")
    shown = exported.head(top)[["motif", "influence", "cluster", "consensus", "jaspar_name", "name_level",
                                "jaspar_id", "e_value"]]
    if len(shown):
        typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    typer.echo(f"report: {out / REPORT_FILE}")

@app.command()
@_user_errors
def simulate(
    out: Path = typer.Option(..., "--out", help="Directory for pos.fa, neg.fa, truth.tsv and motif.meme."),
    tf: str = typer.Option("CTCF", "--tf", help="JASPAR matrix id or TF name planted in bound sequences."),
    n: int = typer.Option(2000, "--n", min=1, help="Bound and unbound sequences (each)."),
    length: int = typer.Option(200, "--length", min=1, help="Sequence length (bp)."),
    site_fraction: float = typer.Option(1.0, "--site-fraction", min=0.0, max=1.0, help="Bound sequences that get a site."),
    decoys: Optional[str] = typer.Option(None, "--decoys", help="Comma-separated JASPAR ids/names planted in all sequences, '' for none.  [default: GATA1,SP1,SPI1,CEBPA]"),
    decoy_rate: float = typer.Option(0.5, "--decoy-rate", min=0.0, max=1.0, help="Chance of each decoy in each sequence."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulation."),
    tfs: Optional[str] = typer.Option(None, "--tfs", help="Comma-separated TFs: multi-task data (seqs.fa + labels.tsv, --n sequences, 0-3 sites each) instead of pos/neg."),
) -> None:
    """Make labelled example data by planting real JASPAR motifs in random background."""
    from .simulation import DEFAULT_DECOYS, simulate_multitask
    from .simulation import simulate as run_simulation

    _check_seed(seed)
    run_files = [name for name in ("model.pt", "last.pt", "run.json") if (out / name).exists()]
    if run_files:
        raise GenocnnError(f"--out {out} holds a training run ({', '.join(run_files)}); write the data to another folder")
    if tfs is not None:
        multi = simulate_multitask(out, tuple(t.strip() for t in tfs.split(",") if t.strip()), n, length, seed=seed)
        names = ", ".join(f"{m.name} {m.description}" for m in multi.planted)
        typer.echo(f"planted {names}; wrote {multi.fasta}, {multi.labels}, {multi.motifs}")
        return

    decoy_ids = DEFAULT_DECOYS if decoys is None else tuple(d for d in decoys.split(",") if d)
    sim = run_simulation(out, tf, n, length, site_fraction, decoy_ids, decoy_rate, seed=seed)
    typer.echo(f"planted {sim.motif.name} {sim.motif.description}; wrote {sim.pos}, {sim.neg}, {sim.truth}, {sim.motifs}")


@app.command()
@_user_errors
def scan(
    run: Path = typer.Argument(..., help="Run directory from `genocnn train`."),
    genome: Path = typer.Argument(..., help="FASTA (.gz ok) of long sequences, e.g. a genome; every record is scanned."),
    out: str = typer.Option(..., "--out", help="BED6 of called sites to write (.narrowPeak: with summits)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", min=0.0, max=1.0, help="Probability a window needs to be part of a site.  [default: the threshold of --fpr]"),
    fpr: Optional[float] = typer.Option(None, "--fpr", help="False calls per Mbp of shuffled background to call sites at, by the model's calibration.  [default: 1]"),
    stride: int = typer.Option(1, "--stride", min=1, help="Score every stride-th window start (1: every position)."),
    task: Optional[str] = typer.Option(None, "--task", help="Task to call sites on.  [default: the first task of the model]"),
    bedgraph: Optional[str] = typer.Option(None, "--bedgraph", help="Also write the per-position probability track."),
    bigwig: Optional[str] = typer.Option(None, "--bigwig", help="Also write the track as bigWig (needs pyBigWig)."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Windows per batch (models without global pooling)."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads (on shared cores fewer can be faster).  [default: the cores this process may use, or OMP_NUM_THREADS]"),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Score every window along long sequences and write the called sites as BED.

    Under torchrun the genome's chunks are shared among the processes and rank 0 writes the merged outputs.
    """
    from .checkpoint import load_model
    from .devices import Distributed, cpu_threads, resolve_device
    from .scanning import scan_genome

    check_outputs({"--out": out, "--bedgraph": bedgraph, "--bigwig": bigwig}, {"GENOME": genome}, run)
    dist = Distributed()
    try:
        dev = dist.setup(resolve_device(device))
        cpu_threads(threads, share=dist.world)
        sites = scan_genome(load_model(run, dev), genome, out, threshold, stride, task, bedgraph, batch_size,
                            progress=not quiet, bigwig=bigwig, fpr=fpr, dist=dist)
    finally:
        dist.close()
    if not dist.is_main:
        return
    tracks = " and ".join(str(p) for p in (bedgraph, bigwig) if p is not None)
    track = f" and the track to {tracks}" if tracks else ""
    typer.echo(f"{len(sites)} sites ({sites.attrs['threshold_source']}) written to {out}{track}")


@app.command()
@_user_errors
def attribute(
    run: Path = typer.Argument(..., help="Run directory from `genocnn train`."),
    seqs: Path = typer.Argument(..., help="FASTA (.gz ok) of sequences to explain (usually bound ones)."),
    out: Path = typer.Option(..., "--out", help="Directory for attributions.npz, logos/, seqlet_motifs.meme/.jaspar/.transfac/.motif, seqlets.tsv."),
    method: str = typer.Option("ism", "--method", help="ism (in-silico mutagenesis) or grad (gradient x input, mean-gradient corrected)."),
    max_seqs: Optional[int] = typer.Option(None, "--max-seqs", min=1, help="Only the first N sequences.  [default: all]"),
    plot: int = typer.Option(5, "--plot", min=0, help="Draw contribution logos for the first K sequences."),
    task: Optional[str] = typer.Option(None, "--task", help="Task to explain.  [default: the first task of the model]"),
    db: Optional[Path] = typer.Option(None, "--db", help="Motif file (MEME/JASPAR/TRANSFAC/HOMER) to name motifs against.  [default: JASPAR CORE vertebrates]"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Explain predictions base by base and cluster high-contribution seqlets into motifs."""
    from .attribution_files import export_attributions
    from .checkpoint import load_model

    table = export_attributions(load_model(run, device), seqs, out, method, task or 0, max_seqs, plot, db,
                                progress=not quiet)
    typer.echo(f"{len(table)} seqlet motifs written to {out}/")
    shown = table[["motif", "seqlets", "consensus", "jaspar_name", "name_level", "jaspar_id", "e_value"]]
    if len(shown):
        typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


@app.command()
@_user_errors
def variants(
    run: Path = typer.Argument(..., help="Run directory from `genocnn train`."),
    vcf: Path = typer.Option(..., "--vcf", help="VCF of variants, plain or bgzip/gzip; one row per ALT allele."),
    genome: Path = typer.Option(..., "--genome", help="Genome FASTA (plain or bgzip) the VCF was called against."),
    out: str = typer.Option(..., "--out", help="TSV to write: chrom, pos, id, ref, alt, ref_match, mostly_n, then ref_/alt_/diff_/logfc_<task> (empty where mostly_n)."),
    out_vcf: Optional[str] = typer.Option(None, "--out-vcf", help="Also write the VCF with the scores as INFO fields (.gz: bgzip).  [default: no VCF]"),
    null: int = typer.Option(0, "--null", min=0, help="Random context-matched SNVs per substitution class for an empirical p-value (0: none)."),
    skip_ref_mismatch: bool = typer.Option(False, "--skip-ref-mismatch", help="Skip alleles whose REF differs from the genome.  [default: score them from the genome's bases]"),
    top: int = typer.Option(10, "--top", min=0, help="Draw REF/ALT ISM logos of the K variants with the largest |logfc| into <out stem>_logos/."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Windows per forward pass.  [default: 4096 on a GPU, 128 on the CPU]"),
    seed: int = typer.Option(0, "--seed", help="Seed of the null."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Score how each SNV or indel of a VCF changes the predicted binding (REF vs ALT window)."""
    from .checkpoint import load_model
    from .variant_files import write_variant_effects

    check_outputs({"--out": out, "--out-vcf": out_vcf}, {"--vcf": vcf, "--genome": genome}, run)
    _check_seed(seed)
    res = write_variant_effects(load_model(run, device), vcf, genome, out, out_vcf, null, skip_ref_mismatch, top,
                                batch_size, seed=seed, progress=not quiet)
    for note in res.notes:
        typer.echo(f"genocnn: {as_flags(note, FLAGS)}", err=True)
    skipped = ", ".join(f"{n} {why}" for why, n in res.skipped.items())
    typer.echo(f"{res.scored} alleles of {res.records} VCF records scored, written to {out}"
               + (f" and {out_vcf}" if out_vcf else "") + (f"; skipped: {skipped}" if skipped else ""))
    if len(res.top):
        logfc = [c for c in res.top.columns if c.startswith("logfc_")]
        typer.echo(res.top[["chrom", "pos", "id", "ref", "alt", *logfc]].head(5).to_string(
            index=False, float_format=lambda v: f"{v:.3g}"))
        typer.echo(f"ISM logos of the top {len(res.logos)}: {res.logos[0].parent}/")


def _interrupted(signum, frame):
    raise KeyboardInterrupt  # SIGTERM unwinds as Ctrl-C does: temporary outputs are removed


def _click_errors() -> tuple[type, type, type | tuple]:
    """click's ``UsageError``, ``ClickException`` and ``NoArgsIsHelpError`` (or ``()`` where click has none),
    from whichever click typer uses: its own copy (typer 0.2x) or the click package."""
    mro = typer.BadParameter.__mro__
    usage = next(c for c in mro if c.__name__ == "UsageError")
    base = next(c for c in mro if c.__name__ == "ClickException")
    return usage, base, getattr(sys.modules[usage.__module__], "NoArgsIsHelpError", ())


def main() -> None:
    """Console-script entry point: click's usage errors, too, as one ``genocnn: error:`` line (exit 2)."""
    import signal

    signal.signal(signal.SIGTERM, _interrupted)
    usage_error, click_error, no_args = _click_errors()
    try:
        code = app(prog_name="genocnn", standalone_mode=False)
    except no_args as exc:  # `genocnn` alone: the help
        exc.show()
        sys.exit(exc.exit_code)
    except usage_error as exc:  # a bad option value, a missing argument, an unknown command
        where = exc.ctx.command_path if exc.ctx is not None else "genocnn"
        typer.echo(f"genocnn: error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(2)
    except click_error as exc:
        typer.echo(f"genocnn: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
