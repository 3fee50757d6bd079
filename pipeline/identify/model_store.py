"""The document-type model file in the data root: written atomically, read without pickle.

``<data_root>/classifier/doctype-model.npz`` holds the model's arrays and a JSON header
(format, scikit-learn version, training-set hash, figures). It is read with
``numpy.load(allow_pickle=False)``; its header is checked against a schema and the
configuration's document types, its size and the sizes its arrays declare are capped
before any is read, and every array is checked against the header, so a damaged,
foreign or crafted file can neither run code nor exhaust the memory nor send inputs
to failed/: it is ignored with one warning line and the rules alone decide until the
next training. Each process reads the file once and again
only when it changes (the daemon retrains while it runs).
"""

from __future__ import annotations

import json
import logging
import os
import stat
import zipfile
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.core.clock import now_utc
from pipeline.core.config import Config
from pipeline.core.fsutil import FILE_MODE, atomic_write, remove_stale_temps

if TYPE_CHECKING:  # scikit-learn is imported only where a model is trained or read
    from pipeline.identify.learned import Figures, TypeModel

log = logging.getLogger("medarchive.classifier")

FORMAT = "medarchive-doctype-model"
FORMAT_VERSION = 1
_ARRAYS = ("coef", "intercept", "platt_a", "platt_b")
# A model of many types over every feature is some tens of MB unpacked; past these a
# file is not one of ours (a crafted 1 MB file unpacked into 1.4 GB).
MAX_FILE_BYTES = 128 << 20
MAX_UNPACKED_BYTES = 512 << 20


class _Header(BaseModel):
    """What the header must hold, typed (a wrong type is a damaged or foreign file)."""

    model_config = ConfigDict(extra="allow", strict=True)

    format: str
    format_version: int
    sklearn: str
    created_at: str
    training_hash: str
    classes: list[str]
    blocks: list[Any]
    features: list[int]
    figures: dict[str, Any]


class ModelUnusable(Exception):
    """The model file cannot be used (the message says why); the rules decide alone."""


@dataclass(frozen=True)
class StoredModel:
    model: TypeModel
    header: dict[str, Any]

    @property
    def training_hash(self) -> str:
        return str(self.header["training_hash"])

    @property
    def figures(self) -> Figures:
        from pipeline.identify.learned import Figures

        return Figures.from_json(self.header["figures"])


def model_dir(config: Config) -> Path:
    return config.root / "classifier"


def model_path(config: Config) -> Path:
    return model_dir(config) / "doctype-model.npz"


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def _block_spec() -> list[list[object]]:
    from pipeline.identify.learned import BLOCKS

    return [[b.part, b.analyzer, list(b.ngrams), b.max_features, b.weight] for b in BLOCKS]


def save(config: Config, model: TypeModel, figures: Figures, training_hash: str) -> Path:
    """Write the model file atomically (temp, fsync, rename), 0600."""
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sklearn": _sklearn_version(),
        "created_at": now_utc(),
        "training_hash": training_hash,
        "classes": list(model.classes),
        "blocks": _block_spec(),
        "features": [len(v) for v in model.vocabularies],
        "figures": figures.to_json(),
    }
    arrays = {"header": _bytes(json.dumps(header))}
    for i, (vocab, idf) in enumerate(zip(model.vocabularies, model.idf, strict=True)):
        arrays[f"vocab_{i}"] = _bytes("\n".join(vocab))
        arrays[f"idf_{i}"] = idf.astype(np.float32)
    arrays |= {
        "coef": model.coef.astype(np.float32),
        "intercept": model.intercept.astype(np.float64),
        "platt_a": model.platt_a.astype(np.float64),
        "platt_b": model.platt_b.astype(np.float64),
    }

    def fill(temp: Path) -> None:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, allow_pickle=False, **arrays)

    remove_stale_temps(model_path(config))  # a training the daemon's stop cut short
    return atomic_write(model_path(config), fill)


def _bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _text(array: np.ndarray) -> str:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ModelUnusable("a text entry is not UTF-8 bytes")
    return array.tobytes().decode("utf-8")


def _terms(text: str) -> tuple[str, ...]:
    return tuple(text.split("\n")) if text else ()


def _check_header(header: dict[str, Any]) -> None:
    if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
        raise ModelUnusable("not a medarchive document-type model of this version")
    if header.get("sklearn") != _sklearn_version():
        raise ModelUnusable(f"trained with scikit-learn {header.get('sklearn')}, this is {_sklearn_version()}")
    if header.get("blocks") != _block_spec():
        raise ModelUnusable("trained on other features than this version of medarchive computes")


def _valid_header(raw: object, types: Collection[str] | None) -> dict[str, Any]:
    from pipeline.identify.learned import Figures

    if not isinstance(raw, dict):
        raise ModelUnusable("the header is not a mapping")
    _check_header(raw)
    try:
        header = _Header.model_validate(raw)
        Figures.from_json(header.figures)
    except (ValidationError, TypeError, KeyError, ValueError) as exc:
        problem = exc.errors()[0] if isinstance(exc, ValidationError) else None
        where = ".".join(str(p) for p in problem["loc"]) + f": {problem['msg']}" if problem else str(exc)
        raise ModelUnusable(f"a malformed header ({where})") from None
    if len(set(header.classes)) != len(header.classes):
        raise ModelUnusable("the header names a type twice")
    unknown = sorted(set(header.classes) - set(types)) if types is not None else []
    if unknown:
        raise ModelUnusable(f"trained on types this configuration does not have ({', '.join(unknown)})")
    return raw


def _check_sizes(path: Path) -> None:
    """Refuse a file too large, or whose entries would unpack too large, before reading any."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ModelUnusable(f"{size} bytes, more than a model can be ({MAX_FILE_BYTES})")
    unpacked = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            # What the zip says it holds, or what the array's own header says it is, whichever is more.
            unpacked += max(info.file_size, _declared_bytes(archive, info))
            if unpacked > MAX_UNPACKED_BYTES:
                raise ModelUnusable(f"its arrays would take more memory than a model can ({MAX_UNPACKED_BYTES} bytes)")


def _declared_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ModelUnusable(f"others can write it (mode {stat.filemode(mode)})")


def read(path: Path, types: Collection[str] | None = None) -> StoredModel:
    """The model in ``path``, checked (its types among ``types`` when given); ModelUnusable when it cannot be used."""
    from pipeline.identify.learned import BLOCKS, TypeModel

    try:
        _check_private(path)
        _check_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            header = _valid_header(json.loads(_text(data["header"])), types)
            blocks = len(BLOCKS)
            vocabularies = tuple(_terms(_text(data[f"vocab_{i}"])) for i in range(blocks))
            idf = tuple(np.asarray(data[f"idf_{i}"], dtype=np.float32) for i in range(blocks))
            coef, intercept, a, b = (np.asarray(data[name]) for name in _ARRAYS)
    except ModelUnusable:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ModelUnusable(f"unreadable ({type(exc).__name__}: {exc})") from None
    classes = tuple(header.get("classes") or ())
    _check_shapes(classes, vocabularies, idf, coef, intercept, a, b)
    model = TypeModel(
        classes,
        vocabularies,
        idf,
        coef.astype(np.float32),
        intercept.astype(np.float64),
        a.astype(np.float64),
        b.astype(np.float64),
    )
    return StoredModel(model, header)


def _check_shapes(
    classes: Sequence[str],
    vocabularies: Sequence[Sequence[str]],
    idf: Sequence[np.ndarray],
    coef: np.ndarray,
    intercept: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
) -> None:
    from pipeline.identify.learned import BLOCKS

    features = sum(len(v) for v in vocabularies)
    rows = 1 if len(classes) == 2 else len(classes)
    problems = [
        len(classes) < 2 and "fewer than two types",
        any(len(v) > block.max_features for v, block in zip(vocabularies, BLOCKS, strict=True))
        and "more features than a block has",
        any(len(v) != len(w) for v, w in zip(vocabularies, idf, strict=True)) and "vocabulary and idf sizes differ",
        coef.shape != (rows, features) and f"coefficients are {coef.shape}, expected {(rows, features)}",
        intercept.shape != (rows,) and "intercepts do not match the types",
        (a.shape != (len(classes),) or b.shape != (len(classes),)) and "calibration does not match the types",
        any(not np.all(np.isfinite(x)) for x in (coef, intercept, a, b, *idf)) and "non-finite numbers",
    ]
    found = [p for p in problems if p]
    if found:
        raise ModelUnusable("; ".join(found))


_loaded: dict[Path, tuple[tuple[int, int, int], StoredModel | None]] = {}


def current(config: Config) -> StoredModel | None:
    """The model this process uses, or None (rules alone): read once, again when the file changes."""
    if not config.classification.learned:
        return None
    path = model_path(config)
    try:
        st = path.stat()
    except FileNotFoundError:
        _loaded.pop(path, None)
        return None
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _loaded.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        stored: StoredModel | None
        stored = found = read(path, config.classification.types)
        log.info(
            "document-type model loaded: %d types, trained %s", len(found.model.classes), found.header["created_at"]
        )
    except ModelUnusable as exc:
        log.warning(
            "document-type model %s ignored: %s; the rules alone decide until the next training", path.name, exc
        )
        stored = None
    _loaded[path] = (key, stored)
    return stored
