"""The unit of parallel work: one page of one input → PageText.

Runs in a worker process. It touches only a private temp folder and returns plain
data; the archive and the index are the writer's business.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.archive.scratch import work_dir
from pipeline.core.models import BarcodeRead, PageText
from pipeline.pages import clean
from pipeline.pages.barcodes import PATCH_T_FORMAT, read_barcodes, separator_reads
from pipeline.pages.ocr import OcrError, OcrResult, ocr_image
from pipeline.pages.orientation import detect_rotation, is_suspect, rotate_image
from pipeline.pages.raster import (
    RasterError,
    despeckled,
    has_real_text,
    render_page,
    text_layer,
    text_layer_words,
)
from pipeline.pages.scan_image import BareScan, bare_scan
from pipeline.pages.second_look import SecondLook, SecondLookRules, page_marks, read_again, why_read_again


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
    # The data root's scratch folder; None on a cluster worker, which has no data root.
    scratch: Path | None = None
    separator_value: str = "PATCHT"
    second_look: SecondLookRules = field(default_factory=SecondLookRules)


def process_page(task: PageTask) -> PageText:
    """Use the page's own text when it is real, else OCR its image. Never raises: a page
    that cannot be read comes back without text, with ``error`` set."""
    try:
        return _read_page(task, _Deadline(task.timeout))
    except Exception as exc:
        message = (str(exc).strip().splitlines() or [""])[-1][:160]
        return PageText(task.page_no, "", "none", error=f"cannot read page ({type(exc).__name__}: {message})")


class _Deadline:
    """The page timeout bounds the whole page (text layer, render, OCR, OSD, second OCR),
    not each step: a hostile page cannot spend it several times over."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    @property
    def spent(self) -> bool:
        return time.monotonic() >= self._end

    def left(self) -> float:
        """The seconds the next step may take; OcrError when there are none."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise OcrError(f"page timed out after {self.seconds:.0f} s")
        return left


def _read_page(task: PageTask, deadline: _Deadline) -> PageText:
    with _work_dir(task) as tmp:
        work = Path(tmp)
        pdf, number = _source(task, work)
        scan = bare_scan(pdf, number, task.dpi)
        if scan is None:
            own = text_layer(pdf, number, deadline.left())
            if has_real_text(own, task.min_text_chars, task.scanned):
                words = text_layer_words(pdf, number, task.dpi, deadline.left())
                return PageText(task.page_no, own, "text-layer", words=words)
        try:
            page, image = _page_image(scan, pdf, number, task, work, deadline)
            result = ocr_image(image, work, task.lang, task.dpi, deadline.left())
            rotation, result = _upright(image, result, task, deadline)
            upright = page.rotate(-rotation, expand=True) if rotation else page
            gray = np.asarray(upright)
            result, look, cleaned = _second_look(gray, result, task, work, deadline)
            whole = task.barcode_whole_page or len(result.words) < _FULL_SEARCH_BELOW_WORDS
            reads = _barcodes(upright, whole, task.barcode_formats, task.separator_value)
            if cleaned is not None and all(r.format == PATCH_T_FORMAT for r in reads):
                reads = _barcodes_again(gray, cleaned, task) or reads
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
        second_look=look.to_json() if look else None,
    )


def _second_look(
    gray: np.ndarray, first: OcrResult, task: PageTask, work: Path, deadline: _Deadline
) -> tuple[OcrResult, SecondLook | None, np.ndarray | None]:
    """The page cleaned and read again when its first reading was poor; else the first reading.

    Running out of the page's time part way, or any failure of the second look, keeps the
    first reading: a second look may improve a page, never lose it."""
    why = why_read_again(first.words, gray.shape[0], page_marks(gray, ink=not first.words), task.second_look)
    if why is None:
        return first, None, None
    started = time.monotonic()
    try:
        if deadline.spent:
            raise OcrError("no time left")
        return read_again(
            gray, first, why, dpi=task.dpi, lang=task.lang, work=work, rules=task.second_look, time_left=deadline.left
        )
    except OcrError:
        failure = "out of time"
    except Exception as exc:  # whatever the cleaning trips on, the first reading stands
        failure = f"failed ({type(exc).__name__})"
    look = SecondLook(f"{why}; second look {failure}", "first", "page", 0, time.monotonic() - started)
    return first, look, None


def _page_image(
    scan: BareScan | None, pdf: Path, number: int, task: PageTask, work: Path, deadline: _Deadline
) -> tuple[Image.Image, Path]:
    """The page in grayscale at the task's resolution, cleaned of dust, and a file of it
    for tesseract. A bare scan's own image is used as it is when it has that resolution."""
    if scan is not None and scan.image is not None:
        original, path = scan.image, None
    else:
        path = render_page(pdf, number, task.dpi, work, deadline.left())
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


def _barcodes(page: Image.Image, whole: bool, formats: tuple[str, ...], separator_value: str) -> list[BarcodeRead]:
    if not formats:
        return []
    searched = page if whole else page.crop((0, 0, page.width, int(page.height * _HEADER_BAND)))
    # A separator sheet may carry instructions enough to look like text, its code mid-page
    # or, upside down, at the foot: it is looked for over the whole page, cheaply.
    return read_barcodes(searched, formats) + separator_reads(page, () if whole else formats, separator_value)


def _barcodes_again(gray: np.ndarray, cleaned: np.ndarray, task: PageTask) -> list[BarcodeRead]:
    """A poor page's barcodes looked for again, whole page, on the cleaned image, on the
    page without its streaks, and then cut at several grey levels, before it is taken to
    have none (or only a separator's bars, whose code may be under a streak).

    A variant that finds only the bars again does not end the search: the code beside
    them is what says the sheet is a separator."""
    found: list[BarcodeRead] = []
    destreaked = clean.without_page_streaks(gray, task.dpi)
    for variant in (
        cleaned,
        destreaked,
        *clean.thresholded(gray, (60, 120, 180)),
        *clean.thresholded(destreaked, (90, 160)),
    ):
        reads = _barcodes(Image.fromarray(variant), True, task.barcode_formats, task.separator_value)
        if any(r.format != PATCH_T_FORMAT for r in reads):
            return reads
        found = found or reads
    return found


def _upright(image: Path, result: OcrResult, task: PageTask, deadline: _Deadline) -> tuple[int, OcrResult]:
    """Re-read a page that OSD finds turned, keeping whichever reading is better.

    Returns the clockwise turn applied and the reading.
    """
    if not is_suspect(result.words) or deadline.spent:
        return 0, result
    rotation = detect_rotation(image, deadline.left())
    if not rotation:
        return 0, result
    turned_image = rotate_image(image, rotation)
    turned = ocr_image(turned_image, image.parent, task.lang, task.dpi, deadline.left())
    # A sideways page can read as well as upright; it is still turned for the archive.
    if (turned.mean_conf or 0) < (result.mean_conf or 0) - 5:
        return 0, result
    spent = result.seconds + turned.seconds
    return rotation, OcrResult(turned.text, turned.words, turned.layer_pdf, spent)


def _work_dir(task: PageTask) -> tempfile.TemporaryDirectory:
    """Page images and OCR text stay under the data root; a cluster worker has only its own temp."""
    if task.scratch is not None:
        return work_dir(task.scratch, "page")
    return tempfile.TemporaryDirectory(prefix="medarchive-page-")
