"""The box manifest: the list that goes into the box with its paper (documents, MRNs, pages, scan dates)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from reportlab.lib.pagesizes import letter
from reportlab.pdfgen.canvas import Canvas

from pipeline.paper.rules import BoxedDocument

_MARGIN, _LEADING = 54, 13


def manifest_pdf(box: str, documents: Sequence[BoxedDocument], *, closed_at: str, closed_by: str) -> bytes:
    """As many pages as the list needs; every page names the box and its page number."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=letter, pageCompression=1)
    height = letter[1]
    rows = sorted(documents, key=lambda d: (d.mrn or "", d.scanned, d.doc_id))
    per_page = int((height - 2 * _MARGIN - 6 * _LEADING) // _LEADING)
    pages = max(1, -(-len(rows) // per_page))
    for n in range(pages):
        y = height - _MARGIN
        canvas.setFont("Helvetica-Bold", 16)
        canvas.drawString(_MARGIN, y, f"Box manifest {box}")
        y -= 1.5 * _LEADING
        canvas.setFont("Helvetica", 10)
        total = sum(d.pages for d in rows)
        canvas.drawString(
            _MARGIN, y, f"{len(rows)} document(s), {total} page(s). Closed {closed_at} (UTC) by {closed_by}."
        )
        y -= 2 * _LEADING
        canvas.setFont("Courier-Bold", 9)
        canvas.drawString(_MARGIN, y, f"{'MRN':<14}{'Scanned':<12}{'Pages':>6}  Document id")
        y -= _LEADING
        canvas.setFont("Courier", 9)
        for d in rows[n * per_page : (n + 1) * per_page]:
            canvas.drawString(_MARGIN, y, f"{d.mrn or '-':<14}{d.scanned[:10]:<12}{d.pages:>6}  {d.doc_id}")
            y -= _LEADING
        canvas.setFont("Helvetica-Oblique", 8)
        canvas.drawString(
            _MARGIN, _MARGIN / 2, f"Confidential health information - box {box} - page {n + 1} of {pages}"
        )
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()
