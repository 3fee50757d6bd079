"""Durable, private file operations: every write is temp → fsync → rename → fsync dir.

A reader never sees half a file, and a power cut leaves either the old or the new
file in place. Files are created 0600 and folders 0700 whatever the caller's umask.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

FILE_MODE = 0o600
DIR_MODE = 0o700
_CHUNK = 1 << 20


def ensure_dir(path: Path) -> Path:
    """Create a private folder (and parents) if missing."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_path(final: Path) -> Path:
    return final.with_name(f".tmp-{os.getpid()}-{final.name}")


def remove_stale_temps(final: Path) -> None:
    """Remove the temp files that interrupted writes of ``final`` left, by any process."""
    prefix, suffix = ".tmp-", f"-{final.name}"
    try:
        siblings = list(final.parent.iterdir())
    except FileNotFoundError:
        return
    for path in siblings:
        name = path.name
        if name.startswith(prefix) and name.endswith(suffix) and name[len(prefix) : -len(suffix)].isdigit():
            path.unlink(missing_ok=True)


def atomic_write(final: Path, fill: Callable[[Path], None]) -> Path:
    """Let ``fill`` write a temp file beside ``final``, then make it durable and visible."""
    ensure_dir(final.parent)
    temp = _temp_path(final)
    try:
        fill(temp)
        os.chmod(temp, FILE_MODE)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)
    return final


def atomic_write_bytes(final: Path, data: bytes) -> Path:
    return atomic_write(final, lambda temp: _write_new(temp, data))


def atomic_write_json(final: Path, obj: object) -> Path:
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return atomic_write_bytes(final, text.encode("utf-8"))


def atomic_copy(source: Path, final: Path) -> Path:
    return atomic_write(final, lambda temp: _copy_new(source, temp))


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _copy_new(source: Path, path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
        shutil.copyfileobj(src, out, _CHUNK)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
        return loaded
