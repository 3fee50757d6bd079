"""Letters to the requester (denial, no records), one page each, drawn with reportlab like the cover sheet."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen.canvas import Canvas

from pipeline.core.config import DenialReason
from pipeline.requests.records import Request

_MARGIN, _LEADING, _SIZE = 72, 14, 11


def _draw(path: Path, facility: str, today: date, request: Request, title: str, paragraphs: Iterable[str]) -> None:
    canvas = Canvas(str(path), pagesize=letter, pageCompression=1)
    width, height = letter
    y = height - _MARGIN

    def line(text: str, font: str = "Helvetica", size: float = _SIZE) -> None:
        nonlocal y
        canvas.setFont(font, size)
        canvas.drawString(_MARGIN, y, text)
        y -= _LEADING

    line(facility, "Helvetica-Bold", 12)
    line(today.isoformat())
    y -= _LEADING
    who = request.requester
    for text in (who.name, who.organisation, *who.address.splitlines()):
        if text.strip():
            line(text.strip())
    y -= _LEADING
    line(title, "Helvetica-Bold", 14)
    line(f"Your request {request.ref}, received {request.received}, about the records of MRN {request.mrn}")
    y -= _LEADING / 2
    for paragraph in paragraphs:
        for text in simpleSplit(paragraph, "Helvetica", _SIZE, width - 2 * _MARGIN):
            line(text)
        y -= _LEADING / 2
    y -= _LEADING
    line("Sincerely,")
    line(facility)
    canvas.setFont("Helvetica-Oblique", 8)
    canvas.drawString(_MARGIN, _MARGIN / 2, "Confidential: this letter concerns protected health information.")
    canvas.showPage()
    canvas.save()


def draw_denial(
    path: Path, *, facility: str, today: date, request: Request, reason: DenialReason, note: str | None
) -> None:
    review = (
        "You may ask for this decision to be reviewed by a licensed health care professional who did not take part "
        f"in it. Write to us within 60 days of this letter, naming request {request.ref}."
        if reason.reviewable
        else "This decision is not subject to review."
    )
    paragraphs = [
        f"We cannot fulfil your request for {request.ask.describe()} (purpose: {request.purpose}).",
        f"Reason: {reason.text}",
        *([note] if note else []),
        review,
        "You may file a complaint with us or with the Secretary of the U.S. Department of Health and Human "
        "Services, Office for Civil Rights.",
    ]
    _draw(path, facility, today, request, "Denial of your request for health information", paragraphs)


def draw_no_records(path: Path, *, facility: str, today: date, request: Request, protected: str | None) -> None:
    paragraphs = [
        f"We searched our archive for {request.ask.describe()} (purpose: {request.purpose}) and hold no records "
        "that answer your request.",
        *([protected] if protected else []),
        "No records were released. If you believe we should hold such records, please contact us.",
    ]
    _draw(path, facility, today, request, "No records found for your request", paragraphs)
