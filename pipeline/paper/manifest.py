"""The box manifest: the list that goes into the box with its paper (documents, MRNs, pages, scan dates)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from pipeline.paper.rules import BoxedDocument
from pipeline.records.sheet import Sheet


def manifest_pdf(box: str, documents: Sequence[BoxedDocument], *, closed_at: str, closed_by: str) -> bytes:
    """As many pages as the list needs; every page names the box and its page number."""
    buffer = io.BytesIO()
    sheet = Sheet(buffer)
    rows = sorted(documents, key=lambda d: (d.mrn or "", d.scanned, d.doc_id))
    total = sum(d.pages for d in rows)
    per_page = int((sheet.height - 2 * sheet.margin) // sheet.leading) - 6
    pages = max(1, -(-len(rows) // per_page))
    for n in range(pages):
        sheet.line(f"Box manifest {box}", "Helvetica-Bold", 16)
        sheet.gap(0.5)
        sheet.line(f"{len(rows)} document(s), {total} page(s). Closed {closed_at} (UTC) by {closed_by}.")
        sheet.gap()
        sheet.line(f"{'MRN':<14}{'Scanned':<12}{'Pages':>6}  Document id", "Courier-Bold", 9)
        for d in rows[n * per_page : (n + 1) * per_page]:
            sheet.line(f"{d.mrn or '-':<14}{d.scanned[:10]:<12}{d.pages:>6}  {d.doc_id}", "Courier", 9)
        sheet.footer(f"Confidential health information - box {box} - page {n + 1} of {pages}")
    sheet.save()
    return buffer.getvalue()
