"""Copies derived from a document's PDF (the web's page images): where they live, and their destruction.

They hold the same patient data as the PDF, so they go when the document goes
(retention purge) or moves to another patient (reassignment), and `verify`
reports any left without a document. Named by the PDF's SHA-256, so a document
is found by its sidecar alone.
"""

from __future__ import annotations

import json
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


def packets_dir(config: Config) -> Path:
    """Chart-preparation packets (pipeline/clinic): ``prep/<visit day>/<appointment>.pdf`` + ``.json``."""
    return config.root / "prep"


def remove_packets(config: Config, sha256s: Iterable[str]) -> int:
    """Delete every packet holding a copy of one of these PDFs; return how many went."""
    wanted = set(sha256s)
    removed = 0
    for manifest in sorted(packets_dir(config).glob("*/*.json")) if wanted else ():
        try:
            held = set(json.loads(manifest.read_text(encoding="utf-8")).get("sha256s", ()))
        except (OSError, ValueError):
            held = wanted  # unreadable: it may hold a copy, so it goes too
        if held & wanted:
            manifest.with_suffix(".pdf").unlink(missing_ok=True)
            manifest.unlink(missing_ok=True)
            fsync_dir(manifest.parent)
            removed += 1
    return removed


def remove_derived(config: Config, sha256s: Iterable[str]) -> int:
    """Destroy every copy derived from these PDFs: page images and chart packets."""
    sha256s = set(sha256s)
    return remove_page_images(config, sha256s) + remove_packets(config, sha256s)


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
