"""The separator sheet records departments print: a Kodak-style "PATCH T" page.

Large title, the patch-T bar pattern along the top and bottom edges (so the sheet reads
the same fed either way round), a Code 39 ``PATCHT`` in the middle, and a few lines of
instructions. Drawn with reportlab as a PDF, then scanned: resolution, CCITT G4 or JPEG,
upside down, fuzzy, slightly turned and stretched, as tests and benchmarks need it.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

from pdf2image import convert_from_bytes
from PIL import Image, ImageFilter
from reportlab.graphics.barcode.code39 import Standard39
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import inch
from reportlab.pdfgen import canvas

from pipeline.samples.labels import scan_like

PAGE_SIZES = {"letter": LETTER, "a4": A4}
# Kodak's patch T, from the edge inward: narrow bar, space, wide bar, space, narrow bar,
# space, wide bar (inches; narrow 0.08, wide 0.20, 0.80 in all).
PATCH_T = (("bar", 0.08), ("gap", 0.08), ("bar", 0.20), ("gap", 0.08), ("bar", 0.08), ("gap", 0.08), ("bar", 0.20))
_EDGE = 0.3  # inches from the paper's edge to the first bar
_INSTRUCTIONS = (
    "Place this sheet in front of the first page of each document in the batch.",
    "The scanner starts a new document after it; the sheet itself is not archived.",
    "Do not fold, staple or write on this sheet. Reprint it when the bars fade or tear.",
    "Medical Records Department - Document Imaging - Transfer patch separator sheet",
)


def patch_t_pdf(page_size: str = "letter", value: str = "PATCHT") -> bytes:
    """One PDF page of the standard layout."""
    width, height = PAGE_SIZES[page_size]
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=(width, height))
    margin = 0.5 * inch
    for from_top in (True, False):
        at = _EDGE * inch
        for kind, size in PATCH_T:
            if kind == "bar":
                y = height - at - size * inch if from_top else at
                pdf.rect(margin, y, width - 2 * margin, size * inch, stroke=0, fill=1)
            at += size * inch
    pdf.setFont("Helvetica-Bold", 96)
    pdf.drawCentredString(width / 2, height - 2.6 * inch, "PATCH T")
    pdf.setFont("Helvetica", 14)
    pdf.drawCentredString(width / 2, height - 3.1 * inch, "DOCUMENT SEPARATOR SHEET")
    code = Standard39(
        value, barWidth=0.02 * inch, barHeight=1.2 * inch, checksum=0, quiet=1, lquiet=0.25 * inch, rquiet=0.25 * inch
    )
    code.drawOn(pdf, (width - code.width) / 2, height / 2 - 0.6 * inch)
    pdf.setFont("Helvetica", 18)
    pdf.drawCentredString(width / 2, height / 2 - 0.95 * inch, f"*{value}*")
    pdf.setFont("Helvetica", 11)
    for k, line in enumerate(_INSTRUCTIONS):
        pdf.drawCentredString(width / 2, 3.0 * inch - k * 0.22 * inch, line)
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def patch_t_image(dpi: int = 300, page_size: str = "letter", value: str = "PATCHT") -> Image.Image:
    """The sheet as a clean grayscale page at ``dpi``."""
    (page,) = convert_from_bytes(patch_t_pdf(page_size, value), dpi=dpi, grayscale=True)
    page.info["dpi"] = (dpi, dpi)
    return page


@dataclass(frozen=True)
class Scan:
    """How the sheet went through the scanner."""

    dpi: int = 300
    page_size: str = "letter"
    upside_down: bool = False
    blur: float = 0.0  # Gaussian radius in pixels at 300 dpi
    skew_deg: float = 0.0
    stretch: float = 1.0  # along the feed direction: a slipping roller
    noise: float = 0.0
    seed: int = 0


def scanned_sheet(scan: Scan = Scan(), value: str = "PATCHT") -> Image.Image:
    """The sheet as a scanner returns it, at ``scan.dpi``."""
    page = patch_t_image(scan.dpi, scan.page_size, value)
    if scan.stretch != 1.0:
        page = page.resize((page.width, round(page.height * scan.stretch)), Image.Resampling.BILINEAR)
    if scan.blur:
        page = page.filter(ImageFilter.GaussianBlur(scan.blur * scan.dpi / 300))
    page = scan_like(page, skew_deg=scan.skew_deg, noise=scan.noise, seed=scan.seed)
    if scan.upside_down:
        page = page.rotate(180)
    page.info["dpi"] = (scan.dpi, scan.dpi)
    return page


def random_scan(rng: random.Random) -> Scan:
    """A plausible scan of the sheet for benchmarks: any size, resolution and orientation."""
    return Scan(
        dpi=rng.choice((200, 300)),
        page_size=rng.choice(tuple(PAGE_SIZES)),
        upside_down=rng.random() < 0.3,
        blur=rng.choice((0.0, 0.0, 0.8, 1.5)),
        skew_deg=rng.uniform(-1.5, 1.5),
        stretch=rng.choice((1.0, 1.0, 1.02, 0.98)),
        noise=rng.choice((0.0, 0.0005, 0.0015)),
        seed=rng.randrange(1 << 30),
    )
