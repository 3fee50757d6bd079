"""Copies derived from a document's PDF (the web's page images): where they live, and their destruction.

They hold the same patient data as the PDF, so they go when the document goes
(retention purge) or moves to another patient (reassignment), and `verify`
reports any left without a document. Named by the PDF's SHA-256, so a document
is found by its sidecar alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.core.config import Config
from pipeline.core.fsutil import fsync_dir

_PAGE_IMAGE = re.compile(r"(?P<sha>[0-9a-f]{64})-(?P<page>\d+)-(?P<dpi>\d+)\.png")


def page_images_dir(config: Config) -> Path:
    return config.root / "web" / "thumbs"


def page_image_path(config: Config, sha256: str, page: int, dpi: int) -> Path:
    return page_images_dir(config) / f"{sha256}-{page}-{dpi}.png"


def remove_page_images(config: Config, sha256s: Iterable[str]) -> int:
    """Delete every page image of the PDFs with these SHA-256s; return how many went."""
    folder = page_images_dir(config)
    if not folder.is_dir():
        return 0
    removed = 0
    for sha256 in set(sha256s):
        for path in folder.glob(f"{sha256}-*.png"):
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        fsync_dir(folder)
    return removed


def orphan_page_images(config: Config, sha256s: set[str]) -> Iterator[Path]:
    """Page images (or anything else in their folder) of no PDF among ``sha256s``."""
    folder = page_images_dir(config)
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):  # a write in progress
            continue
        match = _PAGE_IMAGE.fullmatch(path.name)
        if match is None or match["sha"] not in sha256s:
            yield path
