"""Temp space for work that may hold patient data: always under the data root, never /tmp.

Each process makes its folders under ``<data root>/tmp`` (0700) named with its pid, so a
start can sweep what dead processes left (a killed worker cannot clean up after itself).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pipeline.core.fsutil import ensure_dir

_PREFIX = "work-"


def work_dir(scratch: Path, purpose: str) -> tempfile.TemporaryDirectory:
    """A private temp folder under ``scratch``, removed when the returned object is cleaned up."""
    ensure_dir(scratch)
    return tempfile.TemporaryDirectory(prefix=f"{_PREFIX}{os.getpid()}-{purpose}-", dir=scratch)


def sweep(scratch: Path, *, keep_alive: bool = True) -> int:
    """Remove the temp folders of processes that are gone; return how many were removed.

    With ``keep_alive`` false, remove every folder (a start that owns the data root alone).
    """
    if not scratch.is_dir():
        return 0
    removed = 0
    for path in scratch.iterdir():
        owner = _owner(path.name)
        if keep_alive and owner is not None and _running(owner):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


def _owner(name: str) -> int | None:
    if not name.startswith(_PREFIX):
        return None
    pid = name[len(_PREFIX) :].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
