"""Box label sheets: the page scanned first in a batch to say which off-site box its paper goes into.

A large title, the box's Code 128 barcode (what the archive reads) and its value in print
(for people). ``with_box_label`` puts one in front of an existing PDF, as a clerk puts the
sheet on top of the pile; ``covered`` hides most of the barcode, for the unreadable case.
"""

from __future__ import annotations

import io
from pathlib import Path

import img2pdf
import pikepdf
from pdf2image import convert_from_bytes
from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import inch
from reportlab.pdfgen import canvas

from pipeline.samples.labels import scan_like

TITLE = "STORAGE BOX LABEL"


def box_label_pdf(box: str, *, covered: bool = False) -> bytes:
    width, height = LETTER
    out = io.BytesIO()
    pdf = canvas.Canvas(out, pagesize=LETTER)
    pdf.setFont("Helvetica-Bold", 40)
    pdf.drawCentredString(width / 2, height - 2.0 * inch, TITLE)
    pdf.setFont("Helvetica", 14)
    pdf.drawCentredString(width / 2, height - 2.5 * inch, "Medical Records - paper originals for off-site storage")
    code = Code128(box, barWidth=0.02 * inch, barHeight=1.3 * inch, quiet=1, lquiet=0.3 * inch, rquiet=0.3 * inch)
    x, y = (width - code.width) / 2, height / 2 - 0.4 * inch
    code.drawOn(pdf, x, y)
    if covered:  # a coffee stain, a torn corner: most of the bars gone
        pdf.rect(x + code.width * 0.2, y - 0.1 * inch, code.width * 0.7, 1.6 * inch, stroke=0, fill=1)
    pdf.setFont("Helvetica-Bold", 28)
    pdf.drawCentredString(width / 2, y - 0.6 * inch, box)
    pdf.setFont("Helvetica", 11)
    pdf.drawCentredString(width / 2, 2.2 * inch, "Scan this sheet first; the pages after it are filed into this box.")
    pdf.drawCentredString(width / 2, 1.9 * inch, "The sheet itself is not archived.")
    pdf.showPage()
    pdf.save()
    return out.getvalue()


def box_label_scan(box: str, *, covered: bool = False, dpi: int = 300, seed: int = 0) -> bytes:
    """The sheet as a scanner returns it: a one-page image-only PDF (grayscale, slightly turned and noisy)."""
    (page,) = convert_from_bytes(box_label_pdf(box, covered=covered), dpi=dpi, grayscale=True)
    page = scan_like(page, skew_deg=0.4, noise=0.0005, seed=seed)
    image = io.BytesIO()
    page.save(image, format="JPEG", quality=85, dpi=(dpi, dpi))
    return img2pdf.convert(image.getvalue())


def with_box_label(pdf_path: Path, box: str, *, covered: bool = False) -> None:
    """Put a scanned box label sheet in front of the PDF at ``pdf_path`` (rewritten in place)."""
    with pikepdf.open(io.BytesIO(box_label_scan(box, covered=covered))) as label, pikepdf.open(pdf_path) as doc:
        out = pikepdf.new()
        out.pages.extend(label.pages)
        out.pages.extend(doc.pages)
        buffer = io.BytesIO()
        out.save(buffer)
    pdf_path.write_bytes(buffer.getvalue())
