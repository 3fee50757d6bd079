"""One PDF page → its own text layer, or an uncompressed grayscale image on disk.

Only one page is ever rendered at a time, so a 300-page chart costs the memory of
one page. PNM keeps the image uncompressed between pdftoppm and tesseract (PNG
compression costs more than the render itself).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pdf2image import convert_from_path
from pdf2image.exceptions import PDFInfoNotInstalledError, PDFPageCountError, PDFPopplerTimeoutError

# A scanned page may carry a little real text (a fax header, a stamp); only a
# page with much more than that is trusted to carry all its words as text.
_SCANNED_PAGE_FACTOR = 5


class RasterError(Exception):
    """A page could not be rendered."""


def text_layer(pdf_path: Path, page_no: int, timeout: float) -> str:
    """The page's own text as pdftotext reads it (empty when it has none)."""
    try:
        done = subprocess.run(
            ["pdftotext", "-q", "-layout", "-f", str(page_no), "-l", str(page_no), str(pdf_path), "-"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ""
    return done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else ""


def has_real_text(text: str, min_chars: int, scanned: bool) -> bool:
    """Whether a page's own text is worth more than OCR of its image."""
    needed = min_chars * (_SCANNED_PAGE_FACTOR if scanned else 1)
    alnum = sum(ch.isalnum() for ch in text)
    if alnum < needed:
        return False
    printable = sum(ch.isprintable() or ch.isspace() for ch in text)
    replacement = text.count("\ufffd")
    return printable >= 0.95 * len(text) and replacement < 0.01 * len(text)


def render_page(pdf_path: Path, page_no: int, dpi: int, out_dir: Path, timeout: float) -> Path:
    """Render one page to ``out_dir`` as an 8-bit grayscale PGM; return its path."""
    try:
        paths = convert_from_path(
            pdf_path,
            dpi=dpi,
            first_page=page_no,
            last_page=page_no,
            output_folder=out_dir,
            output_file=f"page-{page_no}",
            single_file=True,
            fmt="ppm",
            grayscale=True,
            use_cropbox=True,
            paths_only=True,
            timeout=max(1, int(timeout)),
        )
    except PDFPopplerTimeoutError:
        raise RasterError(f"rendering timed out after {timeout:.0f} s") from None
    except (PDFPageCountError, PDFInfoNotInstalledError, OSError) as exc:
        raise RasterError(f"cannot render ({str(exc).strip()[:160]})") from None
    if not paths or not Path(paths[0]).exists() or Path(paths[0]).stat().st_size == 0:
        raise RasterError("the renderer produced no image")
    return Path(paths[0])
