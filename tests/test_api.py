import subprocess
import sys

import pytest

import genocnn


def test_every_public_name_resolves():
    for name in genocnn.__all__:
        assert getattr(genocnn, name) is not None, name


def test_import_is_light():
    """`import genocnn` must not pull torch in (the CLI and FASTA reading start fast)."""
    code = "import sys, genocnn; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_counts_are_checked_at_the_api(tiny_run, tiny_fastas):
    """A batch size of 0 used to return an empty table silently; -1 or 1.5 failed inside itertools."""
    model, (pos, _) = tiny_run.model, tiny_fastas
    for bad in (0, -1, 1.5, "8"):
        with pytest.raises(genocnn.GenocnnError, match=r"`batch_size` must be an integer >= 1"):
            genocnn.predict(model, pos, batch_size=bad)
        with pytest.raises(genocnn.GenocnnError, match=r"`batch_size` must be an integer >= 1"):
            genocnn.extract_motifs(model, pos, batch_size=bad)
    x = genocnn.one_hot(["ACGT" * 30], length=model.length)
    for call in (genocnn.gradient_x_input, genocnn.nullification_effects, genocnn.ism):
        with pytest.raises(genocnn.GenocnnError, match=r"`batch_size` must be an integer >= 1, got 0"):
            call(model, x, batch_size=0)
    for call in (genocnn.variant_effects, genocnn.write_variant_effects):
        with pytest.raises(genocnn.GenocnnError, match=r"`null` must be an integer >= 0, got -1"):
            call(model, "calls.vcf", "genome.fa", *(["e.tsv"] if call is genocnn.write_variant_effects else []),
                 null=-1)
    assert len(genocnn.predict(model, pos, batch_size=7)) == len(list(genocnn.read_fasta(pos)))
