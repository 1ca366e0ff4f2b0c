"""Variant effects from a VCF: windows, agreement with predict, the null, the files, and every user mistake."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from Bio import bgzf
from typer.testing import CliRunner

import genocnn
from genocnn.cli import app
from genocnn.encode import MIN_BASE_FRACTION
from genocnn.errors import GenocnnError
from genocnn.fasta import dna_problem
from genocnn.genome import open_genome
from genocnn.variant_files import write_variant_effects
from genocnn.variants import SnvNull, allele_windows
from tests.conftest import ROOT, TINY_MOTIF
from tests.test_cli import assert_user_error

runner = CliRunner()
HEADER = ["##fileformat=VCFv4.2", "##contig=<ID=chr1>", "##contig=<ID=chr2>",
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
SITES = {"chr1": [400, 1500], "chr2": [700]}  # 0-based starts of planted TINY_MOTIF
CENTRE = 4  # TINY_MOTIF[4] = "G", of the palindromic core ACGT


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> dict:
    """Two chromosomes of random DNA with TINY_MOTIF planted; the FASTA and the sequences."""
    rng = np.random.default_rng(7)
    seqs = {"chr1": 3000, "chr2": 2000}
    out = {}
    for name, size in seqs.items():
        s = "".join(rng.choice(list("ACGT"), size=size))
        for start in SITES[name]:
            s = s[:start] + TINY_MOTIF + s[start + len(TINY_MOTIF):]
        out[name] = s
    path = tmp_path_factory.mktemp("genome") / "genome.fa"
    path.write_text("".join(f">{n}\n" + "\n".join(s[i:i + 60] for i in range(0, len(s), 60)) + "\n"
                            for n, s in out.items()))
    return {"path": path, "seqs": out}


def write_genome(path: Path, seqs: dict[str, str], width: int = 60) -> Path:
    """A FASTA of ``seqs`` in lines of ``width`` (indexable: every line but the last of a record full)."""
    path.write_text("".join(f">{n}\n" + "\n".join(s[i:i + width] for i in range(0, len(s), width)) + "\n"
                            for n, s in seqs.items()))
    return path


def write_vcf(path: Path, records: list[str], header=HEADER, compress: bool = False) -> Path:
    text = "\n".join([*header, *records]) + "\n"
    if compress:
        with bgzf.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def snv(chrom: str, pos0: int, alt: str, seqs: dict, name: str = ".") -> str:
    """A VCF line for the SNV at 0-based ``pos0`` with the genome's REF."""
    return f"{chrom}\t{pos0 + 1}\t{name}\t{seqs[chrom][pos0]}\t{alt}\t.\t.\t."


def other_base(base: str, k: int = 0) -> str:
    return [b for b in "ACGT" if b != base][k]


def cli(*args):
    return runner.invoke(app, ["variants", *map(str, args)])


def windows_by_hand(seq: str, pos0: int, ref: str, alt: str, length: int) -> tuple[str, str]:
    """The documented rule, written out: allele's first base at L//2 - len//2, genome flanks either side."""
    def place(allele):
        left = length // 2 - len(allele) // 2
        before = seq[max(pos0 - left, 0):pos0].rjust(left, "N")
        after = (seq[pos0 + len(ref):] + "N" * length)[: length - left - len(allele)]
        return before + allele + after
    return place(seq[pos0:pos0 + len(ref)]), place(alt)


# --------------------------------------------------------------------------- windows


def test_windows_keep_the_length_and_centre_the_allele():
    rng = np.random.default_rng(0)
    seq = "".join(rng.choice(list("ACGT"), size=400))
    for length in (9, 10, 101):
        for ref_len, alt in ((1, "T"), (3, "A"), (1, "AGGCT"), (2, "C"), (1, "A" * 150)):
            pos0 = 200
            span = seq[pos0 - length : pos0 + ref_len + length]
            ref_w, alt_w, ref_left, alt_left = allele_windows(span, ref_len, alt, length)
            assert len(ref_w) == len(alt_w) == length
            assert ref_w[ref_left:ref_left + ref_len] == seq[pos0:pos0 + ref_len]
            if len(alt) <= length:
                assert (ref_w, alt_w) == windows_by_hand(seq, pos0, seq[pos0:pos0 + ref_len], alt, length)
                assert alt_w[alt_left:alt_left + len(alt)] == alt
            else:  # an allele longer than the window is centre-cropped
                assert alt_w == alt[:length] and alt_left == 0
    # an SNV is the predict --bed window of its base, with the base changed
    span = seq[150:251]
    ref_w, alt_w, _, _ = allele_windows(span, 1, "A", 50)
    assert ref_w == seq[175:225] and alt_w == seq[175:200] + "A" + seq[201:225]


# --------------------------------------------------------------------------- science


def test_effects_agree_with_predict_on_the_windows(tiny_run, genome, tmp_path):
    """Every probability equals predict() on the REF and ALT windows built independently."""
    model, seqs, length = tiny_run.model, genome["seqs"], tiny_run.model.length
    lines = [snv("chr1", 400 + CENTRE, "A", seqs, "site"), snv("chr2", 700 + 2, "T", seqs),
             snv("chr1", 2600, other_base(seqs["chr1"][2600]), seqs), snv("chr1", 20, "G", seqs),
             f"chr1\t1000\tdel\t{seqs['chr1'][999:1003]}\t{seqs['chr1'][999]}\t.\t.\t.",
             f"chr2\t1900\tins\t{seqs['chr2'][1899]}\t{seqs['chr2'][1899]}GATTACA\t.\t.\t."]
    vcf = write_vcf(tmp_path / "v.vcf", lines)
    table = genocnn.variant_effects(model, vcf, genome["path"])
    assert len(table) == len(lines)
    refs, alts = zip(*(windows_by_hand(seqs[r.chrom], r.pos - 1, r.ref, r.alt, length)
                       for r in table.itertuples()))
    p_ref = genocnn.predict(model, list(refs))["bound"].to_numpy()
    p_alt = genocnn.predict(model, list(alts))["bound"].to_numpy()
    np.testing.assert_allclose(table["ref_bound"], p_ref, atol=1e-6)
    np.testing.assert_allclose(table["alt_bound"], p_alt, atol=1e-6)
    np.testing.assert_allclose(table["diff_bound"], p_alt - p_ref, atol=1e-6)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    np.testing.assert_allclose(table["logfc_bound"], logit(p_alt) - logit(p_ref), atol=1e-3)


def test_destroying_a_site_scores_negative_and_random_snvs_near_zero(tiny_run, genome, tmp_path):
    seqs = genome["seqs"]
    site = [snv(c, s + CENTRE, "A" if seqs[c][s + CENTRE] != "A" else "C", seqs, "site")
            for c, starts in SITES.items() for s in starts]
    rng = np.random.default_rng(3)
    far = [snv("chr1", int(p), other_base(seqs["chr1"][int(p)]), seqs, "random") for p in rng.integers(2000, 2900, 8)]
    table = genocnn.variant_effects(tiny_run.model, write_vcf(tmp_path / "v.vcf", site + far), genome["path"])
    destroyed, random = (table.loc[table["id"] == k, "logfc_bound"] for k in ("site", "random"))
    assert destroyed.max() < -0.05 and destroyed.mean() < 5 * -random.abs().mean()


def test_batch_size_does_not_change_the_table(tiny_run, genome, tmp_path):
    seqs = genome["seqs"]
    lines = [snv("chr1", p, other_base(seqs["chr1"][p], p % 3), seqs) for p in range(300, 600, 7)]
    vcf = write_vcf(tmp_path / "v.vcf", lines)
    one = genocnn.variant_effects(tiny_run.model, vcf, genome["path"], batch_size=1)  # 4 alleles per block
    big = genocnn.variant_effects(tiny_run.model, vcf, genome["path"], batch_size=4096)
    pd.testing.assert_frame_equal(one, big, atol=1e-6)


def test_null_gives_context_matched_empirical_pvalues(tiny_run, genome, tmp_path):
    seqs = genome["seqs"]
    lines = [snv("chr1", 400 + CENTRE, "A", seqs, "site"), snv("chr1", 1500 + CENTRE, "A", seqs, "site"),
             snv("chr1", 2500, other_base(seqs["chr1"][2500]), seqs, "random"),
             f"chr1\t1000\tdel\t{seqs['chr1'][999:1003]}\t{seqs['chr1'][999]}\t.\t.\t."]
    vcf = write_vcf(tmp_path / "v.vcf", lines)
    a = genocnn.variant_effects(tiny_run.model, vcf, genome["path"], null=99, seed=1)
    p = a["pvalue_bound"]
    assert p.iloc[:3].between(1 / 100, 1).all() and np.isnan(p.iloc[3])  # indels get none
    assert max(p.iloc[0], p.iloc[1]) <= 0.15 < p.iloc[2]
    assert ((p.iloc[:3] * 100).round(6) % 1 == 0).all()  # (1 + k) / (N + 1)
    again = genocnn.variant_effects(tiny_run.model, write_vcf(tmp_path / "w.vcf", lines[:1]), genome["path"],
                                    null=99, seed=1)
    assert again["pvalue_bound"].iloc[0] == p.iloc[0]  # a variant's p-value does not depend on the others


def test_null_leaves_alt_n_without_a_pvalue_but_scores_it(tiny_run, genome, tmp_path):
    """An ALT N (alone, lower case, or among other ALTs) is scored as without the null; its p-value is NaN."""
    seqs = genome["seqs"]
    ref = seqs["chr1"][2200]
    lines = [snv("chr1", 404, "N", seqs, "n"), snv("chr1", 1200, "n", seqs, "lower"),
             f"chr1\t2201\tmulti\t{ref}\t{other_base(ref, 0)},N,{other_base(ref, 1)}\t.\t.\t."]
    vcf = write_vcf(tmp_path / "v.vcf", lines)
    plain = genocnn.variant_effects(tiny_run.model, vcf, genome["path"])
    with_null = genocnn.variant_effects(tiny_run.model, vcf, genome["path"], null=19, seed=2)
    assert list(with_null["alt"]) == ["N", "n", other_base(ref, 0), "N", other_base(ref, 1)]
    pd.testing.assert_frame_equal(with_null.drop(columns="pvalue_bound"), plain)
    assert with_null["logfc_bound"].notna().all() and (with_null["logfc_bound"] != 0).any()
    is_n = with_null["alt"].str.upper() == "N"
    assert with_null.loc[is_n, "pvalue_bound"].isna().all()
    assert with_null.loc[~is_n, "pvalue_bound"].between(1 / 20, 1).all()


def test_null_draws_no_window_with_junk_or_mostly_n(tiny_run, tmp_path):
    """The null's random positions avoid windows holding non-DNA characters or too few A/C/G/T."""
    rng = np.random.default_rng(5)
    seq = list("".join(rng.choice(list("ACGT"), size=3000)))
    seq[500:510] = "XX**..12@@"
    seq[1500:1800] = "N" * 300
    genome_fa = write_genome(tmp_path / "g.fa", {"chr1": "".join(seq)})
    length = tiny_run.model.length
    with open_genome(genome_fa) as fa:
        null = SnvNull(tiny_run.model, fa, 5)
        null._pool()
    sites = np.concatenate(list(null.sites.values()))
    assert 2000 < len(sites) < 3000  # most positions are usable
    half = length // 2
    windows = [null.text[i - half : i - half + length] for i in sites]
    assert all(dna_problem(w) is None for w in windows)
    assert min(sum(w.count(b) for b in "ACGT") for w in windows) >= MIN_BASE_FRACTION * length


def test_mostly_n_windows_are_flagged_and_not_scored(tiny_run, tmp_path):
    """A window less than half A/C/G/T (N chromosome, N gap, ALT of Ns) is flagged, with empty scores."""
    rng = np.random.default_rng(11)
    chr1 = "".join(rng.choice(list("ACGT"), size=3000))
    chr1 = chr1[:1000] + "N" * 400 + chr1[1400:]
    genome_fa = write_genome(tmp_path / "g.fa", {"chr1": chr1, "chrN": "N" * 600})
    length = tiny_run.model.length
    lines = [f"chrN\t300\tallN\tN\tA\t.\t.\t.",
             f"chr1\t1201\tgap\tN\tC\t.\t.\t.",
             f"chr1\t2000\tNins\t{chr1[1999]}\t{chr1[1999]}{'N' * length}\t.\t.\t.",
             f"chr1\t{1001 + length // 5}\tedge_in\tN\tA\t.\t.\t.",  # window about 70 % N
             f"chr1\t2500\tok\t{chr1[2499]}\t{other_base(chr1[2499])}\t.\t.\t.",
             f"chr1\t{1001 - length // 5}\tedge_out\t{chr1[999 - length // 5]}\t"  # about 30 % N
             f"{other_base(chr1[999 - length // 5])}\t.\t.\t."]
    vcf = write_vcf(tmp_path / "v.vcf", lines, header=["##fileformat=VCFv4.2", HEADER[-1]])
    table = genocnn.variant_effects(tiny_run.model, vcf, genome_fa, null=9)
    assert table["mostly_n"].dtype == bool
    assert list(table["mostly_n"]) == [True, True, True, True, False, False]
    scores = table[["ref_bound", "alt_bound", "diff_bound", "logfc_bound", "pvalue_bound"]]
    assert scores.iloc[:4].isna().all().all()
    assert scores.iloc[4:].notna().all().all()
    alone = genocnn.variant_effects(tiny_run.model, write_vcf(tmp_path / "w.vcf", lines[4:], header=[HEADER[-1]]),
                                    genome_fa)
    np.testing.assert_allclose(table["logfc_bound"].iloc[4:], alone["logfc_bound"], atol=1e-6)
    assert any("4 allele(s) not scored" in note and "mostly_n" in note for note in table.attrs["notes"])


def test_non_dna_in_the_genome_stops_naming_genome_chromosome_and_position(tiny_run, tmp_path):
    rng = np.random.default_rng(13)
    chr1 = "".join(rng.choice(list("ACGT"), size=3000))
    chr1 = chr1[:1000] + "XX**..12@@" + chr1[1010:]
    chr2 = "".join(rng.choice(list("ACGT"), size=2000))
    chr2 = chr2[:700] + " " + chr2[701:]  # a space inside a line
    genome_fa = write_genome(tmp_path / "g.fa", {"chr1": chr1, "chr2": chr2})
    far = f"chr1\t2500\tfar\t{chr1[2499]}\t{other_base(chr1[2499])}\t.\t.\t."
    table = genocnn.variant_effects(tiny_run.model, write_vcf(tmp_path / "far.vcf", [far]), genome_fa)
    assert table["logfc_bound"].notna().all()  # junk outside every window does not matter
    for line, chrom, position in ((f"chr1\t1021\t.\t{chr1[1020]}\tA\t.\t.\t.", "chr1", 1001),
                                  (f"chr2\t690\t.\t{chr2[689]}\tA\t.\t.\t.", "chr2", 701),
                                  (f"chr2\t701\t.\tN\tA\t.\t.\t.", "chr2", 701)):
        vcf = write_vcf(tmp_path / "v.vcf", [far, line])
        with pytest.raises(GenocnnError) as caught:
            genocnn.variant_effects(tiny_run.model, vcf, genome_fa)
        message = str(caught.value)
        assert message.startswith(f"{genome_fa}: chromosome {chrom!r} at position {position} ")
        assert "not IUPAC DNA" in message and f"{vcf}: line 6" in message


# --------------------------------------------------------------------------- the command line


def test_cli_writes_table_vcf_and_logos_plain_and_bgzip(tiny_run, genome, tmp_path):
    import cyvcf2

    seqs = genome["seqs"]
    ref = seqs["chr1"][404]
    lines = [f"chr1\t405\tmulti\t{ref}\t{other_base(ref, 0)},{other_base(ref, 1)},<DEL>\t.\t.\t.",
             snv("chr2", 703, "T", seqs, "b"), "chr2\t1200\tstar\tA\t*\t.\t.\t.",
             f"chr1\t1000\tdel\t{seqs['chr1'][999:1003]}\t{seqs['chr1'][999]}\t.\t.\t."]
    tables = []
    for compress in (False, True):
        vcf = write_vcf(tmp_path / f"in{compress:d}.vcf{'.gz' if compress else ''}", lines, compress=compress)
        out, out_vcf = tmp_path / f"o{compress:d}" / "effects.tsv", tmp_path / f"o{compress:d}" / "scored.vcf.gz"
        result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out,
                     "--out-vcf", out_vcf, "--top", 2, "--quiet")
        assert result.exit_code == 0, result.output
        assert "4 alleles of 4 VCF records scored" in result.stdout
        assert "skipped: 2 symbolic ALT" in result.stdout
        table = pd.read_csv(out, sep="\t", dtype={"id": str})
        assert list(table.columns) == ["chrom", "pos", "id", "ref", "alt", "ref_match", "mostly_n", "ref_bound",
                                       "alt_bound", "diff_bound", "logfc_bound"]
        assert not table["mostly_n"].any()
        assert list(table["id"]) == ["multi", "multi", "b", "del"] and table["ref_match"].all()
        logos = sorted((out.parent / "effects_logos").glob("*.png"))
        assert len(logos) == 2 and all(p.stat().st_size > 1000 for p in logos)
        reader = cyvcf2.VCF(str(out_vcf))  # kept open: its records point into its header
        scored = list(reader)
        assert [v.POS for v in scored] == [405, 704, 1200, 1000]
        multi = scored[0].INFO.get("GENOCNN_LOGFC_bound")
        np.testing.assert_allclose(multi[:2], table["logfc_bound"][:2], rtol=1e-4)
        assert multi[2] is None  # the <DEL> ALT: missing (".")
        assert scored[2].INFO.get("GENOCNN_LOGFC_bound") is None
        tables.append(table)
    pd.testing.assert_frame_equal(*tables)


def test_cli_ref_mismatch_scored_from_the_genome_or_skipped(tiny_run, genome, tmp_path):
    seqs = genome["seqs"]
    base = seqs["chr1"][404]
    wrong = other_base(base, 0)
    lines = [f"chr1\t405\tmm\t{wrong}\t{other_base(base, 1)}\t.\t.\t.", snv("chr1", 2000, "A", seqs, "ok")]
    vcf = write_vcf(tmp_path / "v.vcf", lines)
    out = tmp_path / "e.tsv"
    result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out, "--top", 0)
    assert result.exit_code == 0, result.output
    assert f"{vcf}: REF differs from {genome['path']} for 1 allele(s) (first: line 5" in result.stderr
    assert "--skip-ref-mismatch" in result.stderr
    table = pd.read_csv(out, sep="\t")
    assert list(table["ref_match"]) == [False, True]
    right = write_vcf(tmp_path / "r.vcf", [f"chr1\t405\tmm\t{base}\t{other_base(base, 1)}\t.\t.\t."])
    expected = genocnn.variant_effects(tiny_run.model, right, genome["path"])
    assert table["logfc_bound"].iloc[0] == pytest.approx(expected["logfc_bound"].iloc[0], abs=1e-5)
    result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out, "--top", 0,
                 "--skip-ref-mismatch")
    assert result.exit_code == 0, result.output
    assert "1 alleles of 2 VCF records scored" in result.stdout and "skipped: 1 REF mismatch" in result.stdout
    assert list(pd.read_csv(out, sep="\t")["id"]) == ["ok"]


def test_cli_chr_prefix_is_matched_with_a_note(tiny_run, genome, tmp_path):
    seqs = genome["seqs"]
    lines = [snv("chr1", 404, "A", seqs).replace("chr1", "1", 1), snv("chr2", 100, "A", seqs).replace("chr2", "2", 1)]
    vcf = write_vcf(tmp_path / "v.vcf", lines, header=[h.replace("ID=chr", "ID=") for h in HEADER])
    out = tmp_path / "e.tsv"
    result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out, "--top", 0)
    assert result.exit_code == 0, result.output
    assert "chromosome names matched" in result.stderr and "1 -> chr1" in result.stderr
    table = pd.read_csv(out, sep="\t", dtype={"chrom": str})
    assert list(table["chrom"]) == ["1", "2"]
    same = genocnn.variant_effects(tiny_run.model, write_vcf(tmp_path / "w.vcf", [snv("chr1", 404, "A", seqs)]),
                                   genome["path"])
    assert table["logfc_bound"].iloc[0] == pytest.approx(same["logfc_bound"].iloc[0], abs=1e-5)


RECORD = "chr1\t405\t.\tG\tA\t.\t.\t."


@pytest.mark.parametrize("lines, line, needle", [
    ([RECORD], 1, "no VCF header"),
    (HEADER[:-1] + [RECORD], 4, "no VCF header"),
    (HEADER + [RECORD, "chr1\tx\t.\tA\tG\t.\t.\t."], 6, "malformed VCF record"),
    (HEADER + ["chr1\t405\t.\tA"], 5, "malformed VCF record"),
    (HEADER + [RECORD, "chr1\t405\t.\tA\tG\t.\t.\t.", "chr1\t406\t.\tXYZ\tG\t.\t.\t."], 7, "not a DNA sequence"),
    (HEADER + ["chr1\t405\t.\tA\tQ\t.\t.\t."], 5, "not a DNA sequence"),
    (HEADER + ["chr9\t405\t.\tA\tG\t.\t.\t."], 5, "chromosome 'chr9' is not in"),
    (HEADER + ["chr2\t2000\t.\tAC\tG\t.\t.\t."], 5, "runs past the end of chr2"),
    (HEADER + ["chr1\t0\t.\tA\tG\t.\t.\t."], 5, "VCF positions start at 1"),
    (HEADER + [RECORD, "chr1\t406\t.\tA\tG\tabc\t.\t."], 6, "QUAL 'abc' is not a number"),
    (HEADER + ["chr1\t406\t.\tA\tG\t5x\t.\t."], 5, "QUAL '5x' is not a number"),
])
def test_cli_bad_vcf_names_file_and_line(lines, line, needle, tiny_run, genome, tmp_path):
    vcf = tmp_path / "bad.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    out, out_vcf = tmp_path / "out" / "e.tsv", tmp_path / "out" / "s.vcf"
    result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out, "--out-vcf", out_vcf)
    err = assert_user_error(result, f"{vcf}: line {line}", outputs=[out, out_vcf, out.parent / "e_logos"])
    assert needle in err


def test_cli_out_vcf_needs_declared_tags(tiny_run, genome, tmp_path):
    vcf = write_vcf(tmp_path / "v.vcf", [RECORD, "chr1\t500\t.\tA\tG\t.\t.\tDP=3"])
    out, out_vcf = tmp_path / "e.tsv", tmp_path / "s.vcf.gz"
    err = assert_user_error(cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out,
                                "--out-vcf", out_vcf, "--top", 0), f"{vcf}: line 6", [out, out_vcf])
    assert "--out-vcf" in err and "not all declared" in err


def test_cli_missing_files(tiny_run, genome, tmp_path):
    vcf = write_vcf(tmp_path / "v.vcf", [RECORD])
    out = tmp_path / "e.tsv"
    assert_user_error(cli(tiny_run.run_dir, "--vcf", tmp_path / "none.vcf", "--genome", genome["path"],
                          "--out", out), tmp_path / "none.vcf", [out])
    err = assert_user_error(cli(tiny_run.run_dir, "--vcf", vcf, "--genome", tmp_path / "none.fa", "--out", out),
                            tmp_path / "none.fa", [out])
    assert "no such genome" in err


def test_cli_unindexed_genome_in_a_read_only_folder(tiny_run, genome, tmp_path):
    """Refused with one line naming the genome, no output (run as another user when we are root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    shutil.copy(genome["path"], folder / "genome.fa")
    vcf = write_vcf(tmp_path / "v.vcf", [snv("chr1", 404, "A", genome["seqs"])])
    out = tmp_path / "out" / "e.tsv"
    folder.chmod(0o555)
    try:
        command = [sys.executable, "-m", "genocnn", "variants", str(tiny_run.run_dir), "--vcf", str(vcf),
                   "--genome", str(folder / "genome.fa"), "--out", str(out), "--top", "0"]
        if os.geteuid() == 0:  # root writes anywhere; a user namespace takes that away
            if shutil.which("unshare") is None:
                pytest.skip("running as root without unshare")
            command = ["unshare", "-U", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        folder.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"{folder / 'genome.fa'}: cannot write its index" in done.stderr and "samtools faidx" in done.stderr
    assert not out.exists() and not (folder / "genome.fa.fai").exists()


def test_cli_gzip_vcf_and_blank_lines(tiny_run, genome, tmp_path):
    seqs = genome["seqs"]
    vcf = tmp_path / "v.vcf.gz"
    with gzip.open(vcf, "wt") as fh:  # plain gzip (not bgzip) is read too
        fh.write("\n".join([*HEADER, snv("chr1", 404, "A", seqs), "", snv("chr2", 50, "A", seqs)]) + "\n\n")
    out = tmp_path / "e.tsv"
    result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out, "--top", 0)
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(out, sep="\t")["pos"]) == [405, 51]


def test_cli_null_with_alt_n_writes_an_empty_pvalue(tiny_run, genome, tmp_path):
    seqs = genome["seqs"]
    ref = seqs["chr1"][404]
    vcf = write_vcf(tmp_path / "v.vcf", [f"chr1\t405\tmulti\t{ref}\t{other_base(ref)},N\t.\t.\t."])
    out, out_vcf = tmp_path / "e.tsv", tmp_path / "s.vcf"
    result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out, "--out-vcf", out_vcf,
                 "--null", 9, "--top", 0)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert list(table["alt"]) == [other_base(ref), "N"] and table["logfc_bound"].notna().all()
    assert 0 < table["pvalue_bound"].iloc[0] <= 1 and np.isnan(table["pvalue_bound"].iloc[1])
    assert "GENOCNN_PVALUE_bound=" in out_vcf.read_text() and ",." in out_vcf.read_text()


def test_cli_mostly_n_rows_flagged_everywhere(tiny_run, tmp_path):
    """Summary, note, table, scored VCF and logos all leave the mostly-N allele out of the scores."""
    import cyvcf2

    rng = np.random.default_rng(17)
    chr1 = "".join(rng.choice(list("ACGT"), size=2000))
    genome_fa = write_genome(tmp_path / "g.fa", {"chr1": chr1, "chrN": "N" * 500})
    lines = ["chrN\t250\tallN\tN\tA,C\t.\t.\t.",
             f"chr1\t1000\tok\t{chr1[999]}\t{other_base(chr1[999])}\t.\t.\t."]
    vcf = write_vcf(tmp_path / "v.vcf", lines, header=["##fileformat=VCFv4.2", HEADER[-1]])
    out, out_vcf = tmp_path / "o" / "e.tsv", tmp_path / "o" / "s.vcf"
    result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome_fa, "--out", out, "--out-vcf", out_vcf,
                 "--top", 5, "--null", 9, "--quiet")
    assert result.exit_code == 0, result.output
    assert "1 alleles of 2 VCF records scored" in result.stdout
    assert f"{vcf}: 2 allele(s) not scored" in result.stderr and "mostly_n" in result.stderr
    table = pd.read_csv(out, sep="\t")
    assert list(table["mostly_n"]) == [True, True, False]
    assert table.iloc[:2, 7:].isna().all().all() and table.iloc[2, 7:].notna().all()
    reader = cyvcf2.VCF(str(out_vcf))
    records = list(reader)
    assert records[0].INFO.get("GENOCNN_LOGFC_bound") == (None, None)
    assert records[1].INFO.get("GENOCNN_LOGFC_bound") == pytest.approx(table["logfc_bound"].iloc[2], rel=1e-4)
    assert [p.name for p in (out.parent / "e_logos").iterdir()] == [f"01_chr1_1000_{chr1[999]}_{other_base(chr1[999])}.png"]
    assert "ISM logos of the top 1" in result.stdout


def test_cli_logo_folder_keeps_foreign_files_drops_old_logos_and_refuses_a_file(tiny_run, genome, tmp_path):
    seqs = genome["seqs"]
    vcf = write_vcf(tmp_path / "v.vcf", [snv("chr1", 404, "A", seqs), snv("chr2", 703, "T", seqs)])
    out = tmp_path / "effects.tsv"
    folder = tmp_path / "effects_logos"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "2024_summary.png").write_bytes(b"mine too")  # a rank-like name that is not a variant logo
    (folder / "plots").mkdir()
    for top in (2, 2, 1):  # a later run replaces the earlier run's ranked logos, keeps the rest
        result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out, "--top", top)
        assert result.exit_code == 0, result.output
        assert (folder / "notes.txt").read_text() == "mine" and (folder / "plots").is_dir()
        assert (folder / "2024_summary.png").read_bytes() == b"mine too"
        assert [p.name[:3] for p in sorted(folder.glob("0*.png"))] == ["01_", "02_"][:top]
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    taken = tmp_path / "other_logos"
    taken.write_text("a file, not a folder")
    other = tmp_path / "other.tsv"
    err = assert_user_error(cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", other,
                                "--top", 2), taken, [other])
    assert "not a directory" in err and "--top" in err
    assert taken.read_text() == "a file, not a folder"
    with pytest.raises(GenocnnError, match="not a directory"):
        write_variant_effects(tiny_run.model, vcf, genome["path"], other, top=1)
    assert cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", other, "--top", 0).exit_code == 0
    assert taken.read_text() == "a file, not a folder"  # --top 0: no logos, the file is not in the way


def test_cli_qual_numbers_are_copied_and_checked(tiny_run, genome, tmp_path):
    import cyvcf2

    seqs = genome["seqs"]
    quals = [".", "50", "3.5", "1e3"]
    lines = [snv("chr1", 400 + 50 * k, "A", seqs).replace("\t.\t.\t.", f"\t{q}\t.\t.")
             for k, q in enumerate(quals)]
    vcf = write_vcf(tmp_path / "v.vcf", lines)
    out, out_vcf = tmp_path / "e.tsv", tmp_path / "s.vcf"
    result = cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome["path"], "--out", out, "--out-vcf", out_vcf,
                 "--top", 0)
    assert result.exit_code == 0, result.output
    reader = cyvcf2.VCF(str(out_vcf))
    assert [v.QUAL for v in reader] == [None, 50.0, 3.5, 1000.0]
    bad = write_vcf(tmp_path / "bad.vcf", lines[:2] + [lines[2].replace("\t3.5\t", "\tabc\t")])
    err = assert_user_error(cli(tiny_run.run_dir, "--vcf", bad, "--genome", genome["path"], "--out", out,
                                "--out-vcf", tmp_path / "t.vcf", "--top", 0), f"{bad}: line 7",
                            [tmp_path / "t.vcf"])
    assert "QUAL 'abc'" in err


def test_cli_directory_given_as_vcf(tiny_run, genome, tmp_path):
    out = tmp_path / "e.tsv"
    err = assert_user_error(cli(tiny_run.run_dir, "--vcf", tmp_path, "--genome", genome["path"], "--out", out),
                            tmp_path, [out])
    assert "is a directory" in err and "no such" not in err


def test_cli_non_dna_genome_window_is_a_user_error(tiny_run, tmp_path):
    rng = np.random.default_rng(19)
    chr1 = "".join(rng.choice(list("ACGT"), size=2000))
    chr1 = chr1[:900] + "XX**..12@@" + chr1[910:]
    genome_fa = write_genome(tmp_path / "g.fa", {"chr1": chr1})
    vcf = write_vcf(tmp_path / "v.vcf", [f"chr1\t905\t.\tN\tA\t.\t.\t."],
                    header=["##fileformat=VCFv4.2", HEADER[-1]])
    out = tmp_path / "o" / "e.tsv"
    err = assert_user_error(cli(tiny_run.run_dir, "--vcf", vcf, "--genome", genome_fa, "--out", out),
                            genome_fa, [out, out.parent / "e_logos"])
    assert "chromosome 'chr1' at position 901" in err and f"{vcf}: line 3" in err
