"""Claiming dropped files into the processing area, and releasing them once durable.

A claim is an atomic rename out of the drop folder, so no second event, sweep or
process can take the same file. Its note (original name, folder defaults) is
written first: a note without a file is a claim that never happened and is
discarded; a file without a note is still processed, with no folder defaults.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from pipeline.archive.store import safe_file_name
from pipeline.core.config import Config, DropFolder
from pipeline.core.fsutil import (
    atomic_copy,
    atomic_write_json,
    ensure_dir,
    fsync_dir,
    read_json,
)
from pipeline.runs.run import InputFile

NOTE_SUFFIX = ".claim.json"


def _claim_id(name: str) -> str:
    return f"{time.time_ns()}-{safe_file_name(name)[:100]}"


def claim(config: Config, path: Path, folder: DropFolder) -> InputFile | None:
    """Move ``path`` into processing/; None when it vanished first (another claimer won)."""
    processing = ensure_dir(config.processing_dir)
    claim_id = _claim_id(path.name)
    target = processing / claim_id
    note = processing / (claim_id + NOTE_SUFFIX)
    source = InputFile(target, path.name, folder.source_label, folder.doc_type_hint, folder.box)
    atomic_write_json(
        note,
        {
            "name": path.name,
            "folder": str(folder.path),
            "label": folder.source_label,
            "type_hint": folder.doc_type_hint,
            "box": folder.box,
            "claimed_at": datetime.now().isoformat(timespec="seconds"),
        },
    )
    try:
        os.rename(path, target)
    except FileNotFoundError:
        note.unlink(missing_ok=True)
        return None
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            note.unlink(missing_ok=True)
            raise
        # Another file system: copy durably first; a crash before the unlink
        # leaves the original to be claimed again and recognised as a duplicate.
        atomic_copy(path, target)
        path.unlink()
    fsync_dir(processing)
    return source


def pending_claims(config: Config) -> tuple[list[InputFile], list[InputFile]]:
    """Files claimed by an earlier run that did not reach an outcome, oldest first: those to
    take again, and those that were in flight at too many of the daemon's deaths to retry."""
    processing = config.processing_dir
    if not processing.is_dir():
        return [], []
    retry, poison = [], []
    for note in sorted(processing.glob("*" + NOTE_SUFFIX)):
        if not (processing / note.name[: -len(NOTE_SUFFIX)]).exists():
            note.unlink()
    for path in sorted(processing.iterdir()):
        if path.name.endswith(NOTE_SUFFIX) or path.name.startswith(".tmp-"):
            continue
        source, crashes = _count_crash(path)
        (poison if crashes >= config.watch.set_aside_after_crashes else retry).append(source)
    return retry, poison


def _note_path(path: Path) -> Path:
    return path.with_name(path.name + NOTE_SUFFIX)


def _read_note(path: Path) -> dict:
    try:
        note = read_json(_note_path(path))
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def _count_crash(path: Path) -> tuple[InputFile, int]:
    """The claim as an input; a claim still marked in flight was in flight when the daemon died."""
    note = _read_note(path)
    crashes = int(note.get("crashes", 0))
    if note.get("in_flight"):
        crashes += 1
        atomic_write_json(_note_path(path), {**note, "in_flight": False, "crashes": crashes})
    name = note.get("name") or path.name.split("-", 1)[-1]
    return InputFile(path, name, note.get("label"), note.get("type_hint"), note.get("box")), crashes


def mark_in_flight(source: InputFile, in_flight: bool = True) -> None:
    """Note that the daemon is reading this claim (or no longer is, on a clean stop)."""
    note = _read_note(source.path)
    if source.path.exists() and bool(note.get("in_flight")) != in_flight:
        atomic_write_json(_note_path(source.path), {**note, "in_flight": in_flight})


def release(config: Config, source: InputFile) -> None:
    """The outcome is durable: drop the original, or keep it in processed/ for a while."""
    path = source.path
    if config.watch.keep_processed_days and path.exists():
        day = ensure_dir(config.processed_dir / date.today().isoformat())
        shutil.move(path, day / path.name)
        fsync_dir(day)
    else:
        path.unlink(missing_ok=True)
    _note_path(path).unlink(missing_ok=True)
    fsync_dir(path.parent)


def purge_processed(config: Config, today: date | None = None) -> int:
    """Remove kept originals older than keep_processed_days; return how many days went."""
    keep = config.watch.keep_processed_days
    if not keep or not config.processed_dir.is_dir():
        return 0
    cutoff = (today or date.today()) - timedelta(days=keep)
    removed = 0
    for day in config.processed_dir.iterdir():
        try:
            old = date.fromisoformat(day.name) < cutoff
        except ValueError:
            continue
        if old:
            shutil.rmtree(day)
            removed += 1
    return removed
