"""The filing decision: a pure function of the evidence, the most careful code here.

A document is filed under a patient only when exactly one MRN was read, clearly,
and nothing in the document contradicts it. Everything else goes to review with a
reason a clerk can act on. Filing under the wrong patient is the worst failure
the product can have; a review costs a clerk a minute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .config import FilingSettings
from .models import Decision, Identifiers, MrnCandidate, PageText

_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "|": "1", "S": "5", "B": "8", "Z": "2", "G": "6"})


def _review(reason: str) -> Decision:
    return Decision("review", None, reason)


def mrn_ocr_confidence(candidate: MrnCandidate, page: PageText | None) -> float:
    """Lowest tesseract confidence (0-100) of the words that spell the MRN.

    Text-layer pages and candidates that cannot be traced to words count as 100:
    their confidence is the extractor's business.
    """
    if page is None or page.source != "ocr":
        return 100.0
    confs = []
    for word in page.words:
        digits = re.sub(r"[^0-9]", "", word.text.translate(_LOOKALIKES))
        if len(digits) >= 3 and digits in candidate.value:
            confs.append(word.conf)
    return min(confs) if confs else 100.0


def _where(candidates: Sequence[MrnCandidate], value: str) -> str:
    pages = sorted({c.page_no for c in candidates if c.value == value})
    return f"{value} (page {', '.join(map(str, pages))})"


def decide(pages: Sequence[PageText], ids: Identifiers, settings: FilingSettings) -> Decision:
    """Filed under one MRN, or review with the first reason that forbids filing."""
    unread = [p for p in pages if p.error]
    if unread:
        detail = "; ".join(f"page {p.page_no}: {p.error}" for p in unread[:3])
        return _review(f"{len(unread)} page(s) could not be read ({detail})")
    if not ids.mrn_candidates:
        return _review("no MRN found on any page")
    mrns = ids.distinct_mrns
    if len(mrns) > 1:
        listed = ", ".join(_where(ids.mrn_candidates, m) for m in mrns)
        return _review(f"conflicting MRNs in one document: {listed}")
    by_page = {p.page_no: p for p in pages}
    # Every reading spells the same MRN here, so one clear reading is enough: a
    # doubtful one that agrees with it only adds weight.
    problems = [_doubt(c, by_page.get(c.page_no), settings) for c in ids.mrn_candidates]
    if all(problems):
        return _review(problems[0])
    return Decision("filed", mrns[0], None)


def _doubt(candidate: MrnCandidate, page: PageText | None, settings: FilingSettings) -> str | None:
    """Why this reading of the MRN is not clear enough to file on, or None."""
    if candidate.confidence < settings.min_candidate_confidence:
        return (
            f"MRN {candidate.value} on page {candidate.page_no} is uncertain "
            f"(read as {candidate.raw!r}, confidence {candidate.confidence:.2f})"
        )
    conf = mrn_ocr_confidence(candidate, page)
    if conf < settings.min_mrn_confidence:
        return (
            f"MRN {candidate.value} on page {candidate.page_no} was read with low OCR confidence "
            f"({conf:.0f} < {settings.min_mrn_confidence:.0f})"
        )
    return None
