"""Config: validated once; a bad key is named; paths are relative to the file."""

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_a_config_of_one_key_gives_defaults_relative_to_the_file(tmp_path):
    config = load_config(write(tmp_path, "data_root: data\n"))
    assert config.root == tmp_path / "data"
    assert config.archive_dir == tmp_path / "data" / "archive"
    assert config.ocr.dpi == 300
    assert "discharge_summary" in config.classification.types
    assert len(config.classification.types) == 17


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_an_empty_config_is_refused_and_creates_nothing(tmp_path, text):
    with pytest.raises(ConfigError, match=r"is empty; start from the project's config\.yaml"):
        load_config(write(tmp_path, text))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_the_shipped_config_is_valid_and_complete():
    from pathlib import Path

    config = load_config(Path(__file__).parents[2] / "config.yaml")
    assert len(config.classification.types) == 17
    assert config.data_root.as_posix() == "data"


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"ocr\.dpii: unknown setting"):
        load_config(write(tmp_path, "ocr:\n  dpii: 300\n"))


def test_bad_value_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"ocr\.dpi: "):
        load_config(write(tmp_path, "ocr:\n  dpi: 20\n"))


def test_bad_regex_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"extraction\.mrn_labels: .*not a valid regular expression"):
        load_config(write(tmp_path, "extraction:\n  mrn_labels: ['MRN(']\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_not_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "ocr: [unclosed\n"))


def test_unclassified_is_reserved(tmp_path):
    text = "classification:\n  types:\n    unclassified: {titles: [x]}\n"
    with pytest.raises(ConfigError, match="reserved"):
        load_config(write(tmp_path, text))


def test_absolute_data_root(tmp_path):
    config = load_config(write(tmp_path, f"data_root: {tmp_path / 'elsewhere'}\n"))
    assert config.root == tmp_path / "elsewhere"
