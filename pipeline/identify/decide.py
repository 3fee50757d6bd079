"""The filing decision: a pure function of the evidence, the most careful code here.

A document is filed under a patient only when exactly one MRN was read, clearly,
and nothing in the document contradicts it. Everything else goes to review with a
reason a clerk can act on. Filing under the wrong patient is the worst failure
the product can have; a review costs a clerk a minute.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.core.config import FilingSettings, RosterSettings
from pipeline.core.models import Decision, Identifiers, MrnCandidate, PageText
from pipeline.identify.roster import (
    PatientLookup,
    RosterPatient,
    dob_agrees,
    luhn_valid,
    name_agrees,
)

_LOOKALIKES = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "|": "1", "S": "5", "B": "8", "Z": "2", "G": "6"}
)


CORROBORATED = "MRN read with low confidence, corroborated by name and date of birth"


@dataclass(frozen=True)
class _Reading:
    """The one MRN the document carries, or why there is none. ``uncertain`` is the value
    when one printed MRN was read, but never clearly enough to file on by itself."""

    mrn: str | None
    doubt: str | None = None
    uncertain: str | None = None


def _review(reason: str, suggested_mrn: str | None = None) -> Decision:
    return Decision("review", None, reason, suggested_mrn)


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


_DEFAULT_ROSTER_SETTINGS = RosterSettings()


def decide(
    pages: Sequence[PageText],
    ids: Identifiers,
    settings: FilingSettings,
    roster_settings: RosterSettings = _DEFAULT_ROSTER_SETTINGS,
    roster: PatientLookup | None = None,
) -> Decision:
    """Filed under one MRN, or review with the first reason that forbids filing."""
    unread = [p for p in pages if p.error]
    if unread:
        detail = "; ".join(f"page {p.page_no}: {p.error}" for p in unread[:3])
        return _review(f"{len(unread)} page(s) could not be read ({detail})")
    reading = _read_mrn(pages, ids, settings)
    if roster is not None:
        return _against_roster(reading, ids, roster, roster_settings)
    if reading.mrn is None:
        return _review(reading.doubt or "no MRN found on any page")
    if roster_settings.check_digit == "luhn" and not luhn_valid(reading.mrn):
        return _review(f"MRN {reading.mrn} fails its check digit (luhn)")
    return Decision("filed", reading.mrn)


def _read_mrn(pages: Sequence[PageText], ids: Identifiers, settings: FilingSettings) -> _Reading:
    """The one MRN the document carries, or None and why not. A barcode beats print."""
    barcodes = sorted({c.value for c in ids.mrn_candidates if c.source == "barcode"})
    printed = sorted({c.value for c in ids.mrn_candidates if c.source == "text"})
    if len(barcodes) > 1:
        return _Reading(None, f"conflicting barcode MRNs in one document: {', '.join(barcodes)}")
    if barcodes:
        others = [m for m in printed if m != barcodes[0]]
        if others:
            return _Reading(None, f"barcode MRN {barcodes[0]} conflicts with printed MRN {', '.join(others)}")
        return _Reading(barcodes[0])
    if not printed:
        return _Reading(None, "no MRN found on any page")
    if len(printed) > 1:
        return _Reading(
            None, f"conflicting MRNs in one document: {', '.join(_where(ids.mrn_candidates, m) for m in printed)}"
        )
    by_page = {p.page_no: p for p in pages}
    # Every reading spells the same MRN here, so one clear reading is enough: a
    # doubtful one that agrees with it only adds weight.
    problems = [_doubt(c, by_page.get(c.page_no), settings) for c in ids.mrn_candidates]
    return _Reading(None, problems[0], printed[0]) if all(problems) else _Reading(printed[0])


def _against_roster(reading: _Reading, ids: Identifiers, roster: PatientLookup, settings: RosterSettings) -> Decision:
    """With a patient index, agreement of name and/or DOB is what files a document."""
    mrn, doubt = reading.mrn, reading.doubt
    if mrn is not None:
        patient = roster.get(mrn)
        if patient is not None:
            return _confirm(mrn, patient, ids)
        return _corrected(mrn, ids, roster)
    if reading.uncertain is not None:
        return _corroborated(reading.uncertain, doubt or "", ids, roster)
    if not ids.mrn_candidates and (found := _printed_unlabelled(ids, roster)):
        return found
    if ids.mrn_candidates or not (ids.name and ids.dob):
        return _review(doubt or "no MRN found on any page")
    matches = roster.by_name_dob(ids.name, ids.dob)
    if len(matches) != 1:
        how_many = (
            f"name and date of birth match {len(matches)} patients in the index"
            if matches
            else "name and date of birth match no patient in the index"
        )
        return _review(f"{doubt}; {how_many}")
    if settings.file_by_name_and_dob:
        note = "no MRN on the document; filed by name and date of birth, which match exactly one patient in the index"
        return Decision("filed", matches[0].mrn, corrections=(note,))
    return _review(f"{doubt}; name and date of birth match one patient in the index", suggested_mrn=matches[0].mrn)


def _both_agree(ids: Identifiers, patient: RosterPatient) -> bool:
    return name_agrees(ids.name, patient) is True and dob_agrees(ids.dob, patient) is True


def _corroborated(mrn: str, doubt: str, ids: Identifiers, roster: PatientLookup) -> Decision:
    """An MRN read unclearly files only when it is a patient's whose name and DOB both
    agree with the document: the three together are no OCR accident."""
    patient = roster.get(mrn)
    if patient is not None and _both_agree(ids, patient):
        return Decision("filed", mrn, corrections=(CORROBORATED,))
    if patient is None:
        return _review(f"{doubt}; MRN {mrn} is not in the patient index")
    # A name or DOB of someone else makes the unclear digits suspect: suggest nobody then.
    contradicted = name_agrees(ids.name, patient) is False or dob_agrees(ids.dob, patient) is False
    return _review(
        f"{doubt}; the document's name and date of birth do not both confirm it",
        suggested_mrn=None if contradicted else mrn,
    )


def _printed_unlabelled(ids: Identifiers, roster: PatientLookup) -> Decision | None:
    """With no MRN label anywhere, a number printed on the page that the index gives to the
    patient the name and DOB name files; two such patients are a question for a clerk."""
    if not (ids.name and ids.dob):
        return None
    matches = {p.mrn: p for value in ids.unlabelled_mrns if (p := roster.get(value)) and _both_agree(ids, p)}
    if len(matches) > 1:
        return _review(
            f"no MRN label; numbers on the page belong to {len(matches)} patients of that name and date of birth"
        )
    if not matches:
        return None
    mrn = next(iter(matches))
    note = f"no MRN label; {mrn} printed on the document is the MRN of the patient its name and date of birth match"
    return Decision("filed", mrn, corrections=(note,))


def _confirm(mrn: str, patient: RosterPatient, ids: Identifiers) -> Decision:
    name_ok, dob_ok = name_agrees(ids.name, patient), dob_agrees(ids.dob, patient)
    if name_ok is False or dob_ok is False:
        what = " and ".join(w for w, ok in (("name", name_ok), ("date of birth", dob_ok)) if ok is False)
        return _review(f"the {what} on the document differ from the patient index for MRN {mrn}", suggested_mrn=None)
    if name_ok is None and dob_ok is None:
        return _review(
            f"MRN {mrn} is in the patient index, but the document shows no name or date of birth to confirm it",
            suggested_mrn=mrn,
        )
    return Decision("filed", mrn)


def _corrected(mrn: str, ids: Identifiers, roster: PatientLookup) -> Decision:
    """An MRN missing from the index but one OCR confusion from a patient the page names."""
    raws = {c.raw for c in ids.mrn_candidates if c.value == mrn} | {mrn}
    near = {p.mrn: p for raw in raws for p in roster.confusable(raw)}
    matches = [p for p in near.values() if name_agrees(ids.name, p) and dob_agrees(ids.dob, p)]
    if len(matches) == 1:
        note = f"MRN read as {mrn}; corrected to {matches[0].mrn}, one OCR confusion away, whose name and date of birth match the document"
        return Decision("filed", matches[0].mrn, corrections=(note,))
    return _review(f"MRN {mrn} is not in the patient index", suggested_mrn=matches[0].mrn if matches else None)


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
