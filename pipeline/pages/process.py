"""The unit of parallel work: one page of one input → PageText.

Runs in a worker process. It touches only a private temp folder and returns plain
data; the archive and the index are the writer's business.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pipeline.core.models import BarcodeRead, PageText
from pipeline.pages.barcodes import read_barcodes
from pipeline.pages.ocr import OcrError, OcrResult, ocr_image
from pipeline.pages.orientation import detect_rotation, is_suspect, rotate_image
from pipeline.pages.raster import (
    RasterError,
    despeckled,
    has_real_text,
    render_page,
    text_layer,
)
from pipeline.pages.scan_image import BareScan, bare_scan


@dataclass(frozen=True)
class PageTask:
    """One page to read. With ``pdf_bytes`` the page travels as a one-page PDF (a worker on
    another machine cannot read the coordinator's paths); ``pdf_path`` is then not read."""

    pdf_path: Path
    page_no: int
    scanned: bool
    dpi: int
    lang: str
    timeout: float
    min_text_chars: int
    barcode_formats: tuple[str, ...] = ()
    barcode_whole_page: bool = False
    pdf_bytes: bytes | None = None


def process_page(task: PageTask) -> PageText:
    """Use the page's own text when it is real, else OCR its image. Never raises."""
    with tempfile.TemporaryDirectory(prefix="medarchive-page-") as tmp:
        work = Path(tmp)
        pdf, number = _source(task, work)
        scan = bare_scan(pdf, number, task.dpi)
        if scan is None:
            own = text_layer(pdf, number, task.timeout)
            if has_real_text(own, task.min_text_chars, task.scanned):
                return PageText(task.page_no, own, "text-layer")
        try:
            page, image = _page_image(scan, pdf, number, task, work)
            result = ocr_image(image, work, task.lang, task.dpi, task.timeout)
            rotation, result = _upright(image, result, task)
            whole = task.barcode_whole_page or len(result.words) < _FULL_SEARCH_BELOW_WORDS
            reads = _barcodes(page.rotate(-rotation, expand=True) if rotation else page, whole, task.barcode_formats)
        except (RasterError, OcrError) as exc:
            return PageText(task.page_no, "", "none", error=str(exc))
    return PageText(
        task.page_no,
        result.text,
        "ocr",
        words=result.words,
        ocr_seconds=result.seconds,
        rotation=rotation,
        mean_conf=result.mean_conf,
        barcodes=tuple(reads),
        layer_pdf=result.layer_pdf,
    )


def _page_image(scan: BareScan | None, pdf: Path, number: int, task: PageTask, work: Path) -> tuple[Image.Image, Path]:
    """The page in grayscale at the task's resolution, cleaned of dust, and a file of it
    for tesseract. A bare scan's own image is used as it is when it has that resolution."""
    if scan is not None and scan.image is not None:
        original, path = scan.image, None
    else:
        path = render_page(pdf, number, task.dpi, work, task.timeout)
        original = Image.open(path)
        original.load()
    page = despeckled(original, task.dpi)
    if path is None or page is not original:
        path = work / "page-ocr.pgm"
        page.save(path)
    return page, path


def _source(task: PageTask, work: Path) -> tuple[Path, int]:
    """The PDF to read and the page's number in it."""
    if task.pdf_bytes is None:
        return task.pdf_path, task.page_no
    single = work / "page.pdf"
    single.write_bytes(task.pdf_bytes)
    return single, 1


# Reading barcodes costs a tenth of an OCR pass over a whole page. On a page of text
# a patient label sits in the header band; a separator sheet or a label sheet has
# few words, and is searched whole.
_HEADER_BAND = 0.4
_FULL_SEARCH_BELOW_WORDS = 40


def _barcodes(page: Image.Image, whole: bool, formats: tuple[str, ...]) -> list[BarcodeRead]:
    if not formats:
        return []
    searched = page if whole else page.crop((0, 0, page.width, int(page.height * _HEADER_BAND)))
    return read_barcodes(searched, formats)


def _upright(image: Path, result: OcrResult, task: PageTask) -> tuple[int, OcrResult]:
    """Re-read a page that OSD finds turned, keeping whichever reading is better.

    Returns the clockwise turn applied and the reading.
    """
    if not is_suspect(result.words):
        return 0, result
    rotation = detect_rotation(image, task.timeout)
    if not rotation:
        return 0, result
    turned_image = rotate_image(image, rotation)
    turned = ocr_image(turned_image, image.parent, task.lang, task.dpi, task.timeout)
    # A sideways page can read as well as upright; it is still turned for the archive.
    if (turned.mean_conf or 0) < (result.mean_conf or 0) - 5:
        return 0, result
    spent = result.seconds + turned.seconds
    return rotation, OcrResult(turned.text, turned.words, turned.layer_pdf, spent)
