"""The motif report: table, per-task influence, clusters, logos, report.html (parsed and in Chromium)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from genocnn.cli import app
from genocnn.compare import database_motifs, tomtom_matches
from genocnn.logos import information_matrix, write_logos
from genocnn.pwm import reverse_complement_motif
from genocnn.motif_io import read_motifs
from genocnn.inference import encode_for
from genocnn.motifs import MotifList, filter_influence, nullification_effects
from genocnn.pwm import Motif
from genocnn.export import MOTIF_FILES, describe, motif_table
from genocnn.naming import TABLE_COLUMNS
from genocnn.report import cluster_sentence, write_report

from tests.conftest import TINY_MOTIF

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def exported(tiny_run, tiny_fastas, tmp_path_factory) -> Path:
    """`genocnn motifs` on the tiny run, through the CLI."""
    out = tmp_path_factory.mktemp("report") / "M"
    result = CliRunner().invoke(app, ["motifs", str(tiny_run.run_dir), str(tiny_fastas[0]), "--out", str(out),
                                      "--device", "cpu"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert f"report: {out / 'report.html'}" in result.stdout
    assert "form" in result.stdout and "cluster" in result.stdout
    return out


@pytest.fixture(scope="module")
def table(exported) -> pd.DataFrame:
    return pd.read_csv(exported / "filters.tsv", sep="\t", keep_default_na=False, na_values=[""])


class ReportParser(HTMLParser):
    """Collects the motif table's rows (cells' text) and every <img> src."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.images: list[dict] = []
        self.text: list[str] = []
        self._in_motif_row = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and attrs.get("class") == "motif":
            self._in_motif_row = True
            self.rows.append([])
        elif tag == "td" and self._in_motif_row:
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)
        elif tag in ("script", "link", "iframe"):
            raise AssertionError(f"external or active content: <{tag}>")

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._in_motif_row = False

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data + " ")


def parse_report(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text())
    return parser


def names_frame(*rows: dict) -> pd.DataFrame:
    """A name_table-like frame: ``motif`` + the naming columns, unnamed best matches by default."""
    base = {c: None for c in TABLE_COLUMNS} | {"jaspar_name": "", "name_level": "", "name_reason": "no match",
                                                "jaspar_release": "JASPAR2024", "jaspar_collection": "CORE vertebrates"}
    return pd.DataFrame([base | row for row in rows], columns=["motif", *TABLE_COLUMNS])


# ---------------------------------------------------------------- files and table


def test_files_written(exported, table):
    names = {p.name for p in exported.iterdir()}
    clusters = {f"clusters.{ext}" for ext in ("meme", "jaspar", "transfac", "motif", "tsv")}
    assert set(MOTIF_FILES.values()) | {"filters.tsv", "report.html", "logos"} | clusters == names
    motifs = table[table["status"] == "exported"]
    order = motifs["motif"].tolist()
    for name in MOTIF_FILES.values():
        assert [m.name for m in read_motifs(exported / name)] == order, name
    homer = read_motifs(exported / "motifs.motif")
    meme = read_motifs(exported / "motifs.meme")
    for h, m in zip(homer, meme):
        assert h.description == m.description
        np.testing.assert_allclose(h.ppm, m.ppm, atol=1e-7)
    distinct = pd.read_csv(exported / "clusters.tsv", sep="\t")["motif"].tolist()
    assert sorted(p.name for p in (exported / "logos").iterdir()) == sorted(f"{n}.png" for n in order + distinct)
    for png in (exported / "logos").iterdir():
        assert png.read_bytes().startswith(PNG_MAGIC)


def test_table_columns_and_order(table, tiny_run):
    old = ["filter", "motif", "sites", "ic", "consensus", "influence", "jaspar_id", "jaspar_name",
           "p_value", "q_value", "status"]
    new = ["loss_change", "cluster", "offset", "orientation", "other_matches", "name_level", "e_value",
           "name_reason", "jaspar_release", "jaspar_collection"]
    assert set(old + new) <= set(table.columns)
    assert [c for c in table.columns if c in old] == old  # the old columns keep their order
    assert not any(c.startswith("influence_") for c in table.columns)  # one task
    assert len(table) == tiny_run.model.first_conv.out_channels
    motifs = table[table["status"] == "exported"]
    assert motifs["influence"].is_monotonic_decreasing
    assert motifs["cluster"].notna().all() and motifs["cluster"].iloc[0] == 1
    named = motifs[motifs["jaspar_id"].notna()]
    assert named["orientation"].isin(["+", "-"]).all()
    assert named["offset"].notna().all()


def test_names_only_when_confident_and_database_recorded(exported, table):
    """filters.tsv: a name only with a name level, the release and collection on every compared row;
    the motif files carry a name only when it is confident; the report states the database."""
    from pyjaspar import JASPAR_LATEST_RELEASE

    motifs = table[table["status"] == "exported"]
    assert (motifs["jaspar_release"] == JASPAR_LATEST_RELEASE).all()
    assert (motifs["jaspar_collection"] == "CORE vertebrates").all()
    unnamed = motifs[motifs["name_level"].isna()]
    assert len(unnamed), "the tiny run's weak filters should not all be named"
    assert unnamed["jaspar_name"].isna().all()  # empty in the file
    assert unnamed["jaspar_id"].notna().all() and unnamed["p_value"].notna().all()  # the best match, kept
    assert not unnamed["name_reason"].str.startswith("confident").any()
    named = motifs[motifs["name_level"].notna()]
    assert named["name_level"].isin(["tf", "family", "class"]).all()
    assert named["jaspar_name"].notna().all() and named["name_reason"].str.startswith("confident").all()
    n_targets = len(database_motifs())  # E = p x the number of JASPAR CORE vertebrate matrices
    np.testing.assert_allclose(motifs["e_value"], motifs["p_value"] * n_targets, rtol=2e-3)
    rows = motifs.set_index("motif").fillna("")
    for name in MOTIF_FILES.values():
        for m in read_motifs(exported / name):
            want = describe(rows.loc[m.name])
            got = m.description.replace("_", " ") if name == "motifs.jaspar" else m.description
            assert got == want, (name, m.name)
    html = (exported / "report.html").read_text()
    assert f"JASPAR release {JASPAR_LATEST_RELEASE}, collection CORE vertebrates" in html
    rows_html = parse_report(exported / "report.html").rows
    for (_, r), cells in zip(motifs.iterrows(), rows_html):
        match_cell = cells[-2]
        assert match_cell.startswith("not named") == pd.isna(r["jaspar_name"]), match_cell


def test_top_motif_is_the_planted_one_and_matches_its_logo_alignment(table, tiny_fastas, tiny_run):
    """The most influential motif holds the planted site; the loss change of its filter is the largest."""
    top = table.iloc[0]
    planted = TINY_MOTIF
    rc = planted[::-1].translate(str.maketrans("ACGT", "TGCA"))
    consensus = top["consensus"].upper()
    assert any(k in planted or k in rc for k in (consensus[i : i + 5] for i in range(len(consensus) - 4)))
    assert top["loss_change"] == table["loss_change"].max()


def test_offset_and_orientation_are_tomtoms(exported, table):
    """filters.tsv's best match, offset and strand equal a fresh Tomtom against JASPAR."""
    from genocnn.compare import jaspar_motifs

    motifs = read_motifs(exported / "motifs.jaspar")  # the counts, as exported
    fresh = tomtom_matches(motifs, jaspar_motifs(), n_best=1).set_index("query")
    rows = table[table["status"] == "exported"].set_index("motif")
    for m in motifs:
        assert rows.loc[m.name, "jaspar_id"] == fresh.loc[m.name, "target_id"]
        assert rows.loc[m.name, "offset"] == fresh.loc[m.name, "offset"]
        assert rows.loc[m.name, "orientation"] == fresh.loc[m.name, "strand"]


# ---------------------------------------------------------------- report.html


def test_report_html_structure(exported, table):
    parser = parse_report(exported / "report.html")
    motifs = table[table["status"] == "exported"]
    assert len(parser.rows) == len(motifs)
    assert [row[1].split()[0] for row in parser.rows] == motifs["motif"].tolist()
    top = parser.rows[0]
    assert top[0] == "1" and top[1].split()[0] == motifs.loc[motifs["influence"].idxmax(), "motif"]
    sources = [img["src"] for img in parser.images]
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    n_distinct = len(pd.read_csv(exported / "clusters.tsv", sep="\t"))
    assert len(sources) == len(motifs) + n_distinct + 1  # one logo per filter and distinct motif, and the curves
    for src in sources:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    logos = {img["alt"].removeprefix("logo of "): img["src"]
             for img in parser.images if img["alt"] != "training curves"}
    first = motifs["motif"].iloc[0]
    assert base64.b64decode(logos[first].split(",", 1)[1]) == (exported / "logos" / f"{first}.png").read_bytes()
    text = " ".join(" ".join(parser.text).split())
    assert cluster_sentence(table) in text
    html = (exported / "report.html").read_text()
    assert "http://" not in html and "https://" not in html


def test_report_shows_test_metrics(exported, tiny_run):
    metrics = json.loads((tiny_run.run_dir / "metrics.json").read_text())
    text = " ".join(parse_report(exported / "report.html").text)
    assert f"{metrics['auroc']:.3f}" in text and f"{metrics['auprc']:.3f}" in text


def test_report_escapes_text(tmp_path):
    evil = '<script>alert("x")</script>'
    motifs = MotifList([Motif("filter_0", np.eye(4) * 10, sites=10, extra={"filter": 0})], {1: 2})
    names = names_frame({"motif": "filter_0", "jaspar_id": "MA0001.1", "jaspar_name": evil, "name_level": "tf",
                         "p_value": 1e-5, "q_value": 1e-3, "e_value": 1e-2, "offset": 0, "orientation": "+",
                         "name_reason": "confident"})
    table = motif_table(motifs, np.array([0.3, 0.1]), names, clusters={"filter_0": 1})
    run = tmp_path / "run&<x>"
    run.mkdir()
    pd.DataFrame({"epoch": [1, 2], "train_loss": [0.7, 0.5], "valid_loss": [0.7, 0.6],
                  "valid_auroc": [0.6, 0.8]}).to_csv(run / "history.tsv", sep="\t", index=False)
    write_report(tmp_path / "r.html", table, {}, run_dir=run, release=evil, collection=evil)
    html = (tmp_path / "r.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "run&amp;&lt;x&gt;" in html
    parser = parse_report(tmp_path / "r.html")
    assert len(parser.rows) == 1 and len(parser.images) == 1  # the curves; no logo given
    assert "Skipped, too few sites: filter_1 (2 sites)" in " ".join(" ".join(parser.text).split())


def test_report_without_run_dir(tmp_path):
    motifs = MotifList([Motif("filter_0", np.eye(4) * 10, sites=10, extra={"filter": 0})])
    table = motif_table(motifs, np.array([0.3]), pd.DataFrame())
    write_report(tmp_path / "r.html", table, {})
    parser = parse_report(tmp_path / "r.html")
    assert len(parser.rows) == 1 and parser.images == []
    assert "Training" not in parser.text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium to render the report")
def test_report_renders_in_headless_chromium(exported, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    profile = tempfile.mkdtemp()
    try:
        subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1200,2000",
             (exported / "report.html").resolve().as_uri()],
            capture_output=True, timeout=120, check=True,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    image = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert image.shape[:2] == (2000, 1200)
    coloured = (np.abs(image - image.mean(axis=2, keepdims=True)).max(axis=2) > 60).mean()
    assert coloured > 0.005, "no coloured pixels: the curves and logos did not render"
    assert (image.min(axis=2) < 100).mean() > 0.01, "almost no dark pixels: no text rendered"


# ---------------------------------------------------------------- pieces


def test_motif_table_with_tasks_and_several_matches():
    motifs = MotifList([Motif(f"filter_{f}", np.eye(4) * 10, sites=10, extra={"filter": f}) for f in (0, 2)], {1: 3})
    influence = np.array([[0.1, 0.3], [0.5, 0.5], [0.4, 0.0]])
    names = names_frame({"motif": "filter_0", "jaspar_id": "MA1", "p_value": 1e-6, "q_value": 1e-4, "e_value": 1e-3,
                         "offset": -2, "orientation": "-", "other_matches": "MA2; MA3",
                         "name_reason": "a column-shuffled copy matches as well (p 1e-07)"})
    table = motif_table(motifs, influence, names, tasks=["t1", "t2"], loss_change=np.array([1.0, 2.0, 3.0]),
                        clusters={"filter_0": 1, "filter_2": 2})
    assert table["motif"].tolist() == ["filter_0", "filter_2", "filter_1"]
    np.testing.assert_allclose(table["influence"], [0.2, 0.2, 0.5])
    np.testing.assert_allclose(table["influence_t1"], [0.1, 0.4, 0.5])
    np.testing.assert_allclose(table["influence_t2"], [0.3, 0.0, 0.5])
    np.testing.assert_allclose(table["loss_change"], [1.0, 3.0, 2.0])
    first = table.iloc[0]
    assert (first["jaspar_id"], first["offset"], first["orientation"]) == ("MA1", -2, "-")
    assert (first["jaspar_name"], first["e_value"], first["other_matches"]) == ("", 1e-3, "MA2; MA3")
    assert first["jaspar_release"] == "JASPAR2024" and first["name_reason"].startswith("a column-shuffled")
    assert pd.isna(table.iloc[1]["jaspar_id"]) and pd.isna(table.iloc[1]["other_matches"])
    assert pd.isna(table.iloc[1]["jaspar_release"])  # filter_2 was not in the name table
    assert list(table.columns[-len(TABLE_COLUMNS) - 1:]) == [*TABLE_COLUMNS, "status"]
    assert table["cluster"].tolist()[:2] == [1, 2] and pd.isna(table["cluster"].iloc[2])
    assert table["status"].tolist() == ["exported", "exported", "skipped: too few sites"]
    assert cluster_sentence(table) == "2 filters form 2 clusters."


def test_cluster_sentence_names_the_largest_cluster():
    table = pd.DataFrame({"motif": list("abcde"), "status": "exported", "cluster": [1, 1, 1, 1, 2],
                          "jaspar_name": ["CTCF", "", "", None, "SP1"]})
    assert cluster_sentence(table) == (
        "5 filters form 2 clusters; the largest (cluster 1) has 4 filters, named CTCF, "
        "and 1 filters are on their own.")
    table["jaspar_name"] = ["", "", None, None, "SP1"]  # unnamed largest cluster: no name borrowed
    assert cluster_sentence(table) == (
        "5 filters form 2 clusters; the largest (cluster 1) has 4 filters, and 1 filters are on their own.")


def test_filter_influence_per_task_and_loss_change(tiny_run, tiny_fastas):
    model = tiny_run.model
    x = encode_for(model, tiny_fastas[0])[:64]
    mean = filter_influence(model, x)
    per_task = filter_influence(model, x, per_task=True)
    n_filters = model.first_conv.out_channels
    assert mean.shape == (n_filters,) and per_task.shape == (n_filters, len(model.tasks))
    np.testing.assert_allclose(per_task.mean(axis=1), mean)
    effects = nullification_effects(model, x, batch_size=7)
    np.testing.assert_allclose(effects.influence.mean(axis=1), mean, atol=1e-6)  # batch size does not matter
    ones = nullification_effects(model, x, labels=np.ones(len(x)))
    np.testing.assert_allclose(ones.loss_change, effects.loss_change, atol=1e-6)
    # naive loss change for the most influential filter: BCE(label 1) with and without it
    f = int(mean.argmax())
    layer = model.blocks[0][2]
    with torch.no_grad():
        means = model.first_layer_activations(x).mean(dim=(0, 2))
        base = torch.nn.functional.softplus(-model(x)).mean()
        handle = layer.register_forward_hook(
            lambda m, i, o: torch.cat([o[:, :f], means[f].expand_as(o[:, f:f + 1]), o[:, f + 1:]], 1))
        try:
            nulled = torch.nn.functional.softplus(-model(x)).mean()
        finally:
            handle.remove()
    assert effects.loss_change[f] == pytest.approx(float(nulled - base), abs=1e-5)
    zeros = nullification_effects(model, x, labels=np.zeros((len(x), 1)))
    assert zeros.loss_change[f] < 0 < effects.loss_change[f]  # unbound labels: nullifying the motif helps


def test_information_matrix_matches_logomaker():
    logomaker = pytest.importorskip("logomaker")
    rng = np.random.default_rng(0)
    motif = Motif("m", rng.dirichlet([0.5] * 4, 9).T * 40, sites=40)
    ours = information_matrix(motif)
    probabilities = pd.DataFrame(motif.ppm.T, columns=list("ACGT"))
    theirs = logomaker.transform_matrix(probabilities, from_type="probability", to_type="information")
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), atol=1e-9)


def test_reverse_complement_motif_twice_is_identity():
    rng = np.random.default_rng(1)
    motif = Motif("m", rng.uniform(0, 9, (4, 6)), background=(0.3, 0.2, 0.2, 0.3))
    rc = reverse_complement_motif(motif)
    np.testing.assert_array_equal(rc.pfm[0], motif.pfm[3, ::-1])  # A <- T, reversed
    np.testing.assert_array_equal(reverse_complement_motif(rc).pfm, motif.pfm)
    np.testing.assert_allclose(rc.ppm[:, ::-1][::-1], motif.ppm)


def test_write_logos(tmp_path):
    rng = np.random.default_rng(2)
    motifs = [Motif(f"m{i}", rng.dirichlet([0.3] * 4, w).T * 50, sites=50) for i, w in enumerate((1, 8, 25))]
    target = Motif("MA0000.1", rng.dirichlet([0.3] * 4, 12).T * 50, description="TF")
    paths = write_logos(tmp_path / "logos", motifs, [None, (target, -3, "-"), (target, 20, "+")])
    assert [p.name for p in paths] == ["m0.png", "m1.png", "m2.png"]
    for p in paths:
        assert p.read_bytes().startswith(PNG_MAGIC)


def test_cli_jaspar_release_and_tax_group(tiny_run, tiny_fastas, tmp_path):
    runner = CliRunner()
    out = tmp_path / "M"
    result = runner.invoke(app, ["motifs", str(tiny_run.run_dir), str(tiny_fastas[0]), "--out", str(out),
                                 "--device", "cpu", "--jaspar-release", "JASPAR2020", "--tax-group", "all"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "JASPAR release JASPAR2020, collection CORE all taxonomic groups" in (out / "report.html").read_text()
    table = pd.read_csv(out / "filters.tsv", sep="\t", keep_default_na=False)
    exported = table[table["status"] == "exported"]
    assert set(exported["jaspar_release"]) == {"JASPAR2020"}
    assert set(exported["jaspar_collection"]) == {"CORE all taxonomic groups"}
    bad = runner.invoke(app, ["motifs", str(tiny_run.run_dir), str(tiny_fastas[0]), "--out", str(tmp_path / "B"),
                              "--device", "cpu", "--jaspar-release", "JASPAR1999"])
    assert bad.exit_code == 2 and "JASPAR1999" in bad.stderr


def test_influence_equals_a_naive_forward_hook_nullification(tiny_run, tiny_fastas):
    """The fast replay of the layers after the first gives what full forward passes with a hook give."""
    model = tiny_run.model
    x = encode_for(model, tiny_fastas[0])[:50]
    layer = model.blocks[0][2]
    with torch.no_grad():
        means = model.first_layer_activations(x).mean(dim=(0, 2))
        base = torch.sigmoid(model(x))
        naive = []
        for f in range(model.first_conv.out_channels):
            def hook(_m, _i, out, f=f):
                out = out.clone()
                out[:, f, :] = means[f]
                return out
            handle = layer.register_forward_hook(hook)
            try:
                naive.append(float((base - torch.sigmoid(model(x))).mean()))
            finally:
                handle.remove()
    np.testing.assert_allclose(filter_influence(model, x, batch_size=16), naive, atol=1e-6)


def test_multi_task_model_gets_influence_per_task(tiny_config, tiny_fastas, tmp_path):
    from genocnn.models import build_model
    from genocnn.export import export_motifs

    torch.manual_seed(0)
    model = build_model(tiny_config.model, n_tasks=2, length=100).eval()
    model.tasks, model.run_config = ["ctcf", "rad21"], tiny_config
    table = export_motifs(model, tiny_fastas[0], tmp_path / "M", min_sites=1)
    assert {"influence_ctcf", "influence_rad21"} <= set(table.columns)
    np.testing.assert_allclose(table["influence"], table[["influence_ctcf", "influence_rad21"]].mean(axis=1))
    html = (tmp_path / "M" / "report.html").read_text()
    assert "influence ctcf" in html and "influence rad21" in html
    assert "Training" not in html  # no run_dir given


def test_distinct_motifs_lead_the_report_and_load_in_biopython(exported, table):
    """clusters.*: one motif per group of filters, ranked by group influence, readable by Bio.motifs."""
    from Bio import motifs as bio_motifs

    clusters = pd.read_csv(exported / "clusters.tsv", sep="\t", keep_default_na=False)
    for column in ("rank", "motif", "members", "sites", "ic", "consensus", "influence", "jaspar_id",
                   "jaspar_name", "q_value", "jaspar_release", "jaspar_collection"):
        assert column in clusters.columns, column
    assert clusters["rank"].tolist() == list(range(1, len(clusters) + 1))
    assert clusters["influence"].is_monotonic_decreasing
    members = [m for row in clusters["members"] for m in row.split(",")]
    exported_filters = set(table.loc[table["status"] == "exported", "motif"])
    assert set(members) <= exported_filters and len(members) == len(set(members))
    with open(exported / "clusters.meme") as fh:
        parsed = bio_motifs.parse(fh, "minimal")
        assert [m.name for m in parsed] == clusters["motif"].tolist()
    page = (exported / "report.html").read_text()
    assert page.index("Distinct motifs") < page.index("<h2>Filters</h2>")
