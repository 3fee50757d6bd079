"""Patient identifiers from page text: MRN candidates, name, date of birth, document date.

Every value is label-anchored: it counts only when a configured label sits right before
it on the same line, or right above it as a table header. A document with no answer goes
to review; a document with a wrong answer is misfiled, so every doubtful read is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from pipeline.core.config import ExtractionSettings
from pipeline.core.models import Identifiers, MrnCandidate, Word
from pipeline.identify import label_match, layout
from pipeline.identify.label_match import LabelHit, Vocabulary

_Label = re.Match[str] | LabelHit  # a label as configured, or as OCR garbled it

_CORRECTED_FACTOR = 0.8
_BELOW_FACTOR = 0.7

# Words that, right before a label, make it about someone else ("Mother's MRN", "Physician
# Name", "Guarantor DOB").
_OTHER_PARTY = frozenset(
    [
        "mother",
        "father",
        "parent",
        "guardian",
        "baby",
        "infant",
        "newborn",
        "spouse",
        "husband",
        "wife",
        "partner",
        "child",
        "son",
        "daughter",
        "sibling",
        "brother",
        "sister",
        "relative",
        "caregiver",
        "representative",
        "proxy",
        "guarantor",
        "insured",
        "subscriber",
        "policyholder",
        "member",
        "emergency",
        "contact",
        "physician",
        "provider",
        "doctor",
        "pcp",
        "attending",
        "resident",
        "referring",
        "ordering",
        "consultant",
        "surgeon",
        "anesthesiologist",
        "radiologist",
        "pathologist",
        "nurse",
        "therapist",
        "technician",
        "tech",
        "witness",
        "interpreter",
        "signer",
        "responsible",
    ]
)
_INSTITUTIONS = frozenset(
    [
        "employer",
        "payer",
        "payor",
        "carrier",
        "insurance",
        "facility",
        "company",
        "pharmacy",
        "practice",
        "clinic",
        "hospital",
    ]
)
# Another record's number: filing under it would misfile. An institution's name right before
# "MRN" is usually this hospital's letterhead, so institution words alone do not block.
_OTHER_RECORD = _OTHER_PARTY | frozenset(
    [
        "old",
        "previous",
        "prior",
        "former",
        "merged",
        "outside",
        "external",
        "alternate",
        "alt",
        "temp",
        "temporary",
        "other",
    ]
)
_NOT_THIS_NAME = (
    _OTHER_PARTY
    | _INSTITUTIONS
    | frozenset(
        [
            "last",
            "first",
            "middle",
            "maiden",
            "preferred",
            "alias",
            "nick",
            "nickname",
            "user",
            "file",
            "drug",
            "medication",
            "test",
            "procedure",
            "plan",
            "product",
            "vendor",
            "program",
            "school",
            "group",
        ]
    )
)
_NOT_THIS_DATE = (
    _OTHER_PARTY
    | _INSTITUTIONS
    | frozenset(
        [
            "birth",
            "death",
            "print",
            "printed",
            "due",
            "expiration",
            "expiry",
            "exp",
            "effective",
            "termination",
            "next",
            "last",
            "return",
            "fax",
            "faxed",
            "sent",
            "revised",
            "review",
            "reviewed",
            "order",
            "ordered",
            "scheduled",
            "appointment",
            "injury",
            "accident",
            "onset",
            "diagnosis",
            "lmp",
            "immunization",
            "vaccine",
            "vaccination",
            "payment",
            "paid",
            "posted",
            "posting",
            "check",
            "transaction",
            "coverage",
            "eligibility",
            "enrollment",
            "hire",
        ]
    )
)

# The one or two words before a label ("Outside Hospital MRN"), across any spacing and OCR
# specks ("Birth. Date"): a lone "Mother's" cell before "MRN" still qualifies that MRN.
_PRECEDING_WORDS = re.compile(
    r"(?<![A-Za-z'\u2019])(?:([A-Za-z][A-Za-z'\u2019]*)[^\w:]+)?([A-Za-z][A-Za-z'\u2019]*)[^\w:]*$"
)
_FIELD = re.compile(r"[^\s|]+(?: [^\s|]+)*")  # table cells: split by 2+ spaces, tabs or rules

# ---------------------------------------------------------------- dates

_MONTHS = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MONTH = (
    r"(?<![a-z])(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])\.?"
)
_DAY = r"[0-3]?\d(?:st|nd|rd|th)?"
_DATE = re.compile(
    r"(?<!\d)(?:"
    r"(?P<iy>\d{4}) ?(?P<isep>[-/.]) ?(?P<im>\d{1,2}) ?(?P=isep) ?(?P<id>\d{1,2})"
    r"|(?P<a>\d{1,2}) ?(?P<sep>[-/.]) ?(?P<b>\d{1,2}) ?(?P=sep) ?(?P<y>\d{4}|\d{2})"  # OCR "03 / 14 / 1962"
    rf"|(?P<mn>{_MONTH})[ \t-]*(?P<md>{_DAY})[ \t,-]*(?P<my>\d{{4}})"
    rf"|(?P<dd>{_DAY})[ \t-]*(?P<dm>{_MONTH})[ \t,-]*(?P<dy>\d{{4}}|\d{{2}})"
    r")(?!\d)",
    re.IGNORECASE,
)
_NON_DIGIT = re.compile(r"\D")
# After a date label: "Collection Date/Time:", "DOB (mm/dd/yyyy):", "DOS \u2013".
_DATE_SEP = re.compile(
    r"(?:[ \t]*/[ \t]*time)?[ \t]*(?:[:;#=\u2013\u2014-][ \t]*)?(?:\([^)]{0,24}\)[ \t]*(?:[:-][ \t]*)?)?"
    r"[\"'\u2018\u201c]?",  # OCR specks read as an opening quote
    re.IGNORECASE,
)


def _year(text: str) -> int:
    if len(text) == 4:
        return int(text)
    # Two-digit years: the most recent past century reading (62 -> 1962, 24 -> 2024).
    yy, this_yy = int(text), date.today().year % 100
    return (2000 if yy <= this_yy else 1900) + yy


def _iso(m: re.Match[str], order: str) -> str | None:
    if m["iy"]:
        y, mo, d = int(m["iy"]), int(m["im"]), int(m["id"])
    elif m["a"]:
        first, second = int(m["a"]), int(m["b"])
        mo, d = (first, second) if order == "MDY" else (second, first)
        y = _year(m["y"])
    elif m["mn"]:
        y, mo, d = int(m["my"]), _MONTHS[m["mn"][:3].lower()], int(_NON_DIGIT.sub("", m["md"]))
    else:
        y, mo, d = _year(m["dy"]), _MONTHS[m["dm"][:3].lower()], int(_NON_DIGIT.sub("", m["dd"]))
    if not 1850 <= y <= 2150:
        return None
    try:
        return date(y, mo, d).isoformat()
    except ValueError:
        return None


def parse_date(text: str, order: str = "MDY") -> str | None:
    """The ISO date a whole string spells, or None if it is not exactly one real date."""
    m = _DATE.fullmatch(text.strip().rstrip(".,;"))
    return _iso(m, order) if m else None


# ---------------------------------------------------------------- compiled labels


@dataclass(frozen=True)
class _Patterns:
    mrn_or_other: re.Pattern[str]  # named groups "mrn" / "other"
    mrn_value: re.Pattern[str]
    name: re.Pattern[str]
    dob: re.Pattern[str]
    doc_date: re.Pattern[str]  # named groups p<priority>
    name_stop: re.Pattern[str]
    fuzzy: Vocabulary | None  # garbled MRN, name and DOB labels; None when tolerance is 0

    def labels(self, line: str, exact: re.Pattern[str], kind: str) -> list[_Label]:
        """The labels of ``kind`` on ``line``: as configured, then as OCR garbled them."""
        found: list[_Label] = list(exact.finditer(line))
        found += [h for h in self.fuzzy_labels(line) if h.kind == kind]
        return sorted(found, key=lambda m: m.start())

    def fuzzy_labels(self, line: str) -> tuple[LabelHit, ...]:
        """The MRN, name and DOB labels only OCR tolerance finds (none where one is exact)."""
        if self.fuzzy is None:
            return ()
        taken = tuple(m.span() for pattern in (self.mrn_or_other, self.name, self.dob) for m in pattern.finditer(line))
        return label_match.cached_labels(line, self.fuzzy, taken)


def _alternatives(fragments: Sequence[str]) -> str:
    # Longest first, so "Date of Service" is tried before "Date" at the same position.
    return "|".join(f"(?:{f})" for f in sorted(fragments, key=len, reverse=True))


def _label(body: str) -> str:
    # A letter may not run on into the label, but a digit may follow ("MRN00482913").
    return rf"(?<![A-Za-z0-9])(?:{body})(?!(?<=[A-Za-z])[A-Za-z])"


# Field words a name value must stop before even when no configured label names them.
_FIELD_WORDS = r"Age|Sex|Gender|Race|Ht|Wt|Height|Weight|Ethnicity|Language|Address"


@lru_cache(maxsize=16)
def _compile(key: tuple[tuple[str, ...], ...], mrn_pattern: str, tolerance: int) -> _Patterns:
    mrn, other, name, dob, doc, near_misses = key
    ranked = sorted(range(len(doc)), key=lambda i: len(doc[i]), reverse=True)
    doc_alts = "|".join(f"(?P<p{i}>{doc[i]})" for i in ranked)
    every_label = _alternatives([*mrn, *other, *name, *dob, *doc])
    flags = re.IGNORECASE
    return _Patterns(
        mrn_or_other=re.compile(
            f"(?P<mrn>{_label(_alternatives(mrn))})|(?P<other>{_label(_alternatives(other))})", flags
        ),
        mrn_value=re.compile(mrn_pattern),
        name=re.compile(_label(_alternatives(name)), flags),
        dob=re.compile(_label(_alternatives(dob)), flags),
        doc_date=re.compile(_label(doc_alts), flags),
        name_stop=re.compile(
            rf"[ \t]{{2,}}|\t|[|;()\[\]<>\d]|{_label(every_label + '|' + _FIELD_WORDS)}"
            r"|[A-Za-z][\w.'#/]*[ \t]*:",
            flags,
        ),
        fuzzy=label_match.vocabulary(
            (("mrn", mrn), ("other", other), ("name", name), ("dob", dob), ("doc_date", doc)),
            ("mrn", "name", "dob"),
            near_misses,
            tolerance,
        )
        if tolerance
        else None,
    )


def _patterns(settings: ExtractionSettings) -> _Patterns:
    key = tuple(
        tuple(labels)
        for labels in (
            settings.mrn_labels,
            settings.not_mrn_labels,
            settings.name_labels,
            settings.dob_labels,
            settings.doc_date_labels,
            settings.label_near_misses,
        )
    )
    return _compile(key, settings.mrn_pattern, settings.label_tolerance)


# ---------------------------------------------------------------- lines and table cells


@dataclass(frozen=True)
class _Line:
    offset: int
    text: str


def _lines(text: str) -> list[_Line]:
    lines, offset = [], 0
    for raw in text.split("\n"):
        # PDF text layers use no-break spaces; same length, so offsets still hold.
        lines.append(_Line(offset, raw.rstrip("\r").replace("\xa0", " ")))
        offset += len(raw) + 1
    return lines


def _qualified(line: str, start: int, qualifiers: frozenset[str]) -> bool:
    m = _PRECEDING_WORDS.search(line, 0, start)
    for word in m.groups() if m else ():
        word = (word or "").lower().replace("\u2019", "'").removesuffix("'s").replace("'", "")
        if word in qualifiers or word.removesuffix("s") in qualifiers:
            return True
    return False


# After a header label in its cell: a colon or "(mm/dd/yyyy)", and at most two specks
# OCR made of dust ("Unit No. ©").
_HEADER_REST = re.compile(r"[ \t]*[:#.=-]?[ \t]*(?:\([^)]*\))?[ \t]*:?(?:[ \t]?[^\w\s(|])?(?:[ \t]?[^\w\s(|])?")


def _is_header(line: str, label: _Label) -> tuple[int, int] | None:
    """The column span of the label's cell when the cell holds nothing but the label."""
    for cell in _FIELD.finditer(line):
        if cell.start() <= label.start() < cell.end():
            rest = line[label.end() : cell.end()]
            if _HEADER_REST.fullmatch(rest):
                return cell.span()
            return None
    return None


def _cell_below(lines: list[_Line], index: int, span: tuple[int, int]) -> tuple[str, int] | None:
    """The one cell of the next non-blank line (at most one blank between) under ``span``."""
    for below in lines[index + 1 : index + 3]:
        if not below.text.strip():
            continue
        cells = [c for c in _FIELD.finditer(below.text) if c.start() < span[1] + 2 and c.end() > span[0] - 2]
        if len(cells) != 1:
            return None
        return cells[0].group(), below.offset + cells[0].start()
    return None


# ---------------------------------------------------------------- MRN


@dataclass(frozen=True)
class _Number:
    raw: str
    value: str
    corrected: bool
    start: int
    end: int


_CHUNK = re.compile(r"[A-Za-z0-9|]+")
_LOOKALIKES = str.maketrans("OoDIl|SBZG", "0001115826")
_END_OK = re.compile(r"[.,;:)\]'\"\u2018\u2019\u201c\u201d\u00b0]*(?:[ \t]|$)")
# A table rule counts as a separator only with space around it: glued, it may be a "1".
_MRN_SEP = re.compile(r"[ \t]*(?:(?:[:;#.=\u2013\u2014-]|(?<=[ \t])\|(?=[ \t]))[ \t]*){0,3}[\"'\u2018\u201c]?")
_COMBINED = re.compile(r"[ \t]*(?:[/&|,+\\-]|or|and)?[ \t]*", re.IGNORECASE)
_OTHER_NUMBER = re.compile(
    r"\d{3}[ -]\d{3}[ -]\d{4}|1[ -]\d{3}[ -]\d{3}[ -]\d{4}|\d{3}[ -]\d{4}"  # phone
    r"|\d{3}[ -]\d{2}[ -]\d{4}"  # SSN
    r"|\d{5}-\d{4}"  # ZIP+4
)


def _looks_like_other_number(raw: str) -> bool:
    return bool(_OTHER_NUMBER.fullmatch(raw) or parse_date(raw, "MDY") or parse_date(raw, "DMY"))


def _correct(compact: str, pattern: re.Pattern[str]) -> str | None:
    value = compact.translate(_LOOKALIKES)
    if not pattern.fullmatch(value):
        return None
    letters = sum(not c.isdigit() for c in compact)
    # A leading O is a lost zero; a leading I/l/| or any trailing letter is as likely a
    # table rule, a prefix or a suffix, and then the corrected number would be wrong.
    if not compact[-1].isdigit() or compact[0] not in "0123456789Oo" or letters > len(compact) // 3:
        return None
    return value


def _reading(line: str, chunks: list[tuple[int, int]], pattern: re.Pattern[str]) -> _Number | None:
    start, end = chunks[0][0], chunks[-1][1]
    raw = line[start:end]
    compact = raw.replace(" ", "").replace("-", "")
    if pattern.fullmatch(compact):
        return _Number(raw, compact, False, start, end)
    value = _correct(compact, pattern)
    return _Number(raw, value, True, start, end) if value else None


def _chunks(line: str, pos: int) -> list[tuple[int, int]]:
    """The digit groups at ``pos`` split by one space or hyphen ("0048 2913", "0048-2913")."""
    chunks: list[tuple[int, int]] = []
    at = pos
    while (m := _CHUNK.match(line, at)) and any(c.isdigit() for c in m.group()):
        if m.end() < len(line) and line[m.end()] not in " -" and not _END_OK.match(line, m.end()):
            # Glued to more text ("03" of "03/14/1962"): that group belongs to another token.
            return chunks
        chunks.append(m.span())
        if m.end() + 1 >= len(line) or line[m.end()] not in " -":
            break
        at = m.end() + 1
    return chunks


def _read_number(line: str, pos: int, pattern: re.Pattern[str]) -> _Number | None:
    """The number at ``pos``; None unless exactly one way of reading it is valid.

    Each prefix of the digit groups is a reading; two valid readings ("123456 7890",
    "00482913-01") are a guess, and a run that looks like a phone number, SSN, ZIP+4 or
    date anywhere is no MRN at all.
    """
    chunks = _chunks(line, pos)
    if not chunks or any(_looks_like_other_number(line[pos:end]) for _, end in chunks):
        return None
    readings = [r for k in range(len(chunks)) if (r := _reading(line, chunks[: k + 1], pattern))]
    if len(readings) != 1 or not _END_OK.match(line, readings[0].end):
        return None
    return readings[0]


def _is_combined(line: str, labels: list[_Label], i: int) -> bool:
    """True for "Acct/MRN"-style labels: the number may be either, so it is neither."""
    neighbours = []
    if i > 0:
        neighbours.append((labels[i - 1], labels[i - 1].end(), labels[i].start()))
    if i + 1 < len(labels):
        neighbours.append((labels[i + 1], labels[i].end(), labels[i + 1].start()))
    return any(m.lastgroup == "other" and _COMBINED.fullmatch(line, a, b) for m, a, b in neighbours)


def _mrn_for_label(lines: list[_Line], index: int, label: _Label, p: _Patterns) -> tuple[_Number, int, float] | None:
    """The number the label points at, its page offset and the confidence factor of where."""
    line = lines[index]
    number = _read_number(line.text, _MRN_SEP.match(line.text, label.end()).end(), p.mrn_value)
    if number:
        return number, line.offset + number.start, 1.0
    span = _is_header(line.text, label)
    cell = _cell_below(lines, index, span) if span else None
    if not cell:
        return None
    text, offset = cell
    number = _read_number(text, 0, p.mrn_value)
    if not number or text[number.end :].strip(".,;:)]"):
        return None
    return number, offset, _BELOW_FACTOR


def find_mrn_candidates(page_no: int, text: str, settings: ExtractionSettings) -> list[MrnCandidate]:
    """Every label-anchored MRN on the page, one per occurrence, in reading order."""
    p = _patterns(settings)
    lines = _lines(text)
    found: dict[int, MrnCandidate] = {}
    for index, line in enumerate(lines):
        labels = p.labels(line.text, p.mrn_or_other, "mrn")
        for i, label in enumerate(labels):
            if label.lastgroup != "mrn" or _qualified(line.text, label.start(), _OTHER_RECORD):
                continue
            if _is_combined(line.text, labels, i) or not (hit := _mrn_for_label(lines, index, label, p)):
                continue
            number, offset, factor = hit
            found.setdefault(
                offset,
                MrnCandidate(
                    value=number.value,
                    raw=text[offset : offset + len(number.raw)],  # as printed, no-break spaces and all
                    label=text[line.offset + label.start() : line.offset + label.end()],
                    page_no=page_no,
                    offset=offset,
                    confidence=round(factor * (_CORRECTED_FACTOR if number.corrected else 1.0), 3),
                    corrected=number.corrected,
                ),
            )
    return sorted(found.values(), key=lambda c: c.offset)


_NUMBER_START = re.compile(r"(?<![\w/.,:-])\d")  # not the middle of a date, a decimal or a code


def find_unlabelled_mrns(text: str, settings: ExtractionSettings) -> list[str]:
    """Distinct numbers of the MRN's shape anywhere on the page, labelled or not.

    Only evidence: decide() files on one only when the patient index gives it to the
    patient whose name and date of birth the document shows.
    """
    pattern = _patterns(settings).mrn_value
    found: dict[str, None] = {}
    for line in _lines(text):
        for m in _NUMBER_START.finditer(line.text):
            number = _read_number(line.text, m.start(), pattern)
            if number is not None:
                found.setdefault(number.value)
    return list(found)


# ---------------------------------------------------------------- names

_NAME_TOKEN = re.compile(r"[^\W\d_](?:(?:[^\W\d_]|['-])*[^\W\d_])?")  # letters of any script
# OCR turns specks into quotes; a right single quote is an apostrophe (O’BRIEN).
_QUOTES = str.maketrans({"\u2018": " ", "\u201c": " ", "\u201d": " ", '"': " ", "\u2019": "'"})
_EDGE_JUNK = " \t,.:'_-\u2013\u2014"
_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx"})
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "v"})
_DOCTOR = frozenset({"dr", "md", "do", "rn", "np", "pa", "pa-c", "phd", "dds", "dpm", "crna", "dmd"})
# Surname particles: "Maria de la Cruz" is DE LA CRUZ, MARIA.
_PARTICLES = frozenset(
    ["van", "von", "de", "del", "della", "der", "da", "di", "la", "le", "du", "st", "ter", "ten", "al", "el", "bin"]
)
_NOT_NAME = frozenset(
    [
        "signature",
        "sign",
        "print",
        "printed",
        "name",
        "patient",
        "account",
        "unknown",
        "none",
        "na",
        "date",
        "first",
        "last",
        "middle",
        "physician",
        "doctor",
        "provider",
        "of",
        "or",
        "the",
        "and",
        "for",
        "to",
        "is",
        "was",
        "who",
        "with",
        "see",
        "above",
        "below",
        "attached",
        "label",
        "sticker",
        "here",
        "please",
        "required",
        "information",
        "male",
        "female",
        "test",
        "sample",
        "copy",
        "confidential",
        "page",
        "record",
        "medical",
        "number",
        "legal",
        "guardian",
        "relationship",
        "self",
        "same",
    ]
)


def _tokens(part: str) -> list[str] | None:
    """The name words of ``part`` without honorifics and suffixes; None if any is not a name."""
    words = [w.rstrip(".") for w in part.split()]
    if not all(_NAME_TOKEN.fullmatch(w) for w in words):
        return None
    if {w.lower() for w in words} & (_DOCTOR | _NOT_NAME):
        return None
    return [w for w in words if w.lower() not in _SUFFIXES and w.lower() not in _HONORIFICS]


def _last_comma_first(value: str) -> tuple[list[str], list[str]] | None:
    last_part, given_part = value.split(",")
    given_words = [w for w in given_part.split() if w.rstrip(".").lower() not in _HONORIFICS]
    if {w.rstrip(".").lower() for w in given_words} & _DOCTOR:
        return None
    # Only the first given name is kept, so OCR specks after it ("DANIEL K a") do not matter.
    last, given = _tokens(last_part), _tokens(" ".join(given_words[:1]))
    if not last or not given or len(last) > 3:
        return None
    return last, given


def _first_last(value: str) -> tuple[list[str], list[str]] | None:
    # A period after a whole word ends a name ("Timothy Young. MRE") or is a misread comma
    # ("MARTIN. LISA"); either way the words around it are not one name.
    for word in value.split()[:-1]:
        bare = word.rstrip(".").lower()
        if word.endswith(".") and len(bare) > 1 and bare not in _HONORIFICS | _SUFFIXES | _PARTICLES:
            return None
    words = _tokens(value)
    if not words or not 2 <= len(words) <= 4:
        return None
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in _PARTICLES:
        start -= 1
    if start > 2:  # more than one middle name: a sentence, not a name
        return None
    return words[start:], words[:1]


def _normalise_name(value: str) -> str | None:
    """'LAST, FIRST' in capitals from 'Last, First M', 'First M. Last' or 'FIRST LAST'."""
    value = value.translate(_QUOTES).strip(_EDGE_JUNK)
    commas = value.count(",")
    parts = _last_comma_first(value) if commas == 1 else _first_last(value) if commas == 0 else None
    if not parts:
        return None
    last, given = parts
    if len(given[0]) < 2 or any(len(w) < 2 for w in last):
        return None
    # Printed names are capitalised; an all-lowercase word is an OCR misread ("GREEN, ane").
    if any(w.islower() and w not in _PARTICLES for w in (*last, *given)):
        return None
    return f"{' '.join(last)}, {given[0]}".upper()


_NAME_SEP = re.compile(r"[ \t]*[:;-]?[ \t]*")
_STRICT_NAME_SEP = re.compile(r"[ \t]*[:;-][ \t]*")


def _name_after(line: str, label: _Label, p: _Patterns) -> str | None:
    # A one-word label ("Patient", "Name") needs its colon: "Patient Account" is not a name.
    one_word = not any(c.isspace() for c in label.group())
    m = (_STRICT_NAME_SEP if one_word else _NAME_SEP).match(line, label.end())
    if not m:
        return None
    stop = p.name_stop.search(line, m.end())
    end = stop.start() if stop else len(line)
    # A garbled label ends the name as a clean one does ("Ann Lee  Med Ree No.").
    end = min([end, *(h.start() for h in p.fuzzy_labels(line) if h.start() >= m.end())])
    return _normalise_name(line[m.end() : end])


def _name_below(lines: list[_Line], index: int, label: _Label, p: _Patterns) -> str | None:
    span = _is_header(lines[index].text, label)
    cell = _cell_below(lines, index, span) if span else None
    # The cell below a header may be the next header ("Med Rec No."), not a value.
    if not cell or p.name_stop.search(cell[0]):
        return None
    return _normalise_name(cell[0])


def find_name(text: str, settings: ExtractionSettings) -> str | None:
    """The patient's name as 'LAST, FIRST'; None if absent or if the page names two people."""
    p = _patterns(settings)
    lines = _lines(text)
    names = set()
    for index, line in enumerate(lines):
        for label in p.labels(line.text, p.name, "name"):
            if _qualified(line.text, label.start(), _NOT_THIS_NAME):
                continue
            name = _name_after(line.text, label, p) or _name_below(lines, index, label, p)
            if name:
                names.add(name)
    return names.pop() if len(names) == 1 else None


# ---------------------------------------------------------------- DOB and document date


def _date_for_label(lines: list[_Line], index: int, label: _Label, order: str) -> str | None:
    text = lines[index].text
    m = _DATE.match(text, _DATE_SEP.match(text, label.end()).end())
    if m:
        return _iso(m, order)
    span = _is_header(text, label)
    cell = _cell_below(lines, index, span) if span else None
    return parse_date(cell[0], order) if cell else None


def _labelled_dates(
    text: str, labels: Callable[[str], Sequence[_Label]], order: str, skip: Callable[[str, _Label], bool]
) -> list[tuple[_Label, str | None]]:
    """Every label not skipped, with the date it holds (None when unreadable)."""
    lines = _lines(text)
    return [
        (label, _date_for_label(lines, index, label, order))
        for index, line in enumerate(lines)
        for label in labels(line.text)
        if not skip(line.text, label)
    ]


def _dob_labels(p: _Patterns) -> Callable[[str], list[_Label]]:
    return lambda line: p.labels(line, p.dob, "dob")


def _not_this_date(line: str, m: _Label) -> bool:
    return _qualified(line, m.start(), _NOT_THIS_DATE)


def find_dob(text: str, settings: ExtractionSettings) -> str | None:
    """The labelled date of birth; None if absent, in the future, or ambiguous."""
    found = _labelled_dates(text, _dob_labels(_patterns(settings)), settings.date_order, _not_this_date)
    dobs = {iso for _, iso in found if iso and iso <= date.today().isoformat()}
    return dobs.pop() if len(dobs) == 1 else None


def find_doc_date(text: str, settings: ExtractionSettings) -> str | None:
    """The date under the highest-priority doc-date label (list order) present on the page.

    When that label's date is unreadable the answer is None, not a lesser label's date;
    a date inside or equal to a DOB label's date never counts.
    """
    p = _patterns(settings)

    def skip(line: str, m: _Label) -> bool:
        births = [b.span() for b in p.labels(line, p.dob, "dob")]
        return any(b0 < m.end() and m.start() < b1 for b0, b1 in births) or _not_this_date(line, m)

    found = _labelled_dates(text, p.doc_date.finditer, settings.date_order, skip)
    if not found:
        return None
    births = {iso for _, iso in _labelled_dates(text, _dob_labels(p), settings.date_order, lambda *_: False)}
    top = min(int(label.lastgroup[1:]) for label, _ in found)
    dates = [iso for label, iso in found if int(label.lastgroup[1:]) == top and iso and iso not in births]
    return dates[0] if dates else None


# ---------------------------------------------------------------- forms, by position

# A date in boxes: "05 | 27 | 1953", "05   27   53".
_BOXED_DATE = re.compile(r"\s*(\d{1,2})\s*[|/.\- ]\s*(\d{1,2})\s*[|/.\- ]\s*(\d{4}|\d{2})\b")


_TRAILING_INITIAL = re.compile(r",\s*([A-Za-z])\.?\s*$")


def _boxed_date(value: str, order: str) -> str | None:
    m = _BOXED_DATE.match(value)
    return parse_date(value, order) or (parse_date(f"{m[1]}/{m[2]}/{m[3]}", order) if m else None)


def _one(found: set[str]) -> str | None:
    return found.pop() if len(found) == 1 else None


def layout_identifiers(words: Sequence[Word], settings: ExtractionSettings) -> tuple[str | None, str | None]:
    """Name and DOB read from labelled boxes by position: the value under a label that has
    nothing but format hints beside it ("2. PATIENT'S NAME (Last Name, First Name)").

    Labels of another person (the insured, the employer) are skipped as find_name skips
    them; (None, None) where no such box holds a value.
    """
    p = _patterns(settings)
    lines = layout.lines_of(words)
    names: set[str] = set()
    dobs: set[str] = set()
    for index, line in enumerate(lines):
        text = line.text
        for label in p.labels(text, p.name, "name"):
            if _qualified(text, label.start(), _NOT_THIS_NAME) or not layout.rest_is_hint(text[label.end() :]):
                continue
            value = layout.value_below(lines, index)
            # Forms print "LAST, FIRST, M": the middle initial after a second comma.
            value = value and _TRAILING_INITIAL.sub(r" \1", value)
            if value and not p.name_stop.search(value) and (name := _normalise_name(value)):
                names.add(name)
        for label in p.labels(text, p.dob, "dob"):
            if _not_this_date(text, label) or not layout.rest_is_hint(text[label.end() :]):
                continue
            value = layout.value_below(lines, index)
            if value and (iso := _boxed_date(value, settings.date_order)) and iso <= date.today().isoformat():
                dobs.add(iso)
    return _one(names), _one(dobs)


# ---------------------------------------------------------------- whole document


def _first_page_with(
    find: Callable[[str, ExtractionSettings], str | None],
    pages: Sequence[tuple[int, str]],
    settings: ExtractionSettings,
) -> str | None:
    return next((v for _, text in pages if (v := find(text, settings))), None)


def extract_identifiers(pages: Sequence[tuple[int, str]], settings: ExtractionSettings) -> Identifiers:
    """MRN candidates from every page; name, DOB and doc date from the first page having each.

    A document dated on the birth date is more likely a misread label than a newborn's
    record, and one dated before the birth has one of the two dates wrong: both are dropped.
    """
    dob = _first_page_with(find_dob, pages, settings)
    doc_date = _first_page_with(find_doc_date, pages, settings)
    if dob and doc_date and doc_date <= dob:
        dob, doc_date = (dob, None) if doc_date == dob else (None, None)
    candidates = [c for page_no, text in pages for c in find_mrn_candidates(page_no, text, settings)]
    labelled = {c.value for c in candidates}
    unlabelled = {n: None for _, text in pages for n in find_unlabelled_mrns(text, settings) if n not in labelled}
    return Identifiers(
        mrn_candidates=candidates,
        name=_first_page_with(find_name, pages, settings),
        dob=dob,
        doc_date=doc_date,
        unlabelled_mrns=list(unlabelled),
    )
