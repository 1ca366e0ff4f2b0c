"""Golden outputs: predict, scan, motifs and attribute on a committed tiny model must not change.

Each case of ``tests/golden/make_golden.py`` (:data:`CASES`) runs one CLI
command, in-process through typer's CliRunner, on the committed model
(``tests/golden/run/``) and inputs (``tests/golden/inputs/``), and compares
the files it writes with ``tests/golden/expected/<case>/``. Nothing is
trained here: training is not bit-reproducible across thread counts and
machines, so the model itself is part of the golden data.

Cases
-----
============== ==================================================================================
predict        ``predict`` of 42 sequences (bound, unbound, reverse-complement and half sites,
               short/padded and long/centre-cropped, soft-masked, N runs, IUPAC codes, U),
               batch size 16: ``predictions.tsv``
scan           ``scan`` of a 20 kbp genome (3 records, one shorter than the model; sites on
               both strands, an N run, a soft-masked stretch): ``sites.bed`` and the
               per-position ``track.bedGraph`` (stored gzipped)
scan_gzip      the same genome gzipped (not indexable: read_fasta, not pyfaidx): the very
               files of ``scan``
scan_stride    ``scan --stride 7 --threshold 0.3``: ``sites.bed``, ``track.bedGraph``
motifs         ``motifs`` on the 300 bound training sequences against JASPAR2024 CORE
               vertebrates (pinned release): ``filters.tsv`` (influence, loss change, Tomtom
               names, clusters) and ``motifs.meme/.jaspar/.transfac/.motif``
motifs_strict  ``motifs --threshold 0.75 --min-sites 150``: the same files, with skipped filters
attribute_ism  ``attribute --max-seqs 40 --db inputs/db.meme`` (ISM): ``attributions.npz``,
               ``seqlets.tsv`` and ``seqlet_motifs.meme/.jaspar/.transfac/.motif``
attribute_grad the same with ``--method grad`` (captum, corrected gradient x input)
============== ==================================================================================

Logos, PNGs and ``report.html`` are not compared (they are not golden material).

What is exact, what has a tolerance
-----------------------------------
* Exact (same text): every id, name, string and integer column of the tables
  (``id``; BED ``chrom start end name score strand``; bedGraph ``chrom start
  end``; ``filter motif sites consensus cluster jaspar_id jaspar_name offset
  orientation other_matches status``; ``seqlets sign width`` ...), the header
  rows, the number of rows, the ``ids`` and ``one_hot`` arrays of the
  ``.npz`` files, and in motif files every word (names, descriptions, keywords)
  and the line structure.
* Tolerance, because a refactor may reorder float reductions (and thread
  counts change float rounding): float columns of the tables (whose printed
  precision, the most significant digits in the column, must stay the same)
  are compared with
  ``rtol = max(1e-4, 1.5 units of the last digit the file prints)`` and
  ``atol = 1e-6`` (:data:`TABLES`: predictions print ``%.6g`` -> rtol 1e-4;
  bedGraph ``%.5g`` -> 1.5e-4; ``filters.tsv``/``seqlets.tsv`` ``%.4g`` ->
  1.5e-3); numbers in motif files with ``rtol = 1e-6, atol = 1e-7`` (counts are
  exact sums of one-hot windows; probabilities print 8 decimals); the
  ``attributions`` arrays with ``rtol = 1e-4, atol = 1e-5`` (float32 logit
  differences).
* Discrete results that hang on floats (which windows pass a threshold, the
  BED score ``round(1000 p)``, motif order by influence, Tomtom cluster links,
  seqlet calls) are compared exactly: on the committed data none is within
  float noise of its cutoff (checked when the files were made: window
  probabilities are >= 1.7e-4 from the scan thresholds, site maxima >= 1.8e-6
  (~30 float32 steps) from a BED score rounding edge, filter activations
  >= 3e-5 x peak from the motif cutoffs (hence ``motifs.threshold: 0.55`` in
  the run config: at 0.5 one window sat 9e-7 x peak from it), window sums
  >= 5e-5 (relative) from the seqlet threshold, cluster p-values a factor
  >= 2.2 from 1e-4), so a change there is a real change.

When may the golden files be regenerated?
-----------------------------------------
Only when an output is *meant* to change: a deliberate change of a
computation, a default or a file format, in the same commit as that change,
with the reason in its message and after reading the diff of
``tests/golden/expected/`` (the tables are plain text). Never to make a
refactor pass: code that is only moved or reorganised must pass with the files
as they are. A dependency upgrade (torch, numpy, memelite, pyjaspar,
biopython) that moves numbers beyond the tolerances may regenerate too, naming
the versions. To regenerate::

    python tests/golden/make_golden.py             # expected/ from the committed run and inputs
    python tests/golden/make_golden.py --retrain   # only if model.pt can no longer be loaded:
                                                   # new inputs, new model, every file changes

The generator must run on the code whose outputs are pinned (a clean checkout
of the commit, not a working tree in the middle of an edit).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def _load_generator():
    spec = importlib.util.spec_from_file_location("golden_make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


make_golden = _load_generator()
CASES = make_golden.CASES
#: Cases that take over ~5 s: Tomtom (numba-compiled on a cold cache) and the motif/attribution pipelines.
SLOW = {"motifs", "motifs_strict", "attribute_ism", "attribute_grad"}


@dataclass(frozen=True)
class Table:
    """How to read and compare one tab-separated output file."""

    floats: tuple[str, ...]  # compared with a tolerance; every other column as exact text
    rtol: float
    atol: float = 1e-6
    names: tuple[str, ...] | None = None  # None: the file has a header row
    first_line: str | None = None  # a line before the table, compared exactly


def _printed(digits: int) -> float:
    """rtol for a float printed with ``%.{digits}g``: 1.5 units of its last digit, at least 1e-4."""
    return max(1e-4, 1.5 * 10.0 ** (1 - digits))


TABLES = {
    "predictions.tsv": Table(("bound",), _printed(6)),
    "sites.bed": Table((), 0.0, names=("chrom", "start", "end", "name", "score", "strand")),
    "track.bedGraph": Table(("value",), _printed(5), names=("chrom", "start", "end", "value"),
                            first_line="track type=bedGraph"),
    "filters.tsv": Table(("ic", "influence", "loss_change", "p_value", "q_value"), _printed(4)),
    "seqlets.tsv": Table(("ic", "p_value", "q_value"), _printed(4)),
}
MOTIF_RTOL, MOTIF_ATOL = 1e-6, 1e-7
ATTR_RTOL, ATTR_ATOL = 1e-4, 1e-5


# ---------------------------------------------------------------- comparisons


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()


def compare_table(got: Path, want: Path, spec: Table) -> None:
    got_text, want_text = _read_text(got), _read_text(want)
    if spec.first_line is not None:
        for text, which in ((got_text, "output"), (want_text, "expected")):
            assert text.split("\n", 1)[0] == spec.first_line, f"{which} {got.name}: first line"
        got_text, want_text = got_text.split("\n", 1)[1], want_text.split("\n", 1)[1]

    def read(text: str) -> pd.DataFrame:
        if not text.strip():  # an empty BED
            return pd.DataFrame({c: pd.Series(dtype=str) for c in spec.names or ()})
        header = None if spec.names else 0
        return pd.read_csv(io.StringIO(text), sep="\t", header=header, names=spec.names, dtype=str,
                           keep_default_na=False)

    g, w = read(got_text), read(want_text)
    assert list(g.columns) == list(w.columns), f"{got.name}: columns"
    assert len(g) == len(w), f"{got.name}: {len(g)} rows, {len(w)} expected"
    for column in w.columns:
        if column in spec.floats or column.startswith("influence_") and "influence" in spec.floats:
            a = pd.to_numeric(g[column].replace("", np.nan)).to_numpy(float)
            b = pd.to_numeric(w[column].replace("", np.nan)).to_numpy(float)
            np.testing.assert_allclose(a, b, rtol=spec.rtol, atol=spec.atol, equal_nan=True,
                                       err_msg=f"{got.name}: column {column}")
            assert _precision(g[column]) == _precision(w[column]), f"{got.name}: column {column} printed differently"
        else:
            differ = np.flatnonzero(g[column].to_numpy() != w[column].to_numpy())
            assert not len(differ), (
                f"{got.name}: column {column} differs in {len(differ)} rows, first row {differ[0]}: "
                f"{g[column].iloc[differ[0]]!r} != {w[column].iloc[differ[0]]!r}"
            )


def _precision(column: pd.Series) -> int:
    """Most significant digits printed in a column of numbers (a changed float format shows here)."""
    digits = [len(re.sub(r"[eE].*|[^0-9]", "", v).lstrip("0")) for v in column if v not in ("", "nan", "inf", "-inf")]
    return max(digits, default=0)


_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


def compare_motif_file(got: Path, want: Path) -> None:
    """Same lines and words; numbers within MOTIF_RTOL / MOTIF_ATOL."""
    g, w = _read_text(got).splitlines(), _read_text(want).splitlines()
    assert len(g) == len(w), f"{got.name}: {len(g)} lines, {len(w)} expected"
    for k, (line_g, line_w) in enumerate(zip(g, w), start=1):
        tokens_g, tokens_w = line_g.split(), line_w.split()
        where = f"{got.name}:{k}: {line_g!r} != {line_w!r}"
        assert len(tokens_g) == len(tokens_w), where
        for a, b in zip(tokens_g, tokens_w):
            if _NUMBER.match(a) and _NUMBER.match(b):
                assert abs(float(a) - float(b)) <= MOTIF_ATOL + MOTIF_RTOL * abs(float(b)), where
            else:
                assert a == b, where


def compare_npz(got: Path, want: Path) -> None:
    with np.load(got, allow_pickle=False) as g, np.load(want, allow_pickle=False) as w:
        assert sorted(g.files) == sorted(w.files), f"{got.name}: keys"
        for key in w.files:
            assert g[key].shape == w[key].shape and g[key].dtype == w[key].dtype, f"{got.name}: {key}"
        assert np.array_equal(g["ids"], w["ids"]), f"{got.name}: ids"
        assert np.array_equal(g["one_hot"], w["one_hot"]), f"{got.name}: one_hot"
        np.testing.assert_allclose(g["attributions"], w["attributions"], rtol=ATTR_RTOL, atol=ATTR_ATOL,
                                   err_msg=f"{got.name}: attributions")


def compare(got: Path, want: Path) -> None:
    name = got.name
    if name in TABLES:
        compare_table(got, want, TABLES[name])
    elif name.endswith(".npz"):
        compare_npz(got, want)
    elif name.endswith((".meme", ".jaspar", ".transfac", ".motif")):
        compare_motif_file(got, want)
    else:
        raise AssertionError(f"no comparison for {name}")


def expected_file(case, name: str) -> Path:
    folder = GOLDEN / "expected" / case.folder
    plain = folder / name
    return plain if plain.is_file() else folder / f"{name}.gz"


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """A scratch copy of inputs/ (pyfaidx writes genome.fa.fai beside the genome) plus genome.fa.gz."""
    return make_golden.stage_inputs(tmp_path_factory.mktemp("golden") / "inputs")


def test_golden_data_is_complete():
    """Every case has its expected files; the run holds what load_model and the report read."""
    for case in CASES.values():
        for name in case.files:
            assert expected_file(case, name).is_file(), f"{case.name}: {name} missing from expected/"
    for name in make_golden.RUN_FILES:
        assert (GOLDEN / "run" / name).is_file(), name
    total = sum(p.stat().st_size for p in GOLDEN.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert total < 1_000_000, f"tests/golden holds {total} bytes"


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES]
)
def test_golden(name, staged, tmp_path):
    case = CASES[name]
    out = tmp_path / "out"
    result = make_golden.run_case(case, staged, out)
    assert result.exit_code == 0, (result.output, result.exception)
    for file in case.files:
        got = out / file
        assert got.is_file(), f"{name}: {file} not written"
        compare(got, expected_file(case, file))
