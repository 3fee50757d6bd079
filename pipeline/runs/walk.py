"""A backlog's folder tree, walked lazily in a stable order, and counted on the side."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pikepdf
from PIL import Image

log = logging.getLogger("medarchive")


def walk(root: Path, extensions: frozenset[str], skip: frozenset[Path] = frozenset()) -> Iterator[Path]:
    """Files under ``root`` with these suffixes, one folder listing in memory at a time.

    Hidden files and folders, symlinked folders (loops) and the folders in ``skip``
    (a data root inside the tree) are left out. The order is the same on every walk,
    so a resumed run sees the inputs as the first one did.
    """
    try:
        with os.scandir(root) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        log.warning("cannot list %s: %s", root, exc.strerror or exc)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if path not in skip:
                yield from walk(path, extensions, skip)
        elif entry.is_file() and path.suffix.lower() in extensions:
            yield path


def page_count(path: Path) -> int:
    """Pages of a PDF or frames of an image; 0 when it cannot be read (intake will say why)."""
    try:
        if path.suffix.lower() == ".pdf":
            with pikepdf.open(path) as pdf:
                return len(pdf.pages)
        with Image.open(path) as image:
            return getattr(image, "n_frames", 1)
    except Exception:
        return 0


class Census(threading.Thread):
    """Counts the files and pages of a tree in the background, for totals and an ETA."""

    def __init__(
        self, root: Path, extensions: frozenset[str], skip: frozenset[Path], found: Callable[[int, int], None]
    ) -> None:
        super().__init__(name="backlog-census", daemon=True)
        self.root, self.extensions, self.skip, self.found = root, extensions, skip, found
        self._halt = threading.Event()

    def run(self) -> None:
        files = pages = 0
        for path in walk(self.root, self.extensions, self.skip):
            if self._halt.is_set():
                return
            pages += page_count(path)
            files += 1
        self.found(files, pages)

    def stop(self) -> None:
        self._halt.set()
