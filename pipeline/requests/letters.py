"""Letters to the requester (denial, no records), one page each, drawn like the release cover sheet."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from pipeline.core.config import DenialReason
from pipeline.records.sheet import Sheet
from pipeline.requests.records import Request

_SIZE = 11


def _draw(path: Path, facility: str, today: date, request: Request, title: str, paragraphs: Iterable[str]) -> None:
    sheet = Sheet(path, margin=72, leading=14)
    sheet.line(facility, "Helvetica-Bold", 12)
    sheet.line(today.isoformat(), size=_SIZE)
    sheet.gap()
    who = request.requester
    for text in (who.name, who.organisation, *who.address.splitlines()):
        if text.strip():
            sheet.line(text.strip(), size=_SIZE)
    sheet.gap()
    sheet.line(title, "Helvetica-Bold", 14)
    sheet.line(
        f"Your request {request.ref}, received {request.received}, about the records of MRN {request.mrn}", size=_SIZE
    )
    sheet.gap(0.5)
    for paragraph in paragraphs:
        sheet.paragraph(paragraph, size=_SIZE)
        sheet.gap(0.5)
    sheet.gap()
    sheet.line("Sincerely,", size=_SIZE)
    sheet.line(facility, size=_SIZE)
    sheet.footer("Confidential: this letter concerns protected health information.")
    sheet.save()


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
