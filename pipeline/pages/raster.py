"""One PDF page → its own text layer, or an uncompressed grayscale image on disk.

Only one page is ever rendered at a time, so a 300-page chart costs the memory of
one page. PNM keeps the image uncompressed between pdftoppm and tesseract (PNG
compression costs more than the render itself).
"""

from __future__ import annotations

import html
import re
import subprocess
from bisect import bisect_left
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

from PIL import Image, ImageChops, ImageFilter

from pipeline.core.models import Word

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


_BBOX_WORD = re.compile(r'<word xMin="([0-9.]+)" yMin="([0-9.]+)" xMax="([0-9.]+)" yMax="([0-9.]+)">([^<]*)</word>')


def text_layer_words(pdf_path: Path, page_no: int, dpi: int, timeout: float) -> list[Word]:
    """The page's own words with their boxes, in pixels at ``dpi`` (pdftotext -bbox).

    A form's layout (a title printed large, a value inside its label's box) is in the
    boxes, not in the order the text layer lists its words. [] when it cannot be read.
    """
    try:
        done = subprocess.run(
            ["pdftotext", "-q", "-bbox", "-f", str(page_no), "-l", str(page_no), str(pdf_path), "-"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return []
    if done.returncode != 0:
        return []
    scale = dpi / 72
    words = []
    for m in _BBOX_WORD.finditer(done.stdout.decode("utf-8", errors="replace")):
        x0, y0, x1, y1 = (float(v) * scale for v in m.groups()[:4])
        words.append(Word(html.unescape(m[5]), 100.0, round(x0), round(y0), round(x1 - x0), round(y1 - y0)))
    return words


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
    # pdftoppm itself, not pdf2image: that runs pdfinfo first on every page to count them.
    base = out_dir / f"page-{page_no}"
    command = [
        "pdftoppm",
        "-r",
        str(dpi),
        "-gray",
        "-cropbox",
        "-f",
        str(page_no),
        "-l",
        str(page_no),
        "-singlefile",
        str(pdf_path),
        str(base),
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RasterError(f"rendering timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise RasterError(f"cannot render ({exc.strerror})") from None
    image = base.with_suffix(".pgm")
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", errors="replace").strip()[:160]
        raise RasterError(f"cannot render ({message or f'pdftoppm exit {done.returncode}'})")
    if not image.exists() or image.stat().st_size == 0:
        raise RasterError("the renderer produced no image")
    return image


# Dust on the glass or the paper: dots of about 1/150 inch all over a scan. Tesseract
# glues them to words as punctuation and loses its confidence in those words (an MRN
# read at 15-40 instead of 95), or takes the page for upside down. A clean page has
# almost no dark dot with a light surround; a dusty one has hundreds per megapixel.
_NOISY_SPECKS_PER_MPX = 80
_DARK, _LIGHT_SURROUND = 128, 200


def despeckled(page: Image.Image, dpi: int) -> Image.Image:
    """The page in grayscale, without its dust specks when it is dusty."""
    gray = page if page.mode == "L" else page.convert("L")
    half = _half_resolution(gray, dpi)
    if _specks_per_mpx(half, gray) < _NOISY_SPECKS_PER_MPX:
        return gray
    return _without_specks(gray, half)


def _half_resolution(gray: Image.Image, dpi: int) -> Image.Image:
    # About 150 dpi, where a speck is about one pixel and a 5-pixel window around it
    # is its surround, but the smallest print (a period) fills too much of it.
    return gray.reduce(max(1, round(dpi / 150)))


def _specks_per_mpx(half: Image.Image, page: Image.Image) -> float:
    dark = half.point(_threshold(lambda v: v < _DARK))
    alone = half.filter(ImageFilter.BoxBlur(2)).point(_threshold(lambda v: v > _LIGHT_SURROUND))
    specks = ImageChops.multiply(dark, alone).histogram()[255]
    return specks * 1e6 / (page.width * page.height)


def _without_specks(gray: Image.Image, half: Image.Image) -> Image.Image:
    """Whitens every pixel whose surround (about 6x6 at 300 dpi) is nearly all paper: a
    dot of two pixels goes; a period, the dot of an i and every stroke two pixels wide
    stay. The surround is measured at half resolution, where a blur costs a quarter."""
    surround = half.filter(ImageFilter.BoxBlur(1))
    ink, paper = _ink_and_paper(gray)
    near_paper = ink + 0.75 * (paper - ink)
    mask = surround.point(_threshold(lambda v: v > near_paper)).resize(gray.size, Image.Resampling.NEAREST)
    return ImageChops.lighter(gray, mask)


def _ink_and_paper(gray: Image.Image) -> tuple[int, int]:
    """The darkest percent and the median grey level, so faint print is not taken for paper."""
    cumulative = list(accumulate(gray.histogram()))
    return bisect_left(cumulative, 0.01 * cumulative[-1]), bisect_left(cumulative, 0.5 * cumulative[-1])


def _threshold(keep: Callable[[int], bool]) -> list[int]:
    return [255 if keep(v) else 0 for v in range(256)]
