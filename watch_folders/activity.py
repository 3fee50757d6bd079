"""The daemon's activity log (one JSON line per outcome) and the status built from it.

No patient names or text: file names, document ids, MRNs, outcomes and reasons.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipeline.core.config import Config
from pipeline.core.locks import holder
from pipeline.runs.run import Outcome
from watch_folders.tracker import is_ignored


def _per_site(config: Config, stem: str, suffix: str) -> Path:
    # Several sites share the data root: each runs its own daemon and keeps its own activity.
    return config.root / (f"{stem}{suffix}" if config.database.url is None else f"{stem}.{config.site}{suffix}")


def activity_path(config: Config) -> Path:
    return _per_site(config, "activity", ".jsonl")


def lock_path(config: Config) -> Path:
    return _per_site(config, "daemon", ".lock")


def record(config: Config, outcomes: list[Outcome]) -> None:
    """Append outcomes durably (they are written after the index commit)."""
    lines = []
    for o in outcomes:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": o.status,
            "file": o.source.display_name,
            "doc_ids": o.doc_ids,
            "mrn": o.mrn,
            "reason": o.reason,
            "pages": o.pages,
            "ocr_seconds": round(o.ocr_seconds, 2),
            "seconds": round(o.seconds, 2),
        }
        lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
    fd = os.open(activity_path(config), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, "".join(lines).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Status:
    daemon_pid: int | None
    waiting: int
    in_flight: int
    today: Counter = field(default_factory=Counter)
    last_errors: list[dict] = field(default_factory=list)


def _waiting(config: Config) -> int:
    count = 0
    for folder in config.drop_folders:
        if not folder.path.is_dir():
            continue
        walker = folder.path.rglob("*") if folder.recursive else folder.path.glob("*")
        for path in walker:
            if (
                path.is_file()
                and path.suffix.lower() in config.watch.extensions
                and not is_ignored(path, folder.path, config.watch.ignore)
            ):
                count += 1
    return count


def status(config: Config, errors: int = 5) -> Status:
    processing = config.processing_dir
    in_flight = sum(1 for p in processing.iterdir() if not p.name.endswith(".claim.json")) if processing.is_dir() else 0
    result = Status(holder(lock_path(config)), _waiting(config), in_flight)
    today = datetime.now(UTC).date().isoformat()
    path = activity_path(config)
    if path.exists():
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("at", "").startswith(today):
                    result.today[entry["status"]] += 1
                if entry.get("status") == "failed":
                    result.last_errors = [*result.last_errors, entry][-errors:]
    return result
