"""Page images for the browser, rendered once at low resolution and cached privately in the data root.

Cached by the PDF's SHA-256 (pipeline.archive.derived names them and destroys them
with their document), so a changed file never shows stale ones.
"""

from __future__ import annotations

from pathlib import Path

from pdf2image import convert_from_path
from pdf2image.exceptions import (
    PDFPageCountError,
    PDFPopplerTimeoutError,
    PDFSyntaxError,
)

from pipeline.archive.derived import page_image_path
from pipeline.core.config import Config
from pipeline.core.errors import MedarchiveError
from pipeline.core.fsutil import atomic_write

THUMB_DPI = 30
PREVIEW_DPI = 72
_RENDER_TIMEOUT_SECONDS = 60


class ThumbnailError(MedarchiveError):
    """A page image cannot be made."""


def page_image(config: Config, pdf: Path, sha256: str, page: int, dpi: int) -> Path:
    """The cached PNG of one page, rendered on first use."""
    target = page_image_path(config, sha256, page, dpi)
    if not target.exists():
        atomic_write(target, lambda temp: _render(pdf, page, dpi, temp))
    return target


def _render(pdf: Path, page: int, dpi: int, out: Path) -> None:
    try:
        images = convert_from_path(
            pdf, dpi=dpi, first_page=page, last_page=page, grayscale=True, timeout=_RENDER_TIMEOUT_SECONDS
        )
    except (PDFPageCountError, PDFPopplerTimeoutError, PDFSyntaxError, OSError) as exc:
        raise ThumbnailError(f"cannot render page {page} of {pdf.name}: {exc}") from None
    if not images:
        raise ThumbnailError(f"{pdf.name} has no page {page}")
    images[0].save(out, "PNG", optimize=True)
