"""Open and vet one input before any page work is spent on it.

Everything that would make rendering unsafe or pointless is caught here, with a
reason a clerk can read: empty, not a PDF, damaged beyond repair, encrypted,
decompression bombs.
"""

from __future__ import annotations

import re
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
# What qpdf and pikepdf raise over a hostile file's structure, besides PdfError: a
# wrong type where a dictionary was due, a missing key, a number out of range, a
# page tree deeper than the stack, an allocation for a declared size.
_DAMAGE = (
    pikepdf.PdfError,
    pikepdf.ForeignObjectError,
    KeyError,
    TypeError,
    ValueError,
    IndexError,
    AttributeError,
    NotImplementedError,
    RecursionError,
    OverflowError,
    MemoryError,
    RuntimeError,
)


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
        raise IntakeError(f"not a PDF ({_what_it_is(head)})")


# What a file that is not a PDF often is, by its first bytes.
_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"PK\x03\x04": "a ZIP archive or an Office document",
    b"\xd0\xcf\x11\xe0": "an old Office document",
}


def _what_it_is(head: bytes) -> str:
    for magic, kind in _SIGNATURES.items():
        if head.startswith(magic):
            return f"it is {kind}"
    start = head[:8]
    if start and all(32 <= b < 127 for b in start):
        return f'it starts with the text "{start.decode("ascii")}"'
    return f"it starts with the bytes {start.hex(' ')}"


def _open(path: Path) -> pikepdf.Pdf:
    try:
        return pikepdf.open(path)
    except pikepdf.PasswordError:
        raise IntakeError(
            "encrypted PDF that needs a password to open; ask the sender for an unprotected copy"
        ) from None
    except OSError as exc:
        raise IntakeError(f"cannot read PDF ({_short(exc, path)})") from None
    except _DAMAGE as exc:
        raise IntakeError(f"damaged PDF that cannot be repaired ({_short(exc, path)})") from None


def _short(exc: BaseException, path: Path) -> str:
    """The last line of ``exc`` without the file's path, which qpdf puts first and which
    the reader already knows (and which may name a patient)."""
    text = str(exc).strip().splitlines()
    last = text[-1] if text else type(exc).__name__
    # "<path> (object 2 0): Loop detected" -> "object 2 0: Loop detected"
    where = re.compile(rf"{re.escape(str(path))}(?: \(([^)]*)\))?: ")
    return where.sub(lambda m: f"{m.group(1)}: " if m.group(1) else "", last).replace(str(path), "the file")[:200]


def _page_size_inches(page: pikepdf.Page) -> tuple[float, float]:
    box = page.cropbox
    unit = float(page.obj.get("/UserUnit", 1))
    width = abs(float(box[2]) - float(box[0])) * unit / 72
    height = abs(float(box[3]) - float(box[1])) * unit / 72
    return width, height


def _largest_image_pixels(page: pikepdf.Page) -> int:
    largest = 0
    # Nested forms too: a scan may be drawn through a form XObject, and so may a bomb.
    for image in page.get_images().values():
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
            count = len(pdf.pages)
            if count > settings.max_pages:
                raise IntakeError(
                    f"PDF has {count:,} pages, above the limit of {settings.max_pages:,}; "
                    "split it, or raise intake.max_pages"
                )
            pages = list(pdf.pages)
            if not pages:
                raise IntakeError("PDF has no pages")
            scanned = {n for n, page in enumerate(pages, 1) if _vet_page(n, page, dpi, settings)}
            miscounted = _miscounted(pdf, len(pages))
        except _DAMAGE as exc:
            raise IntakeError(f"damaged PDF: its page tree cannot be read ({_short(exc, path)})") from None
        warnings = tuple(str(w) for w in pdf.get_warnings()) + miscounted
    return Intake(path, digest, size, len(pages), frozenset(scanned), warnings)


def _miscounted(pdf: pikepdf.Pdf, found: int) -> tuple[str, ...]:
    """A warning when the page tree's /Count is not the pages in it: qpdf counts the pages
    itself, but poppler believes /Count and refuses to render any page; the copy qpdf
    saves carries the true count."""
    declared = pdf.Root.Pages.get("/Count")
    if isinstance(declared, int) and declared == found:
        return ()
    return (f"the page tree declares {declared} pages but holds {found}",)


def repaired_copy(source: Path, target: Path) -> None:
    """Save what qpdf recovered of ``source`` as ``target``, the copy pages are read from;
    ``source`` is never written.

    Saving rewrites the XMP metadata, and a metadata stream that cannot be decoded would
    fail the whole save: the copy goes without it, and its XMP is left alone. Raises
    IntakeError when qpdf cannot write the file at all; a failing disk raises OSError.
    """
    try:
        with pikepdf.open(source) as pdf:
            _drop_broken_metadata(pdf)
            pdf.save(target, fix_metadata_version=False)
    except pikepdf.PasswordError:
        raise IntakeError(
            "encrypted PDF that needs a password to open; ask the sender for an unprotected copy"
        ) from None
    except _DAMAGE as exc:
        raise IntakeError(f"damaged PDF that cannot be repaired ({_short(exc, source)})") from None


def _drop_broken_metadata(pdf: pikepdf.Pdf) -> None:
    metadata = pdf.Root.get("/Metadata")
    if metadata is None:
        return
    try:
        metadata.read_bytes()
    except (pikepdf.PdfError, AttributeError, TypeError, ValueError):
        del pdf.Root.Metadata
