"""Open and vet one input before any page work is spent on it.

Everything that would make rendering unsafe or pointless is caught here, with a
reason a clerk can read: empty, not a PDF, damaged beyond repair, encrypted,
decompression bombs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pikepdf

from pipeline.core.config import IntakeSettings
from pipeline.core.errors import IntakeError
from pipeline.core.fsutil import sha256_file

_MAGIC_WINDOW = 1024
# A page whose largest image has at least this many pixels per square inch was
# most likely scanned: its own text layer (if any) may be a fax header or stamp.
_SCAN_PIXELS_PER_SQ_INCH = 100 * 100 / 2


@dataclass(frozen=True)
class Intake:
    """A vetted input: its hash, its pages, and which of them look scanned."""

    path: Path
    sha256: str
    size: int
    page_count: int
    scanned_pages: frozenset[int]
    warnings: tuple[str, ...] = ()


def _check_header(path: Path, size: int, settings: IntakeSettings) -> None:
    if size == 0:
        raise IntakeError("empty file (0 bytes): the scanner or copy did not finish")
    if size > settings.max_file_mb * 1024 * 1024:
        raise IntakeError(f"file is {size // (1024 * 1024)} MB, above the {settings.max_file_mb} MB limit")
    with open(path, "rb") as handle:
        head = handle.read(_MAGIC_WINDOW)
    if b"%PDF-" not in head:
        raise IntakeError(f"not a PDF (the file starts with {head[:8]!r})")


def _open(path: Path) -> pikepdf.Pdf:
    try:
        return pikepdf.open(path)
    except pikepdf.PasswordError:
        raise IntakeError("encrypted PDF that needs a password to open; ask the sender for an unprotected copy") from None
    except pikepdf.PdfError as exc:
        raise IntakeError(f"damaged PDF that cannot be repaired ({_short(exc)})") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise IntakeError(f"cannot read PDF ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    last = text[-1] if text else type(exc).__name__
    # qpdf starts its messages with the file's path, which the reader already knows.
    return last.rsplit(".pdf: ", 1)[-1][:200]


def _page_size_inches(page: pikepdf.Page) -> tuple[float, float]:
    box = page.cropbox
    unit = float(page.obj.get("/UserUnit", 1))
    width = abs(float(box[2]) - float(box[0])) * unit / 72
    height = abs(float(box[3]) - float(box[1])) * unit / 72
    return width, height


def _largest_image_pixels(page: pikepdf.Page) -> int:
    largest = 0
    for image in page.images.values():
        try:
            largest = max(largest, int(image.get("/Width", 0)) * int(image.get("/Height", 0)))
        except (TypeError, ValueError):
            continue
    return largest


def _vet_page(page_no: int, page: pikepdf.Page, dpi: int, settings: IntakeSettings) -> bool:
    """Raise on a bomb; return whether the page looks scanned."""
    width, height = _page_size_inches(page)
    if width <= 0 or height <= 0:
        raise IntakeError(f"page {page_no} has an empty page box")
    render_pixels = int(width * dpi) * int(height * dpi)
    if render_pixels > settings.max_page_pixels:
        raise IntakeError(
            f"page {page_no} is {width:.0f}x{height:.0f} inches ({render_pixels:,} pixels at {dpi} dpi), "
            f"above the limit of {settings.max_page_pixels:,}: refused as a possible decompression bomb"
        )
    image_pixels = _largest_image_pixels(page)
    if image_pixels > settings.max_page_pixels:
        raise IntakeError(
            f"page {page_no} holds an image of {image_pixels:,} pixels, above the limit of "
            f"{settings.max_page_pixels:,}: refused as a possible decompression bomb"
        )
    return image_pixels >= width * height * _SCAN_PIXELS_PER_SQ_INCH


def inspect_pdf(path: Path, settings: IntakeSettings, dpi: int) -> Intake:
    """Vet ``path``; raise IntakeError with the reason it cannot be taken."""
    try:
        size = path.stat().st_size
        _check_header(path, size, settings)
        digest = sha256_file(path)
    except OSError as exc:
        raise IntakeError(f"cannot read file ({exc.strerror or exc})") from None
    with _open(path) as pdf:
        try:
            pages = list(pdf.pages)
            if not pages:
                raise IntakeError("PDF has no pages")
            scanned = {n for n, page in enumerate(pages, 1) if _vet_page(n, page, dpi, settings)}
        except (pikepdf.PdfError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise IntakeError(f"damaged PDF: its page tree cannot be read ({_short(exc)})") from None
        warnings = tuple(str(w) for w in pdf.get_warnings())
    return Intake(path, digest, size, len(pages), frozenset(scanned), warnings)
