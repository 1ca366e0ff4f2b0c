import pytest

from genocnn.config import Config, config_from_dict, dump_config, load_config, preset_names
from genocnn.errors import GenocnnError


def test_defaults_match_default_preset():
    assert load_config("default") == Config()


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_and_builds(name):
    from genocnn.models import build_model

    cfg = load_config(name)
    assert build_model(cfg.model, 1, 200) is not None


def test_dump_round_trip(tmp_path):
    cfg = config_from_dict({"training": {"epochs": 3}, "model": {"dense": [16, 8]}})
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize(
    "text, needle",
    [
        ("training:\n  epoch: 3\n", "training.epoch"),
        ("training:\n  epochs: three\n", "training.epochs"),
        ("model:\n  conv:\n    - activation: tanh\n", "model.conv[0].activation"),
        ("data:\n  valid_fraction: 0.9\n", "data.valid_fraction"),
        ("training: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "mapping"),
        ("training:\n  rc_augment: 1\n", "training.rc_augment"),
        ("training:\n  scheduler: step\n", "training.scheduler"),
        ("training:\n  lr_factor: 1.5\n", "training.lr_factor"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(GenocnnError) as err:
        load_config(path)
    assert "bad.yaml" in str(err.value) and needle in str(err.value)


def test_missing_config_and_unknown_preset(tmp_path):
    with pytest.raises(GenocnnError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(GenocnnError, match="preset"):
        load_config("no_such_preset")


def test_presets_found_in_a_source_checkout_or_an_installed_copy(tmp_path):
    from genocnn.config import PRESET_DIR, find_preset_dir

    source, installed = tmp_path / "configs", tmp_path / "share" / "genocnn" / "configs"
    installed.mkdir(parents=True)
    (installed / "default.yaml").write_text("{}\n")
    assert find_preset_dir((source, installed)) == installed  # a wheel install: no source tree
    source.mkdir()
    (source / "default.yaml").write_text("{}\n")
    assert find_preset_dir((source, installed)) == source
    assert (PRESET_DIR / "default.yaml").is_file()
