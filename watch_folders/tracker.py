"""Decide when a dropped file is complete: unchanged for a quiet period, and openable.

Scanners and copy tools write in bursts; a file whose size and mtime have not
moved for the quiet period is taken as finished. Pure logic: the daemon feeds it
observations with the time they were made.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass
from pathlib import Path, PurePath


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    stable_since: float
    tag: object = None


def is_ignored(path: PurePath, root: PurePath, patterns: list[str]) -> bool:
    """Whether any part of ``path`` below ``root`` matches a bookkeeping/temp pattern."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    lowered = [p.lower() for p in patterns]
    return any(fnmatch.fnmatchcase(part.lower(), pattern) for part in parts for pattern in lowered)


class QuietTracker:
    """Thread-safe record of candidate files and when they last changed."""

    def __init__(self, quiet_seconds: float) -> None:
        self.quiet_seconds = quiet_seconds
        self._seen: dict[Path, _Seen] = {}
        self._lock = threading.Lock()

    def touch(self, path: Path, tag: object = None) -> None:
        """An event says the file may have changed: restart its quiet period on next look."""
        with self._lock:
            self._seen[path] = _Seen(-1, -1, 0.0, tag)

    def __contains__(self, path: Path) -> bool:
        with self._lock:
            return path in self._seen

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def due(self, now: float, stat=Path.stat) -> list[tuple[Path, object]]:
        """Files unchanged for the quiet period, with their tags; taken off the list.

        Vanished files are dropped.
        """
        ready = []
        with self._lock:
            for path, seen in list(self._seen.items()):
                try:
                    st = stat(path)
                except OSError:
                    del self._seen[path]
                    continue
                if (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime_ns):
                    self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now, seen.tag)
                elif now - seen.stable_since >= self.quiet_seconds:
                    ready.append((path, seen.tag))
                    del self._seen[path]
        return ready
