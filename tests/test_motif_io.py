"""Round trips of the motif writers/readers, and interop with Biopython and memelite."""

from __future__ import annotations

import io

import numpy as np
import pytest
from Bio import motifs as bio_motifs
from memelite.io import read_meme, write_meme

from genocnn.errors import GenocnnError
from genocnn.motif_io import DEFAULT_NSITES, read_motifs, write_motifs
from genocnn.pwm import Motif

FORMATS = ["meme", "jaspar", "transfac"]
SUFFIX = {"meme": ".meme", "jaspar": ".jaspar", "transfac": ".transfac"}


def site_motif(name: str, width: int, n_sites: int, seed: int, **kwargs) -> Motif:
    """Counts of n_sites random sites: whole numbers, every column sums to n_sites."""
    rng = np.random.default_rng(seed)
    ppm = rng.dirichlet([0.5] * 4, size=width).T
    pfm = np.stack([rng.multinomial(n_sites, ppm[:, j]) for j in range(width)], axis=1)
    return Motif(name=name, pfm=pfm.astype(float), sites=n_sites, **kwargs)


def fractional_motif(name: str, width: int, seed: int) -> Motif:
    """Arbitrary fractional counts, e.g. 3.14159, that JASPAR's 2 decimals cannot hold."""
    rng = np.random.default_rng(seed)
    return Motif(name=name, pfm=rng.uniform(0, 20, size=(4, width)), sites=20)


def io_path(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def several() -> list[Motif]:
    return [
        site_motif("filter_0", 8, 50, seed=0, description="best match CTCF (MA0139.2)"),
        site_motif("filter_1", 1, 7, seed=1),
        fractional_motif("filter_2", 12, seed=2),
        # quarter counts, as ambiguous N bases give
        Motif("filter_3", np.array([[1.25, 0.0], [2.5, 4.0], [0.25, 0.0], [0.0, 0.0]])),
    ]


def as_written(motif: Motif) -> Motif:
    """The motif as every writer stores it: counts rounded to 2 decimals."""
    return Motif(
        motif.name,
        np.round(motif.pfm, 2),
        sites=motif.sites,
        background=motif.background,
        pseudocount=motif.pseudocount,
    )


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_several(tmp_path, several, fmt):
    path = tmp_path / f"motifs{SUFFIX[fmt]}"
    write_motifs(several, path, fmt)
    back = read_motifs(path, fmt)
    assert [m.name for m in back] == [m.name for m in several]
    for original, read in zip(several, back):
        assert read.width == original.width
        np.testing.assert_allclose(read.ppm, as_written(original).ppm, atol=1e-6)
        if fmt != "meme":
            np.testing.assert_allclose(read.pfm, np.round(original.pfm, 2), atol=1e-12)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_one_motif_width_one(tmp_path, fmt):
    motif = Motif("w1", np.array([[3.0], [0.0], [1.0], [6.0]]), sites=10)
    path = tmp_path / f"one{SUFFIX[fmt]}"
    write_motifs([motif], path)  # format from the suffix
    (back,) = read_motifs(path)
    assert back.name == "w1" and back.width == 1
    np.testing.assert_allclose(back.ppm, motif.ppm, atol=1e-6)


def test_meme_keeps_nsites_description_and_background(tmp_path):
    bg = (0.3, 0.2, 0.2, 0.3)
    motif = site_motif("m", 6, 40, seed=3, background=bg, description="a  two-word\tnote")
    path = tmp_path / "m.meme"
    write_motifs([motif], path)
    (back,) = read_motifs(path)
    assert back.sites == 40
    assert back.description == "a two-word note"
    assert back.background == pytest.approx(bg)
    assert back.pseudocount == 0.0
    np.testing.assert_allclose(back.pfm, back.ppm * 40, atol=1e-12)
    np.testing.assert_allclose(back.ppm, motif.ppm, atol=1e-6)


def test_meme_read_write_is_idempotent_for_whole_counts(tmp_path):
    motifs = [site_motif(f"m{k}", 9, 50, seed=k, pseudocount=0.0) for k in range(3)]
    first, second = tmp_path / "a.meme", tmp_path / "b.meme"
    write_motifs(motifs, first)
    write_motifs(read_motifs(first), second)
    assert first.read_text() == second.read_text()


def test_meme_rewrite_rounds_fractional_counts_within_bound(tmp_path, several):
    # A MEME motif is read as ppm * nsites, usually fractional; writing rounds
    # those counts to 2 decimals, moving each probability by <= 0.005 / total.
    first, second = tmp_path / "a.meme", tmp_path / "b.meme"
    write_motifs(several, first)
    once = read_motifs(first)
    write_motifs(once, second)
    twice = read_motifs(second)
    for a, b in zip(once, twice):
        assert a.sites == b.sites
        np.testing.assert_allclose(b.ppm, as_written(a).ppm, atol=1e-6)
        bound = 0.005 * 4 / a.pfm.sum(axis=0).min() + 1e-6
        assert np.abs(a.ppm - b.ppm).max() <= bound


def test_names_and_descriptions_in_jaspar_and_transfac(tmp_path):
    motif = site_motif("filter_7", 5, 20, seed=4, description="best match GATA1")
    write_motifs([motif], tmp_path / "m.jaspar")
    write_motifs([motif], tmp_path / "m.transfac")
    (jaspar,) = read_motifs(tmp_path / "m.jaspar")
    (transfac,) = read_motifs(tmp_path / "m.transfac")
    assert (jaspar.name, jaspar.description) == ("filter_7", "best_match_GATA1")
    assert (transfac.name, transfac.description) == ("filter_7", "best match GATA1")
    assert jaspar.sites == transfac.sites == 20


def test_motif_without_sites_gets_nsites_from_counts(tmp_path):
    motif = Motif("m", np.array([[5.0, 1.0], [5.0, 9.0], [0.0, 0.0], [0.0, 0.0]]))
    write_motifs([motif], tmp_path / "m.meme")
    assert "nsites= 10 " in (tmp_path / "m.meme").read_text()


# ---------------------------------------------------------------- reading edge cases


@pytest.mark.parametrize("fmt", FORMATS)
def test_reads_file_without_trailing_newline(tmp_path, several, fmt):
    path = tmp_path / f"m{SUFFIX[fmt]}"
    write_motifs(several, path)
    path.write_text(path.read_text().rstrip())
    back = read_motifs(path)
    assert [m.name for m in back] == [m.name for m in several]
    np.testing.assert_allclose(back[-1].ppm, as_written(several[-1]).ppm, atol=1e-6)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_raises(tmp_path, fmt, content):
    path = tmp_path / f"empty{SUFFIX[fmt]}"
    path.write_text(content)
    with pytest.raises(GenocnnError, match="empty"):
        read_motifs(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_garbage_raises_naming_the_file(tmp_path, fmt):
    path = tmp_path / f"bad{SUFFIX[fmt]}"
    path.write_text("this is not\na motif file at all\n")
    with pytest.raises(GenocnnError, match="bad"):
        read_motifs(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(GenocnnError, match="nope.meme"):
        read_motifs(tmp_path / "nope.meme")


def test_meme_with_header_only_raises(tmp_path):
    path = tmp_path / "h.meme"
    path.write_text("MEME version 4\n\nALPHABET= ACGT\n")
    with pytest.raises(GenocnnError, match="no motifs"):
        read_motifs(path)


@pytest.mark.parametrize(
    "body, message",
    [
        ("MOTIF a\nletter-probability matrix: alength= 4 w= 3\n0.25 0.25 0.25 0.25\n", "rows"),
        ("MOTIF a\nletter-probability matrix: w= 1\n0.5 0.5 0.5 0.5\n", "sum to 1"),
        ("MOTIF a\n\nMOTIF b\nletter-probability matrix: w= 1\n1 0 0 0\n", "no matrix"),
        ("MOTIF a\nletter-probability matrix: alength= 20 w= 1\n1 0 0 0\n", "alength"),
        ("letter-probability matrix: w= 1\n1 0 0 0\n", "without a MOTIF"),
    ],
)
def test_malformed_meme_raises(tmp_path, body, message):
    path = tmp_path / "bad.meme"
    path.write_text("MEME version 4\n\nALPHABET= ACGT\n\n" + body)
    with pytest.raises(GenocnnError, match=message):
        read_motifs(path)


def test_meme_without_nsites_or_width_uses_defaults(tmp_path):
    path = tmp_path / "m.meme"
    path.write_text(
        "MEME version 4\nALPHABET= ACGT\n\nMOTIF a alt\nletter-probability matrix:\n"
        "0.1 0.2 0.3 0.4\n1 0 0 0\n\nURL http://example.org\n"
    )
    (motif,) = read_motifs(path)
    assert motif.width == 2 and motif.sites == DEFAULT_NSITES and motif.description == "alt"
    np.testing.assert_allclose(motif.pfm[:, 0], np.array([0.1, 0.2, 0.3, 0.4]) * DEFAULT_NSITES)


def test_format_sniffed_for_unknown_suffix(tmp_path, several):
    for fmt in FORMATS:
        path = tmp_path / f"motifs_{fmt}.out"
        write_motifs(several, path, fmt)
        assert [m.name for m in read_motifs(path)] == [m.name for m in several]
    (tmp_path / "x.out").write_text("hello\n")
    with pytest.raises(GenocnnError, match="cannot tell"):
        read_motifs(tmp_path / "x.out")


def test_suffix_inference_and_default(tmp_path, several):
    write_motifs(several, tmp_path / "a.dat")
    assert (tmp_path / "a.dat").read_text().startswith("ID  filter_0")
    write_motifs(several, tmp_path / "a.txt")
    write_motifs(several, tmp_path / "a.whatever")
    for name in ["a.txt", "a.whatever"]:
        assert (tmp_path / name).read_text().startswith("MEME version 4\n")


# ---------------------------------------------------------------- writing errors


def test_unknown_format_raises(tmp_path, several):
    with pytest.raises(GenocnnError, match="unknown motif format"):
        write_motifs(several, tmp_path / "m.meme", "homer2")
    with pytest.raises(GenocnnError, match="unknown motif format"):
        read_motifs(tmp_path / "m.meme", "xml")


@pytest.mark.parametrize(
    "motifs, message",
    [
        ([], "no motifs"),
        ([Motif("has space", np.ones((4, 2)))], "whitespace"),
        ([Motif("", np.ones((4, 2)))], "empty"),
        ([Motif("neg", -np.ones((4, 2)))], "non-negative"),
        ([Motif("w0", np.ones((4, 0)))], "width"),
        ([Motif("zero", np.zeros((4, 2)), pseudocount=0.0)], "no counts"),
        (
            [
                Motif("a", np.ones((4, 2))),
                Motif("b", np.ones((4, 2)), background=(0.4, 0.1, 0.1, 0.4)),
            ],
            "background",
        ),
    ],
)
def test_bad_motifs_raise_and_leave_no_file(tmp_path, motifs, message):
    path = tmp_path / "out.meme"
    with pytest.raises(GenocnnError, match=message):
        write_motifs(motifs, path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- interop with the references


def test_our_meme_loads_in_biopython_and_memelite(tmp_path):
    # Whole counts and pseudocount 0: ppm * nsites is whole, which Biopython's
    # minimal parser (it rounds p * nsites) reproduces exactly.
    ours = [site_motif(f"m{k}", w, 30, seed=k, pseudocount=0.0) for k, w in enumerate([1, 7, 15])]
    ours[1].description = "with description"
    path = tmp_path / "ours.meme"
    write_motifs(ours, path)
    with open(path) as fh:
        bio = list(bio_motifs.parse(fh, "minimal"))
    meme = read_meme(str(path))
    assert [b.name for b in bio] == ["m0", "m1", "m2"]
    assert list(meme) == ["m0", "m1 with description", "m2"]
    for motif, b, matrix in zip(ours, bio, meme.values()):
        assert b.num_occurrences == 30
        np.testing.assert_array_equal([b.counts[x] for x in "ACGT"], motif.pfm)
        np.testing.assert_allclose(matrix, motif.ppm, atol=1e-6)


@pytest.mark.parametrize("fmt", ["jaspar", "transfac"])
def test_count_files_match_the_meme_matrix(tmp_path, several, fmt):
    write_motifs(several, tmp_path / "m.meme")
    write_motifs(several, tmp_path / f"m.{fmt}", fmt)
    meme = list(read_meme(str(tmp_path / "m.meme")).values())
    with open(tmp_path / f"m.{fmt}") as fh:
        bio = list(bio_motifs.parse(fh, fmt))
    assert len(bio) == len(meme) == len(several)
    for b, matrix in zip(bio, meme):
        counts = np.array([b.counts[x] for x in "ACGT"], dtype=float)
        np.testing.assert_allclose(Motif("x", counts).ppm, matrix, atol=1e-6)


def test_memelite_meme_loads_in_ours(tmp_path):
    rng = np.random.default_rng(5)
    matrices = {"MA0001.1 AGL3": rng.dirichlet([1] * 4, 6).T, "solo": rng.dirichlet([1] * 4, 1).T}
    path = tmp_path / "memelite.meme"
    write_meme(str(path), matrices)
    back = read_motifs(path)
    assert [(m.name, m.description) for m in back] == [("MA0001.1", "AGL3"), ("solo", "")]
    for motif, matrix in zip(back, matrices.values()):
        assert motif.sites == 1
        np.testing.assert_allclose(motif.ppm, matrix, atol=1e-12)


def test_biopython_jaspar_loads_in_ours(tmp_path):
    counts = {"A": [0, 3, 79, 40], "C": [94, 75, 4, 3], "G": [1, 0, 3, 4], "T": [2, 19, 11, 50]}
    bio = bio_motifs.Motif(alphabet="ACGT", counts=counts)
    bio.matrix_id, bio.name = "MA0001.1", "AGL3"
    path = tmp_path / "bio.jaspar"
    path.write_text(bio_motifs.write([bio, bio], "jaspar"))
    back = read_motifs(path)
    assert [(m.name, m.description) for m in back] == [("MA0001.1", "AGL3")] * 2
    np.testing.assert_array_equal(back[0].pfm, [counts[x] for x in "ACGT"])
    assert back[0].sites == 97


def test_jaspar_without_version_header_text(tmp_path):
    # JASPAR 2010-2014 "pfm" style rows under a header, as Biopython documents.
    text = ">MA0001.1 AGL3\n0\t3\t79\n94\t75\t4\n1\t0\t3\n2\t19\t11"
    (motif,) = read_motifs(io_path(tmp_path, "old.jaspar", text))
    np.testing.assert_array_equal(motif.pfm[:, 0], [0, 94, 1, 2])


def test_transfac_from_biopython_loads_in_ours(tmp_path):
    text = io.StringIO()
    text.write("AC  M00001\nXX\nID  V$MYOD_01\nXX\nDE  myoblast determining factor\nXX\n")
    text.write("P0      A      C      G      T\n01      1      2      2      0      S\n")
    text.write("02      2      1      2      0      R\nXX\n//\n")
    path = io_path(tmp_path, "t.dat", text.getvalue())
    (motif,) = read_motifs(path)
    assert (motif.name, motif.description) == ("V$MYOD_01", "myoblast determining factor")
    np.testing.assert_array_equal(motif.pfm, [[1, 2], [2, 1], [2, 2], [0, 0]])


# ---------------------------------------------------------------- HOMER

# Two motifs laid out as HOMER's own library files are: six header fields
# (consensus, name, threshold, log p-value, 0, occurrence stats), three
# decimals, rows that sum to 0.999 or 1.001.
HOMER_LIBRARY_TEXT = (
    ">AYAGTGCCMYCTRGTGGCCA\tCTCF(Zf)/CD4+-CTCF-ChIP-Seq(Barski_et_al.)/Homer\t6.041809\t-11523.164\t0"
    "\tT:17311.0(44.36%),B:2181.5(5.80%),P:1e-5004\n"
    "0.419\t0.100\t0.349\t0.132\n"
    "0.001\t0.610\t0.001\t0.388\n"
    "0.946\t0.001\t0.052\t0.001\n"
    ">TGACGTCA\tAtf1(bZIP)/K562-ATF1-ChIP-Seq/Homer\t8.5\n"
    "0.001\t0.001\t0.001\t0.997\n"
    "0.001\t0.001\t0.998\t0.001\n"
    "0.998\t0.001\t0.001\t0.001"
)


def homer_records(text: str) -> list[tuple[list[str], np.ndarray]]:
    """A naive reading of a HOMER file: header fields and the (w, 4) matrix per motif."""
    records = []
    for line in text.splitlines():
        if line.startswith(">"):
            records.append((line[1:].split("\t"), []))
        elif line.strip():
            records[-1][1].append([float(v) for v in line.split("\t")])
    return [(header, np.array(rows)) for header, rows in records]


def test_homer_round_trip_several(tmp_path, several):
    path = tmp_path / "motifs.motif"
    write_motifs(several, path)
    back = read_motifs(path)
    assert [(m.name, m.description) for m in back] == [(m.name, m.description) for m in several]
    for motif, read in zip(several, back):
        np.testing.assert_allclose(read.ppm, as_written(motif).ppm, atol=1e-8)
        assert read.sites == DEFAULT_NSITES and read.pseudocount == 0.0
    # Writing what was read rounds counts (ppm x 20) to 2 decimals; renormalising
    # the column moves each probability by under 2 x 0.005 / 20.
    again = tmp_path / "again.motif"
    write_motifs(back, again)
    for first, second in zip(back, read_motifs(again)):
        np.testing.assert_allclose(second.ppm, first.ppm, atol=0.01 / DEFAULT_NSITES)


def test_homer_file_layout(tmp_path, several):
    path = tmp_path / "motifs.motif"
    write_motifs(several, path, "homer")
    records = homer_records(path.read_text())
    assert len(records) == len(several)
    for motif, (header, matrix) in zip(several, records):
        assert len(header) == 3
        assert header[0] == motif.consensus.upper()
        assert header[1].split()[0] == motif.name
        ppm = as_written(motif).ppm
        np.testing.assert_allclose(matrix, ppm.T, atol=1e-8)
        # threshold: 0.6 x the best natural-log-odds score, from a naive loop
        best = sum(max(np.log(ppm[b, j] / 0.25) for b in range(4)) for j in range(motif.width))
        assert float(header[2]) == pytest.approx(max(0.0, 0.6 * best), abs=1e-5)


def test_homer_one_motif_width_one(tmp_path):
    motif = Motif("solo", np.array([[3.0], [0.0], [1.0], [0.0]]), sites=4)
    path = tmp_path / "solo.motif"
    write_motifs([motif], path)
    (back,) = read_motifs(path)
    assert back.name == "solo" and back.width == 1
    np.testing.assert_allclose(back.ppm, motif.ppm, atol=1e-8)


def test_homer_library_file_loads(tmp_path):
    path = io_path(tmp_path, "known.motif", HOMER_LIBRARY_TEXT)  # no trailing newline
    ctcf, atf1 = read_motifs(path)
    assert ctcf.name == "CTCF(Zf)/CD4+-CTCF-ChIP-Seq(Barski_et_al.)/Homer" and ctcf.width == 3
    assert atf1.name.startswith("Atf1") and atf1.consensus == "TGA"
    expected = np.array([[0.419, 0.100, 0.349, 0.132]])
    np.testing.assert_allclose(ctcf.ppm[:, 0], expected[0] / expected.sum(), atol=1e-12)
    for m in (ctcf, atf1):
        np.testing.assert_allclose(m.ppm.sum(axis=0), 1.0)


def test_homer_is_sniffed_and_jaspar_still_is(tmp_path, several):
    write_motifs(several, tmp_path / "a.motif", "homer")
    (tmp_path / "a.unknown").write_text((tmp_path / "a.motif").read_text())
    assert [m.name for m in read_motifs(tmp_path / "a.unknown")] == [m.name for m in several]
    write_motifs(several, tmp_path / "b.jaspar", "jaspar")
    (tmp_path / "b.unknown").write_text((tmp_path / "b.jaspar").read_text())
    assert [m.name for m in read_motifs(tmp_path / "b.unknown")] == [m.name for m in several]


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    (">ACGT\tname\t3.0\n", "no rows"),
    (">ACGT\tname\n0.25\t0.25\t0.25\t0.25\n", "HOMER header"),
    ("0.25\t0.25\t0.25\t0.25\n", "header"),
    (">A\tname\t1.0\n0.5\t0.5\t0.5\t0.5\n", "sum to 1"),
    (">A\tname\t1.0\n0.5\t0.5\n", "4 probabilities"),
])
def test_malformed_homer_raises(tmp_path, text, message):
    path = io_path(tmp_path, "bad.motif", text)
    with pytest.raises(GenocnnError, match=message) as info:
        read_motifs(path)
    assert str(path) in str(info.value)
