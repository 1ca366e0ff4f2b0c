"""Property-based tests (hypothesis) of the readers and the one-hot encoder.

* Random valid records written the way real files come (line widths, CRLF,
  gzip, byte-order marks, R/pandas label spellings) read back as written.
* Random bytes give either records or :class:`GenocnnError`, never another
  exception: every user-facing reader keeps the one-error contract.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genocnn.data import read_labels
from genocnn.encode import decode, one_hot
from genocnn.errors import GenocnnError
from genocnn.fasta import DNA_LETTERS, read_fasta
from genocnn.genome import read_bed
from genocnn.motif_io import FORMATS, read_motifs, write_motifs
from genocnn.pwm import Motif

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Ids as tools write them: no whitespace, no quotes (a TSV reader may unquote them).
IDS = st.text(st.sampled_from("ABCXYZabcxyz0123456789_-.:|/+=>;#"), min_size=1, max_size=12)
SEQS = st.text(st.sampled_from(DNA_LETTERS), min_size=1, max_size=150)
RANDOM_BYTES = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b">" + b),  # looks like FASTA / a header at first
    st.lists(st.sampled_from([b">s", b"\n", b"\r\n", b"ACGT", b"\t", b"1", b"0", b"chr1", b"NA", b"-5", b"\xff",
                              b"\xef\xbb\xbf", b"MOTIF", b"P0", b"A  C  G  T", b"\x1f\x8b", b" "]),
             max_size=40).map(b"".join),
)


def _bytes_file(tmp_path, name: str, data: bytes, gz: bool = False):
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# ----------------------------------------------------------------------------------- FASTA


@FAST
@given(
    records=st.lists(st.tuples(IDS, SEQS), min_size=1, max_size=8, unique_by=lambda r: r[0]),
    width=st.integers(1, 80),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    gz=st.booleans(),
    description=st.sampled_from(["", " a description", "\tsource=x"]),
)
def test_fasta_round_trip(tmp_path, records, width, newline, bom, gz, description):
    lines = []
    for name, seq in records:
        lines.append(f">{name}{description}")
        lines += [seq[i : i + width] for i in range(0, len(seq), width)]
    text = ("\ufeff" if bom else "") + newline.join(lines) + newline
    path = _bytes_file(tmp_path, "p.fa", text.encode(), gz)
    assert list(read_fasta(path)) == records


@FAST
@given(data=RANDOM_BYTES, gz=st.booleans())
def test_fasta_random_bytes_give_records_or_our_error(tmp_path, data, gz):
    path = _bytes_file(tmp_path, "r.fa", data, gz)
    try:
        records = list(read_fasta(path))
    except GenocnnError as exc:
        assert str(path) in str(exc)
    else:
        assert records and all(name and seq for name, seq in records)


# ----------------------------------------------------------------------------------- labels

LABEL_SPELLINGS = {1.0: ["1", "1.0", "TRUE", "true", "True"], 0.0: ["0", "0.0", "FALSE", "false"],
                   None: ["", "NA", "nan", "NaN"]}


@FAST
@given(
    ids=st.lists(IDS, min_size=1, max_size=10, unique=True),
    tasks=st.lists(st.text(st.sampled_from("abcdefgXYZ_"), min_size=1, max_size=6), min_size=1, max_size=3,
                   unique=True),
    data=st.data(),
    bom=st.booleans(),
)
def test_labels_round_trip(tmp_path, ids, tasks, data, bom):
    values = data.draw(st.lists(st.lists(st.sampled_from([1.0, 0.0, None]), min_size=len(tasks),
                                         max_size=len(tasks)), min_size=len(ids), max_size=len(ids)))
    spelt = [[data.draw(st.sampled_from(LABEL_SPELLINGS[v])) for v in row] for row in values]
    text = "\t".join(["id", *tasks]) + "\n" + "".join("\t".join([i, *row]) + "\n" for i, row in zip(ids, spelt))
    path = _bytes_file(tmp_path, "labels.tsv", (("\ufeff" if bom else "") + text).encode())
    table = read_labels(path)
    assert list(table.index) == ids and list(table.columns) == tasks
    want = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    np.testing.assert_array_equal(table.to_numpy(), want)


@FAST
@given(data=RANDOM_BYTES)
def test_labels_random_bytes_give_a_table_or_our_error(tmp_path, data):
    path = _bytes_file(tmp_path, "labels.tsv", data)
    try:
        table = read_labels(path)
    except GenocnnError as exc:
        assert str(path) in str(exc)
    else:
        assert table.shape[1] >= 1 and set(np.unique(table.to_numpy()[~np.isnan(table.to_numpy())])) <= {0.0, 1.0}


# ----------------------------------------------------------------------------------- BED

SIZES = {"chr1": 5000, "chr2": 800, "chrUn_x": 50}


@st.composite
def intervals(draw):
    chrom = draw(st.sampled_from(sorted(SIZES)))
    start = draw(st.integers(0, SIZES[chrom] - 1))
    end = draw(st.integers(start + 1, start + 400))  # an empty interval is a bad line
    summit = draw(st.one_of(st.none(), st.integers(0, end - start)))
    return chrom, start, end, summit


@FAST
@given(rows=st.lists(intervals(), min_size=1, max_size=10), narrow=st.booleans(), bom=st.booleans(),
       header=st.booleans(), gz=st.booleans(), newline=st.sampled_from(["\n", "\r\n"]))
def test_bed_round_trip(tmp_path, rows, narrow, bom, header, gz, newline):
    lines = ["track name=x", "# comment"] if header else []
    for k, (chrom, start, end, summit) in enumerate(rows):
        if narrow:
            lines.append(f"{chrom}\t{start}\t{end}\tp{k}\t0\t.\t1.5\t2\t3\t{-1 if summit is None else summit}")
        else:
            lines.append(f"{chrom}\t{start}\t{end}")
    text = ("\ufeff" if bom else "") + newline.join(lines) + newline
    read = read_bed(_bytes_file(tmp_path, "p.bed", text.encode(), gz), SIZES)
    want = [(c, s, e, summit if narrow else None) for c, s, e, summit in rows]
    assert [(iv.chrom, iv.start, iv.end, iv.summit) for iv in read.intervals] == want
    assert read.skipped == 0


@FAST
@given(data=RANDOM_BYTES, skip_bad=st.booleans(), gz=st.booleans())
def test_bed_random_bytes_give_intervals_or_our_error(tmp_path, data, skip_bad, gz):
    path = _bytes_file(tmp_path, "r.bed", data, gz)
    try:
        read = read_bed(path, {"chr1": 100, "s": 10}, skip_bad=skip_bad)
    except GenocnnError as exc:
        assert str(path) in str(exc)
    else:
        assert all(0 <= iv.start <= iv.end and iv.start < {"chr1": 100, "s": 10}[iv.chrom] for iv in read.intervals)


# ----------------------------------------------------------------------------------- motif files


@st.composite
def motifs(draw):
    width = draw(st.integers(1, 15))
    sites = draw(st.integers(1, 200))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    pfm = np.stack([rng.multinomial(sites, rng.dirichlet([0.5] * 4)) for _ in range(width)], axis=1)
    name = draw(st.text(st.sampled_from("ABCXYZabc0123456789_.-"), min_size=1, max_size=10))
    return Motif(name=name, pfm=pfm.astype(float), sites=sites)


@FAST
@given(many=st.lists(motifs(), min_size=1, max_size=4, unique_by=lambda m: m.name),
       fmt=st.sampled_from(FORMATS), bom=st.booleans(), sniff=st.booleans())
def test_motif_files_round_trip(tmp_path, many, fmt, bom, sniff):
    path = tmp_path / f"m.{fmt}"
    write_motifs(many, path, format=fmt)
    if bom:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    if sniff:  # no telling suffix: the format is read from the content
        path = path.rename(tmp_path / "motifs_file")
    back = read_motifs(path, format=None if sniff else fmt)
    assert [m.name for m in back] == [m.name for m in many]
    for got, want in zip(back, many):
        assert got.width == want.width
        np.testing.assert_allclose(got.ppm, want.ppm, atol=2e-3)  # MEME and HOMER store the PPM, pseudocount included


@FAST
@given(data=RANDOM_BYTES, fmt=st.sampled_from([None, *FORMATS]))
def test_motif_random_bytes_give_motifs_or_our_error(tmp_path, data, fmt):
    path = _bytes_file(tmp_path, "r.txt", data)
    try:
        back = read_motifs(path, format=fmt)
    except GenocnnError as exc:
        assert str(path) in str(exc) or "format" in str(exc)
    else:
        assert back and all(m.pfm.shape[0] == 4 and m.width >= 1 for m in back)


# ----------------------------------------------------------------------------------- one-hot


@FAST
@given(seqs=st.lists(st.text(st.sampled_from("ACGTacgtUu"), min_size=1, max_size=60), min_size=1, max_size=6))
def test_one_hot_round_trip(seqs):
    x = one_hot(seqs, length=max(map(len, seqs)))
    assert x.shape == (len(seqs), 4, max(map(len, seqs))) and x.dtype == torch.float32
    for s, decoded, column_sums in zip(seqs, decode(x), x.sum(1)):
        left = (x.shape[2] - len(s)) // 2  # padding: all-zero columns on both sides
        assert decoded[left : left + len(s)] == s.upper().replace("U", "T")
        assert column_sums[left : left + len(s)].eq(1).all()
        assert column_sums[:left].eq(0).all() and column_sums[left + len(s):].eq(0).all()


@FAST
@given(seqs=st.lists(st.text(max_size=40), min_size=1, max_size=5), length=st.integers(1, 50))
def test_one_hot_any_text_encodes_without_error(seqs, length):
    x = one_hot(seqs, length=length)
    assert x.shape == (len(seqs), 4, length)
    sums = x.sum(1)
    assert torch.isclose(sums, torch.ones_like(sums)).logical_or(sums == 0).all()
    for s, row in zip(seqs, sums):
        iupac = sum(c in DNA_LETTERS for c in s)
        if len(s) == length:  # no crop or pad: one non-zero column per IUPAC letter
            assert int(torch.isclose(row, torch.ones_like(row)).sum()) == iupac
