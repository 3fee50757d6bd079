"""The filing decision: a pure function of the evidence, the most careful code here.

A document is filed under a patient only when exactly one MRN was read, clearly,
nothing in the document contradicts it, and a second witness corroborates it: the
same MRN read again (another page, another place, a barcode), the patient index (name
or date of birth agree) or the archive's history (documents already filed under it
carry the same name or date of birth). A digit read with low confidence, or a
confusable digit whose swap gives another known MRN the name and date of birth do not
rule out, is doubt. Everything else goes to review with a reason a clerk can act on.
Filing under the wrong patient is the worst failure the product can have; a review
costs a clerk a minute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.core.config import FilingSettings, RosterSettings
from pipeline.core.models import Decision, FiledPatient, Identifiers, MrnCandidate, PageText, Word
from pipeline.identify.roster import (
    Agreement,
    PatientLookup,
    RosterPatient,
    dob_agreement,
    dob_agrees,
    luhn_valid,
    name_agreement,
    name_agrees,
)

_DEFAULT_ROSTER_SETTINGS = RosterSettings()
_LOOKALIKES = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "|": "1", "S": "5", "B": "8", "Z": "2", "G": "6"}
)
_DIGITS = "0123456789"

CORROBORATED = "MRN read with low confidence, corroborated by name and date of birth"

# What may corroborate a filing, as the sidecar records it.
BARCODE = "barcode"
SECOND_PAGE = "second_page"  # the same MRN read on another page of the document
SECOND_READ = "second_read"  # read again elsewhere on the same page
TEXT_LAYER = "text_layer"  # spelled by the PDF's own text, not recognised by OCR
SINGLE_READ = "single_read"  # filing.second_witness off: a clear read alone
INDEX = "patient_index"
ARCHIVE = "archive"

History = Mapping[str, FiledPatient]


@dataclass(frozen=True)
class _Reading:
    """The one MRN the document carries, or why there is none. ``uncertain`` is the value
    when one printed MRN was read, but never clearly enough to file on by itself;
    ``doubtful`` the positions of its digits read with low confidence."""

    mrn: str | None
    doubt: str | None = None
    uncertain: str | None = None
    witnesses: tuple[str, ...] = ()
    doubtful: frozenset[int] = frozenset()
    by_ocr: bool = True  # False when a barcode or the text layer spelled it


@dataclass(frozen=True)
class _Agreement:
    """How a document's name and DOB agree with what is known of one MRN's patient."""

    witnesses: tuple[str, ...] = ()
    contradiction: str | None = None  # what differs, e.g. "name and date of birth"
    near: str | None = None  # what only nearly agrees, with nothing agreeing exactly


def _review(reason: str, suggested_mrn: str | None = None, candidates: Sequence[str] = ()) -> Decision:
    return Decision("review", None, reason, suggested_mrn, candidates=tuple(dict.fromkeys(candidates)))


def _filed(mrn: str, witnesses: Iterable[str], corrections: tuple[str, ...] = ()) -> Decision:
    return Decision("filed", mrn, corrections=corrections, corroboration=tuple(dict.fromkeys(witnesses)))


def _mrn_words(candidate: MrnCandidate, page: PageText | None) -> Iterable[tuple[str, int, list[float]]]:
    """(digits, where they sit in the MRN, their character confidences) of the words spelling it."""
    if page is None or page.source != "ocr":
        return
    for word in page.words:
        pairs = [(ch, i) for i, ch in enumerate(word.text.translate(_LOOKALIKES)) if ch.isdigit()]
        digits = "".join(ch for ch, _ in pairs)
        if len(digits) < 3 or (at := candidate.value.find(digits)) < 0:
            continue
        confs = [word.char_confs[i] for _, i in pairs] if len(word.char_confs) == len(word.text) else []
        yield digits, at, confs


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


def digit_confidences(candidate: MrnCandidate, page: PageText | None) -> dict[int, float]:
    """Lowest tesseract confidence of each digit of the MRN, by position; {} where unknown."""
    found: dict[int, float] = {}
    for _, at, confs in _mrn_words(candidate, page):
        for i, conf in enumerate(confs):
            found[at + i] = min(conf, found.get(at + i, 100.0))
    return found


def confusable_variants(mrn: str, groups: Sequence[str], doubtful: Iterable[int] = ()) -> list[str]:
    """The MRNs one digit from ``mrn``: a confusable digit swapped, or any digit where one was doubtful."""
    alike = {ch: {c for g in groups if ch in g for c in g} - {ch} for ch in _DIGITS}
    anywhere = set(doubtful)
    found = {
        mrn[:i] + alt + mrn[i + 1 :]
        for i, ch in enumerate(mrn)
        if ch in alike
        for alt in (set(_DIGITS) - {ch} if i in anywhere else alike[ch])
    }
    return sorted(found)


def mrns_to_look_up(pages: Sequence[PageText], ids: Identifiers, settings: FilingSettings) -> set[str]:
    """Every MRN whose archive history decide() may ask about for this document."""
    by_page = {p.page_no: p for p in pages}
    wanted: set[str] = set()
    for c in ids.mrn_candidates:
        low = _low_digits(c, by_page.get(c.page_no), settings)
        wanted |= {c.value, *confusable_variants(c.value, settings.confusable_digits, low)}
    return wanted


def _where(candidates: Sequence[MrnCandidate], value: str) -> str:
    pages = sorted({c.page_no for c in candidates if c.value == value})
    return f"{value} (page {', '.join(map(str, pages))})"


def decide(
    pages: Sequence[PageText],
    ids: Identifiers,
    settings: FilingSettings,
    roster_settings: RosterSettings | None = None,
    roster: PatientLookup | None = None,
    history: History | None = None,
) -> Decision:
    """Filed under one MRN, or review with the first reason that forbids filing.

    ``history`` is what the archive's filed documents say of the MRNs of
    mrns_to_look_up(); None when the archive is not consulted.
    """
    unread = [p for p in pages if p.error]
    if unread:
        detail = "; ".join(f"page {p.page_no}: {p.error}" for p in unread[:3])
        return _review(f"{len(unread)} page(s) could not be read ({detail})")
    roster_settings = roster_settings or _DEFAULT_ROSTER_SETTINGS
    reading = _read_mrn(pages, ids, settings)
    if roster is not None:
        return _against_roster(reading, ids, roster, roster_settings, settings)
    known = history if history is not None and settings.archive_history else {}
    if reading.mrn is None:
        if reading.uncertain is None:
            return _review(reading.doubt or "no MRN found on any page")
        rivals = _archive_rivals(reading.uncertain, reading, ids, known, settings)
        return _review(reading.doubt or "", candidates=(reading.uncertain, *rivals) if rivals else ())
    if roster_settings.check_digit == "luhn" and not luhn_valid(reading.mrn):
        return _review(f"MRN {reading.mrn} fails its check digit (luhn)")
    return _against_archive(reading.mrn, reading, ids, known, settings)


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
        return _Reading(barcodes[0], witnesses=(BARCODE, *((SECOND_READ,) if printed else ())), by_ocr=False)
    if not printed:
        return _Reading(None, "no MRN found on any page")
    if len(printed) > 1:
        return _Reading(
            None, f"conflicting MRNs in one document: {', '.join(_where(ids.mrn_candidates, m) for m in printed)}"
        )
    by_page = {p.page_no: p for p in pages}
    reads = [c for c in ids.mrn_candidates if c.source == "text"]
    doubts = [_doubt(c, by_page.get(c.page_no), settings) for c in reads]
    if all(doubts):
        low = {i for c in reads for i in _low_digits(c, by_page.get(c.page_no), settings)}
        return _Reading(None, doubts[0], printed[0], doubtful=frozenset(low))
    # Every reading spells the same MRN here, so one clear reading is enough, and each
    # other reading of it (clear or not) is a second witness: a misread repeated digit
    # for digit in another place is no OCR accident.
    in_layer = any(
        (page := by_page.get(c.page_no)) is not None and page.source == "text-layer"
        for c, doubt in zip(reads, doubts, strict=True)
        if doubt is None
    )
    witnesses = [TEXT_LAYER] if in_layer else []
    if len({c.page_no for c in reads}) > 1:
        witnesses.append(SECOND_PAGE)
    elif len(reads) > 1 and _printed_apart(printed[0], by_page.get(reads[0].page_no)):
        witnesses.append(SECOND_READ)
    return _Reading(printed[0], witnesses=tuple(witnesses), by_ocr=not in_layer)


def _same_place(a: Word, b: Word) -> bool:
    if (a.left, a.top) == (b.left, b.top):
        return True
    width = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    height = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    return width > 0 and height > 0


def _printed_apart(mrn: str, page: PageText | None) -> bool:
    """Whether an OCR page's words spell ``mrn`` in two places or more (one word, or up to
    three words in a row, "0048 2913"). Two readings of the same print (a second look's
    header re-read beside the page's own) are one witness, not two. A page without words
    to trace it by (the text layer's) is taken at its text."""
    if page is None or page.source != "ocr" or not page.words:
        return True
    digits = [re.sub(r"[^0-9]", "", w.text.translate(_LOOKALIKES)) for w in page.words]
    places: list[Word] = []
    for i, word in enumerate(page.words):
        spelled = ""
        for more in digits[i : i + 3]:
            spelled += more
            if not more or not mrn.startswith(spelled):
                break
            if spelled == mrn:
                if not any(_same_place(word, other) for other in places):
                    places.append(word)
                break
    return len(places) > 1


# ---------------------------------------------------------------- agreement of name and DOB


def _best(grades: Iterable[Agreement | None]) -> Agreement | None:
    found = set(grades) - {None}
    return next((g for g in ("exact", "close", "differs") if g in found), None)


def _agreement(
    ids: Identifiers, names: Iterable[str], dobs: Iterable[str], source: str, settings: FilingSettings
) -> _Agreement:
    """Witnesses from a name and DOB that agree, or what differs. A near miss (one OCR slip)
    counts when the other agrees exactly and tolerance is on; alone it proves nothing."""
    grades = {
        "name": _best(name_agreement(ids.name, n) for n in names),
        "date of birth": _best(dob_agreement(ids.dob, d) for d in dobs),
    }
    if not settings.tolerant_agreement:
        grades = {k: "differs" if g == "close" else g for k, g in grades.items()}
    differs = [what for what, g in grades.items() if g == "differs"]
    exact = [what for what, g in grades.items() if g == "exact"]
    close = [what for what, g in grades.items() if g == "close"]
    if differs:
        return _Agreement(contradiction=" and ".join(differs))
    if close and not exact:
        return _Agreement(near=" and ".join(close))
    label = {"name": "name", "date of birth": "dob"}
    return _Agreement(tuple(f"{source}:{label[w]}" for w in exact) + tuple(f"{source}:{label[w]}:close" for w in close))


def _ruled_out(ids: Identifiers, names: Sequence[str], dobs: Sequence[str]) -> bool:
    """The document's name or DOB is plainly not this patient's (an OCR slip would still agree)."""
    name = _best(name_agreement(ids.name, n) for n in names)
    dob = _best(dob_agreement(ids.dob, d) for d in dobs)
    return "differs" in (name, dob)


# ---------------------------------------------------------------- without a patient index


def _archive_rivals(
    mrn: str, reading: _Reading, ids: Identifiers, known: History, settings: FilingSettings
) -> list[str]:
    """Archived MRNs this read may be with one digit read differently, not ruled out by name or DOB."""
    if not reading.by_ocr:
        return []
    return [
        v
        for v in confusable_variants(mrn, settings.confusable_digits, reading.doubtful)
        if (other := known.get(v)) is not None and not _ruled_out(ids, other.names, other.dobs)
    ]


def _against_archive(
    mrn: str, reading: _Reading, ids: Identifiers, known: History, settings: FilingSettings
) -> Decision:
    """No patient index: the reading itself, or documents already filed under the MRN, corroborate."""
    witnesses = list(reading.witnesses)
    filed = known.get(mrn)
    if filed is not None:
        agreement = _agreement(ids, filed.names, filed.dobs, ARCHIVE, settings)
        if agreement.contradiction:
            return _review(
                f"the {agreement.contradiction} on the document differ from the {filed.documents} document(s) "
                f"already filed under MRN {mrn}"
            )
        witnesses.extend(agreement.witnesses)
    rivals = _archive_rivals(mrn, reading, ids, known, settings)
    if rivals:
        return _review(
            f"MRN {mrn} may be misread: with one digit read differently it is {' or '.join(rivals)}, "
            "already in the archive, and the name and date of birth do not rule that out",
            candidates=(mrn, *rivals),
        )
    if witnesses:
        return _filed(mrn, witnesses)
    if not settings.second_witness:
        return _filed(mrn, (SINGLE_READ,))
    return _review(
        f"MRN {mrn} was read once by OCR and nothing corroborates it (no second reading or barcode, "
        "no patient index, no earlier document of that MRN with the same name or date of birth)",
        suggested_mrn=mrn,
    )


# ---------------------------------------------------------------- with a patient index


def _roster_rivals(
    mrn: str, reading: _Reading, ids: Identifiers, roster: PatientLookup, settings: FilingSettings
) -> list[str]:
    """Index MRNs this read may be with one digit read differently, not ruled out by name or DOB."""
    if not reading.by_ocr:
        return []
    return [
        v
        for v in confusable_variants(mrn, settings.confusable_digits, reading.doubtful)
        if (p := roster.get(v)) is not None and not _ruled_out(ids, (p.name,), (p.dob,))
    ]


def _against_roster(
    reading: _Reading, ids: Identifiers, roster: PatientLookup, settings: RosterSettings, filing: FilingSettings
) -> Decision:
    """With a patient index, agreement of name and/or DOB is what files a document."""
    mrn, doubt = reading.mrn, reading.doubt
    if mrn is not None:
        patient = roster.get(mrn)
        if patient is not None:
            return _confirm(mrn, patient, reading, ids, roster, filing)
        return _corrected(mrn, reading, ids, roster, filing)
    if reading.uncertain is not None:
        return _corroborated(reading.uncertain, reading, ids, roster, filing)
    if not ids.mrn_candidates and (found := _printed_unlabelled(ids, roster)):
        return found
    if ids.mrn_candidates or not (ids.name and ids.dob):
        return _review(doubt or "no MRN found on any page")
    matches = roster.by_name_dob(ids.name, ids.dob)
    if len(matches) != 1:
        counted = (
            f"name and date of birth match {len(matches)} patients in the index"
            if matches
            else "name and date of birth match no patient in the index"
        )
        return _review(f"{doubt}; {counted}")
    if settings.file_by_name_and_dob:
        note = "no MRN on the document; filed by name and date of birth, which match exactly one patient in the index"
        return _filed(matches[0].mrn, (f"{INDEX}:name", f"{INDEX}:dob"), (note,))
    return _review(f"{doubt}; name and date of birth match one patient in the index", suggested_mrn=matches[0].mrn)


def _both_agree(ids: Identifiers, patient: RosterPatient) -> bool:
    return name_agrees(ids.name, patient) is True and dob_agrees(ids.dob, patient) is True


def _corroborated(
    mrn: str, reading: _Reading, ids: Identifiers, roster: PatientLookup, filing: FilingSettings
) -> Decision:
    """An MRN read unclearly files only when it is a patient's whose name and DOB both
    agree with the document, and no other patient one doubtful digit away could be meant:
    the three together are no OCR accident."""
    doubt = reading.doubt or ""
    patient = roster.get(mrn)
    rivals = _roster_rivals(mrn, reading, ids, roster, filing)
    if patient is not None and _both_agree(ids, patient) and not rivals:
        return _filed(mrn, (f"{INDEX}:name", f"{INDEX}:dob"), (CORROBORATED,))
    candidates = (mrn, *rivals) if patient is not None else tuple(rivals)
    if rivals:
        return _review(
            f"{doubt}; with one digit read differently it is {' or '.join(rivals)}, also in the patient index",
            candidates=candidates,
        )
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
    return _filed(mrn, (f"{INDEX}:name", f"{INDEX}:dob"), (note,))


def _confirm(
    mrn: str, patient: RosterPatient, reading: _Reading, ids: Identifiers, roster: PatientLookup, filing: FilingSettings
) -> Decision:
    agreement = _agreement(ids, (patient.name,), (patient.dob,), INDEX, filing)
    if agreement.contradiction:
        return _review(
            f"the {agreement.contradiction} on the document differ from the patient index for MRN {mrn}",
            suggested_mrn=None,
        )
    if agreement.near:
        return _review(
            f"the {agreement.near} on the document only nearly agree with the patient index for MRN {mrn}",
            suggested_mrn=mrn,
        )
    if f"{INDEX}:name:close" in agreement.witnesses:
        # A garbled name is no licence to take one twin for the other.
        twins = [p.mrn for p in roster.by_name_dob(ids.name or "", patient.dob) if p.mrn != mrn]
        if twins:
            return _review(
                f"the name on the document is that of {', '.join(twins)}, born the same day as the patient of MRN {mrn}",
                candidates=(mrn, *twins),
            )
    rivals = _roster_rivals(mrn, reading, ids, roster, filing)
    if not (agreement.witnesses or reading.witnesses):
        return _review(
            f"MRN {mrn} is in the patient index, but the document shows no name or date of birth to confirm it",
            suggested_mrn=mrn,
            candidates=(mrn, *rivals) if rivals else (),
        )
    if rivals:
        return _review(
            f"MRN {mrn} may be misread: with one digit read differently it is {' or '.join(rivals)}, "
            "also in the patient index, and the name and date of birth do not rule that out",
            candidates=(mrn, *rivals),
        )
    return _filed(mrn, (*reading.witnesses, *(agreement.witnesses or (f"{INDEX}:mrn",))))


def _corrected(
    mrn: str, reading: _Reading, ids: Identifiers, roster: PatientLookup, filing: FilingSettings
) -> Decision:
    """An MRN missing from the index but one OCR confusion from a patient the page names."""
    raws = {c.raw for c in ids.mrn_candidates if c.value == mrn} | {mrn}
    near = {p.mrn: p for raw in raws for p in roster.confusable(raw)}
    matches = [p for p in near.values() if name_agrees(ids.name, p) and dob_agrees(ids.dob, p)]
    if len(matches) == 1:
        note = f"MRN read as {mrn}; corrected to {matches[0].mrn}, one OCR confusion away, whose name and date of birth match the document"
        return _filed(matches[0].mrn, (f"{INDEX}:name", f"{INDEX}:dob"), (note,))
    rivals = _roster_rivals(mrn, reading, ids, roster, filing)
    return _review(
        f"MRN {mrn} is not in the patient index",
        suggested_mrn=matches[0].mrn if matches else None,
        candidates=[*(p.mrn for p in matches), *rivals],
    )


def _low_digits(candidate: MrnCandidate, page: PageText | None, settings: FilingSettings) -> set[int]:
    return {i for i, conf in digit_confidences(candidate, page).items() if conf < settings.min_digit_confidence}


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
    digits = digit_confidences(candidate, page)
    low = sorted(i for i, c in digits.items() if c < settings.min_digit_confidence)
    if low:
        which = ", ".join(str(i + 1) for i in low)
        return (
            f"MRN {candidate.value} on page {candidate.page_no}: digit {which} read with low confidence "
            f"({min(digits[i] for i in low):.0f} < {settings.min_digit_confidence:.0f})"
        )
    return None
