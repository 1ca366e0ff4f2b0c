import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from genocnn.encode import reverse_complement_sequence
from genocnn.fasta import read_fasta
from genocnn.prediction import predict


def test_predict_table_in_input_order(tiny_run, tiny_fastas):
    pos, neg = tiny_fastas
    with pytest.warns(UserWarning, match=r"0 of 300 sequences were centre-cropped and \d+ zero-padded"):
        table = predict(tiny_run.model, pos, batch_size=7)  # 60-100 bp for a 100 bp model
    ids = [i for i, _ in read_fasta(pos)]
    assert list(table.columns) == ["id", "bound", "mostly_n"] and table["id"].tolist() == ids
    assert not table["mostly_n"].any()
    assert table["bound"].between(0, 1).all()
    unbound = predict(tiny_run.model, neg)["bound"]
    truth = [1] * len(table) + [0] * len(unbound)
    assert roc_auc_score(truth, pd.concat([table["bound"], unbound])) > 0.9


def test_batch_size_and_strand_invariance(tiny_run, tiny_fastas):
    pos, _ = tiny_fastas
    # model length (100 bp) so that no padding breaks the strand symmetry
    records = [(i, s) for i, s in read_fasta(pos) if len(s) == 100] or [("x", "ACGTTGCA" * 12 + "ACGT")]
    a = predict(tiny_run.model, records, batch_size=1)
    b = predict(tiny_run.model, records, batch_size=64)
    pd.testing.assert_frame_equal(a, b, atol=1e-5)
    rc = predict(tiny_run.model, [(i, reverse_complement_sequence(s)) for i, s in records])
    assert (a["bound"] - rc["bound"]).abs().max() < 1e-5


def test_plain_strings_lowercase_and_n(tiny_run):
    table = predict(tiny_run.model, ["ACGT" * 30, "acgt" * 30, "N" * 40])
    assert table["id"].tolist() == ["seq0", "seq1", "seq2"]
    assert table["mostly_n"].tolist() == [False, False, True]
    assert table["bound"][0] == pytest.approx(table["bound"][1], abs=1e-6)


def test_no_sequences_give_an_empty_table_of_the_same_columns(tiny_run):
    empty, one = predict(tiny_run.model, []), predict(tiny_run.model, [("x", "ACGT" * 10)])
    assert list(empty.columns) == list(one.columns) and len(empty) == 0
    assert empty.dtypes.to_dict() == one.dtypes.to_dict()  # ids are strings, not floats
