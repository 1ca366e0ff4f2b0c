"""Tests for genocnn.fasta: reading checked against Biopython, and every bad input."""

from __future__ import annotations

import gzip

import pytest
from Bio import SeqIO

from genocnn.errors import GenocnnError
from genocnn.fasta import read_fasta, write_fasta

RECORDS = [
    ("chr1:100-160", "ACGTACGTNNNNNNNNNNacgtacgtnnnnRYSWKMBDHVryswkmbdhvUu"),
    ("s2", "A"),
    ("s3", "ttttGGGGccccAAAA" * 10),
]


def write_text(path, text: str) -> None:
    path.write_bytes(text.encode())


def multi_line(records, width=7, newline="\n", blank_lines=False, trailing=True) -> str:
    parts = []
    for name, seq in records:
        parts.append(f">{name} some description")
        parts += [seq[i : i + width] for i in range(0, len(seq), width)]
        if blank_lines:
            parts.append("")
    text = newline.join(parts)
    return text + newline if trailing else text


def reference(path):
    """Biopython's own parser as the independent reference."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as fh:
        return [(r.id, str(r.seq)) for r in SeqIO.parse(fh, "fasta")]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"width": 1000},
        {"width": 1},
        {"newline": "\r\n"},
        {"blank_lines": True},
        {"trailing": False},
        {"newline": "\r\n", "blank_lines": True, "trailing": False},
    ],
    ids=["multi-line", "one-line", "width-1", "crlf", "blank-lines", "no-trailing-newline", "all"],
)
def test_read_plain(tmp_path, options):
    path = tmp_path / "in.fa"
    write_text(path, multi_line(RECORDS, **options))
    got = list(read_fasta(path))
    assert got == RECORDS
    assert got == reference(path)


def test_read_gzip_by_magic_not_name(tmp_path):
    text = multi_line(RECORDS, newline="\r\n")
    gz = tmp_path / "named_plain.fa"  # gzip content, plain name
    gz.write_bytes(gzip.compress(text.encode()))
    plain = tmp_path / "named_gz.fa.gz"  # plain content, gzip name
    write_text(plain, text)
    assert list(read_fasta(gz)) == RECORDS
    assert list(read_fasta(plain)) == RECORDS


def test_read_keeps_case_and_n_runs(tmp_path):
    path = tmp_path / "soft.fa"
    seq = "acgtNNNNNNNNNNNNNNNNNNNNACGTnnnn"
    write_text(path, f">x\n{seq}\n")
    assert list(read_fasta(path)) == [("x", seq)]


def test_read_variable_lengths_and_leading_blank_lines(tmp_path):
    records = [(f"r{i}", "ACGT"[i % 4] * (i + 1)) for i in range(50)]
    path = tmp_path / "var.fa"
    write_text(path, "\n\n  \n" + multi_line(records, width=13))
    assert list(read_fasta(path)) == records


def test_read_streams(tmp_path):
    """The first record arrives before a bad later record is reached."""
    path = tmp_path / "late.fa"
    write_text(path, ">ok\nACGT\n>bad\nAC9T\n")
    reader = read_fasta(path)
    assert next(reader) == ("ok", "ACGT")
    with pytest.raises(GenocnnError, match="bad"):
        next(reader)


@pytest.mark.parametrize("width", [None, 1, 5, 60])
@pytest.mark.parametrize("name", ["out.fa", "out.fa.gz"])
def test_write_round_trip(tmp_path, width, name):
    path = tmp_path / name
    write_fasta(RECORDS, path, width=width)
    assert list(read_fasta(path)) == RECORDS
    assert reference(path) == RECORDS
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_write_is_atomic(tmp_path):
    path = tmp_path / "out.fa"

    def records():
        yield "a", "ACGT"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_fasta(records(), path)
    assert list(tmp_path.iterdir()) == []


def test_write_rejects_bad_width(tmp_path):
    with pytest.raises(GenocnnError, match="width"):
        write_fasta(RECORDS, tmp_path / "x.fa", width=0)


# --- bad input ------------------------------------------------------------


def read_error(path) -> str:
    with pytest.raises(GenocnnError) as info:
        list(read_fasta(path))
    message = str(info.value)
    assert path.name in message
    return message


def test_missing_file(tmp_path):
    assert "no such file" in read_error(tmp_path / "missing.fa")


def test_directory(tmp_path):
    folder = tmp_path / "folder.fa"
    folder.mkdir()
    assert "directory" in read_error(folder)


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n\t\n"], ids=["empty", "whitespace"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.fa"
    path.write_bytes(content)
    assert "empty" in read_error(path)


def test_empty_gzip(tmp_path):
    path = tmp_path / "empty.fa.gz"
    path.write_bytes(gzip.compress(b""))
    assert "empty" in read_error(path)


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (b"@read1\nACGT\n+\nIIII\n", "FASTQ"),
        (b"<!DOCTYPE html>\n<html></html>\n", "HTML"),
        (b"\x00\x01\x02\x03binary\n", "binary"),
        (b"\xff\xfe\x80\x81\x00garbage", "binary"),
        (b"\x89PNG\r\n\x1a\n\xc3\x28\xa0\xa1", "binary"),
        (b"ACGT\nACGT\n", "'>'"),
    ],
    ids=["fastq", "html", "nul", "utf16-bom", "png", "no-header"],
)
def test_not_fasta(tmp_path, content, hint):
    path = tmp_path / "weird.fa"
    path.write_bytes(content)
    message = read_error(path)
    assert "not a FASTA file" in message
    assert hint in message


def test_undecodable_later_in_file(tmp_path):
    path = tmp_path / "late_binary.fa"
    path.write_bytes(b">a\nACGT\n>b\nAC\xff\xfeGT\n")
    assert "binary" in read_error(path)


@pytest.mark.parametrize(
    ("seq", "shown", "protein"),
    [
        ("MKVLEFIPQ", "'E'", True),
        ("ACGT12ACGT", "'1', '2'", False),
        ("ACGT-ACGT", "'-'", False),
        ("ACGT.ACGT", "'.'", False),
        ("ACGT\tACGT", "'\\t'", False),
        ("ACGTÄACGT", "'Ä'", False),
    ],
    ids=["protein", "digits", "gap", "dot", "tab", "non-ascii"],
)
def test_bad_characters(tmp_path, seq, shown, protein):
    path = tmp_path / "chars.fa"
    write_text(path, f">good\nACGT\n>rec_7 desc\n{seq}\n")
    message = read_error(path)
    assert "'rec_7'" in message
    assert "record 2" in message
    assert shown in message
    assert ("protein" in message) == protein


@pytest.mark.parametrize(
    "text",
    [">a\nACGT\n>empty_one\n>c\nACGT\n", ">a\nACGT\n>empty_one\n", ">a\nACGT\n>empty_one\n\n\n"],
    ids=["middle", "last", "last-blank-lines"],
)
def test_empty_sequence(tmp_path, text):
    path = tmp_path / "hole.fa"
    write_text(path, text)
    message = read_error(path)
    assert "'empty_one'" in message
    assert "empty sequence" in message


def test_empty_header(tmp_path):
    path = tmp_path / "noid.fa"
    write_text(path, ">a\nACGT\n>   \nACGT\n")
    message = read_error(path)
    assert "record 2" in message
    assert "no id" in message


def test_truncated_gzip(tmp_path):
    data = gzip.compress(multi_line(RECORDS * 200).encode())
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(data[: len(data) // 2])
    assert "gzip" in read_error(path)


def test_corrupt_gzip(tmp_path):
    data = bytearray(gzip.compress(multi_line(RECORDS * 200).encode()))
    data[20:60] = b"\xff" * 40
    path = tmp_path / "corrupt.fa.gz"
    path.write_bytes(bytes(data))
    assert "gzip" in read_error(path)


def test_bad_gzip_crc(tmp_path):
    data = bytearray(gzip.compress(b">a\nACGT\n"))
    data[-8] ^= 0xFF  # CRC32 in the trailer
    path = tmp_path / "crc.fa.gz"
    path.write_bytes(bytes(data))
    assert "gzip" in read_error(path)


def test_unreadable_file_is_a_user_error(tmp_path):
    import os

    path = tmp_path / "locked.fa"
    path.write_text(">a\nACGT\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # root reads anything: nothing to test
            pytest.skip("running as a user who can read any file")
        with pytest.raises(GenocnnError, match="cannot read"):
            list(read_fasta(path))
    finally:
        path.chmod(0o644)


def test_in_memory_sequences_bytes_pairs_and_mistakes():
    from genocnn.fasta import iter_records

    assert list(iter_records([b"ACGT", ("x", "GG"), ["y", b"TT"]])) == [("seq0", "ACGT"), ("x", "GG"), ("y", "TT")]
    with pytest.raises(GenocnnError, match=r"sequence 2: expected a str or an \(id, sequence\) pair, got int"):
        list(iter_records(["ACGT", 7]))
    seq = "ACGT" * 50  # a sequence given where a FASTA path is expected: named short, with the way out
    with pytest.raises(GenocnnError, match=r"^ACGTACGTACGTACGTACGT\.\.\.GTACGTACGT \(200 letters\): no such file; "
                                           r"to give sequences .* pass a list"):
        list(iter_records(seq))
