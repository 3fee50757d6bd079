"""A crafted model file is ignored with one warning: a malformed header, types the configuration lacks, too large."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.config import load_config
from pipeline.identify import model_store
from pipeline.identify.learned import train
from tests.unit.test_learned import examples


@pytest.fixture(scope="module")
def trained():
    return train(examples(40, seed=1), min_per_type=3)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data_root: data\n")
    return load_config(path)


def _rewrite(path: Path, **arrays: np.ndarray) -> None:
    with np.load(path, allow_pickle=False) as data:
        kept = {name: data[name] for name in data.files}
    with open(path, "wb") as handle:
        np.savez(handle, **{**kept, **arrays})
    path.chmod(0o600)


def _with_header(path: Path, **changes: object) -> None:
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(data["header"].tobytes())
    text = json.dumps({**header, **changes}).encode()
    _rewrite(path, header=np.frombuffer(text, dtype=np.uint8))


def _ignored_once(config, caplog) -> str:
    model_store._loaded.clear()
    with caplog.at_level(logging.WARNING, logger="medarchive.classifier"):
        assert model_store.current(config) is None
        assert model_store.current(config) is None
    warnings = [r.message for r in caplog.records if "ignored" in r.message]
    assert len(warnings) == 1 and "rules alone" in warnings[0]
    return warnings[0]


def test_a_sound_model_is_used(config, trained):
    model_store.save(config, *trained, "abc")
    model_store._loaded.clear()
    assert model_store.current(config) is not None


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"classes": 5}, "classes"),
        ({"classes": ["progress_note", 7]}, "classes"),
        ({"created_at": None}, "created_at"),
        ({"figures": {"nonsense": 1}}, "malformed header"),
        ({"features": "many"}, "features"),
    ],
)
def test_a_malformed_header_is_ignored_with_one_warning(config, trained, caplog, changes, said):
    path = model_store.save(config, *trained, "abc")
    _with_header(path, **changes)
    assert said in _ignored_once(config, caplog)


def test_a_model_of_types_the_configuration_lacks_is_ignored(config, trained, caplog):
    path = model_store.save(config, *trained, "abc")
    classes = list(trained[0].classes)
    _with_header(path, classes=[*classes[:-1], "horoscope"])
    assert "horoscope" in _ignored_once(config, caplog)


def test_arrays_declared_larger_than_a_model_are_never_allocated(config, trained, caplog, monkeypatch):
    path = model_store.save(config, *trained, "abc")
    # An array header claiming 40 GB, with no data behind it.
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000)})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("huge.npy", header.getvalue())
    allocated: list[tuple] = []
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: allocated.append(a) or np.zeros(1))
    assert "more memory than a model" in _ignored_once(config, caplog)
    assert allocated == []


def test_a_file_over_the_size_cap_is_ignored(config, trained, caplog, monkeypatch):
    path = model_store.save(config, *trained, "abc")
    monkeypatch.setattr(model_store, "MAX_FILE_BYTES", path.stat().st_size - 1)
    assert "more than a model can be" in _ignored_once(config, caplog)
