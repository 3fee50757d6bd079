"""The master patient index: who each MRN belongs to, and checks of a document against it.

The roster only ever narrows things down. A read MRN that is absent, a name or DOB that
disagrees, or a name and DOB shared by two patients must all end in review: nothing here
picks the likeliest patient.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from rapidfuzz import fuzz

from pipeline.core.config import RosterSettings
from pipeline.core.errors import MedarchiveError

# What OCR reads one printed character as, from the list. Digit<->digit slips
# (3/8, 1/7, 5/6, 0/8) are left out on purpose: in a dense roster nearly every MRN has a
# digit neighbour, so they would "find" a patient for most unknown numbers.
CONFUSION_GROUPS = ("0OD", "1Il", "5S", "8B", "2Z", "6G")
_CONFUSABLE = {ch: group.replace(ch, "") for group in CONFUSION_GROUPS for ch in group}

# Extract.py compacts "0048 2913" and "0048-2913" the same way before matching.
_MRN_SPACING = str.maketrans("", "", " -\t\xa0")
# Digits are never part of a name, so reading them back as letters cannot confuse two names.
_DIGIT_AS_LETTER = str.maketrans("012568|", "OIZSGBI")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NOT_ASCII_LETTER = re.compile(r"[^A-Z]")
_SUFFIXES = frozenset({"JR", "SR", "II", "III", "IV"})
_LAST_NAME_RATIO = 85.0


class RosterError(MedarchiveError):
    """The roster file cannot be used (the message names the file, line and column)."""


@dataclass(frozen=True)
class RosterPatient:
    mrn: str
    last: str
    first: str
    dob: str  # ISO 8601

    @property
    def name(self) -> str:
        return f"{self.last}, {self.first}".upper() if self.first else self.last.upper()


def _compact_mrn(value: str) -> str:
    """The MRN without the spaces and hyphens a printout or an export may add."""
    return value.strip().translate(_MRN_SPACING)


def _key(text: str) -> str:
    """Letters only, capitals, no accents: 'O'Brien', "O BRIEN" and 'OBRIEN' are one key."""
    if text.isascii():
        return _NOT_ASCII_LETTER.sub("", text.upper())
    return "".join(c for c in unicodedata.normalize("NFKD", text).upper() if c.isalpha())


@lru_cache(maxsize=65536)  # surnames repeat across a roster; this is most of load()'s time
def _last_key(last: str) -> str:
    return "".join(k for w in last.split() if (k := _key(w)) not in _SUFFIXES)


@lru_cache(maxsize=65536)
def _first_key(first: str) -> str:
    # Only the first given name: documents print "JOHN A" or "John", the roster "John Albert".
    words = first.split()
    return _key(words[0]) if words else ""


def _split_name(name: str) -> tuple[str, str] | None:
    """(last key, first key) of 'LAST, FIRST M' or 'First M. Last'; None if not both."""
    if "," in name:
        last, given = name.split(",", 1)
    else:
        words = [w for w in name.split() if _key(w) not in _SUFFIXES]
        if len(words) < 2:
            return None
        last, given = words[-1], words[0]
    parts = _last_key(last), _first_key(given)
    return parts if all(parts) else None


class Roster:
    """Patients by MRN, and by exact name and DOB."""

    def __init__(self, patients: list[RosterPatient]) -> None:
        """``patients`` have distinct MRNs, as load() makes sure."""
        self._by_mrn = {p.mrn: p for p in patients}
        self._by_name_dob: dict[tuple[str, str, str], list[RosterPatient]] = {}
        for p in self._by_mrn.values():
            key = (_last_key(p.last), _first_key(p.first), p.dob)
            self._by_name_dob.setdefault(key, []).append(p)

    def __len__(self) -> int:
        return len(self._by_mrn)

    def __iter__(self) -> Iterator[RosterPatient]:
        return iter(self._by_mrn.values())

    @classmethod
    def load(cls, path: Path, settings: RosterSettings) -> Roster:
        """Read the registration export; raise RosterError at the first bad line."""
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                return cls(list(_read_rows(path, csv.reader(f), settings)))
        except OSError as exc:
            raise RosterError(f"cannot read roster {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise RosterError(f"roster {path} is not UTF-8 text (byte {exc.start}); export it as UTF-8 CSV") from None
        except csv.Error as exc:
            raise RosterError(f"roster {path} is not valid CSV: {exc}") from None

    def get(self, mrn: str) -> RosterPatient | None:
        return self._by_mrn.get(_compact_mrn(mrn))

    def confusable(self, mrn: str) -> list[RosterPatient]:
        """Roster patients whose MRN is one OCR confusion away from ``mrn``, never ``mrn`` itself.

        One confusion is one character swapped within a CONFUSION_GROUPS group. Pass the
        raw read (MrnCandidate.raw): extract.py has already turned every letter of the
        value into its digit, so on an all-digit roster only a raw read (or an
        alphanumeric MRN scheme) can have such a neighbour. Matches are suggestions for
        a clerk; a single one is no licence to file.
        """
        read = _compact_mrn(mrn)
        found = {
            near
            for i, ch in enumerate(read)
            for alt in _CONFUSABLE.get(ch, "")
            if (near := read[:i] + alt + read[i + 1 :]) in self._by_mrn
        }
        return [self._by_mrn[m] for m in sorted(found)]

    def by_name_dob(self, name: str, dob: str) -> list[RosterPatient]:
        """Every patient with this last name, first given name and ISO DOB, exactly.

        Case, accents, spaces, hyphens and apostrophes are ignored, OCR noise is not:
        this may decide where a document without an MRN is filed.
        """
        parts = _split_name(name)
        return list(self._by_name_dob.get((*parts, dob), [])) if parts else []


def _columns(path: Path, header: list[str], settings: RosterSettings) -> tuple[int, int, int, int]:
    index: dict[str, int] = {}
    for i, title in enumerate(header):
        key = title.strip().casefold()
        if key in index:
            raise RosterError(f"{path}: line 1: column {title.strip()!r} appears twice")
        index[key] = i
    wanted = settings.columns
    names = (wanted.mrn, wanted.last_name, wanted.first_name, wanted.dob)
    missing = [n for n in names if n.strip().casefold() not in index]
    if missing:
        found = ", ".join(repr(h.strip()) for h in header)
        raise RosterError(
            f"{path}: line 1: missing column {', '.join(map(repr, missing))} (found: {found}); "
            "set roster.columns in the config to the export's column names"
        )
    mrn, last, first, dob = (index[n.strip().casefold()] for n in names)
    return mrn, last, first, dob


def _read_rows(path: Path, reader: Iterator[list[str]], settings: RosterSettings) -> Iterator[RosterPatient]:
    header = next(reader, None)
    if not header or not "".join(header).strip():
        raise RosterError(f"{path}: line 1: expected a header line naming the columns")
    mrn_i, last_i, first_i, dob_i = _columns(path, header, settings)
    cols = settings.columns
    seen: dict[str, tuple[RosterPatient, int]] = {}
    dobs: dict[str, str] = {}  # patients share birthdays; strptime is the slow part
    for row in reader:
        line = reader.line_num
        if not "".join(row).strip():
            continue
        if len(row) != len(header):
            # An unquoted comma in a name shifts every later cell into the wrong column.
            raise RosterError(f"{path}: line {line}: {len(row)} fields where the header has {len(header)}")
        mrn, last, raw_dob = _compact_mrn(row[mrn_i]), " ".join(row[last_i].split()), row[dob_i].strip()
        if not (mrn and last and raw_dob):
            column = cols.mrn if not mrn else cols.last_name if not last else cols.dob
            raise RosterError(f"{path}: line {line}: column {column!r} is empty")
        if raw_dob not in dobs:
            dobs[raw_dob] = _parse_dob(path, line, cols.dob, raw_dob, settings.dob_format)
        patient = RosterPatient(mrn, last.upper(), " ".join(row[first_i].split()).upper(), dobs[raw_dob])
        if mrn in seen:
            other, other_line = seen[mrn]
            if other != patient:
                raise RosterError(
                    f"{path}: line {line}: MRN {mrn} is {patient.name} born {patient.dob}, "
                    f"but line {other_line} gives it to {other.name} born {other.dob}"
                )
            continue
        seen[mrn] = patient, line
        yield patient


def _parse_dob(path: Path, line: int, column: str, value: str, fmt: str) -> str:
    try:
        if fmt == "%Y-%m-%d" and _ISO_DATE.fullmatch(value):
            return date.fromisoformat(value).isoformat()  # strptime's answer, far faster
        return datetime.strptime(value, fmt).date().isoformat()
    except ValueError:
        raise RosterError(
            f"{path}: line {line}: column {column!r}: {value!r} is not a date in the format {fmt!r}"
        ) from None


def name_agrees(doc_name: str | None, patient: RosterPatient) -> bool | None:
    """Whether the document's name is this patient's; None when it names no one.

    The last name tolerates OCR noise (read-as-digit letters, I read as l, a dropped
    letter: ratio >= 85). The first given name must be exactly the patient's once digits
    are read back as letters: twins are often FRANCIS and FRANCES, DANIEL and DANIELA,
    with the same last name and DOB, and a fuzzy first name would take one for the other.
    """
    parts = _split_name(doc_name.translate(_DIGIT_AS_LETTER)) if doc_name else None
    if parts is None:
        return None
    last, first = parts
    ratio = fuzz.ratio(last.replace("L", "I"), _last_key(patient.last).replace("L", "I"))
    return ratio >= _LAST_NAME_RATIO and first == _first_key(patient.first)


def dob_agrees(doc_dob: str | None, patient: RosterPatient) -> bool | None:
    """Exact ISO comparison: a date misread by OCR is a different date."""
    return None if doc_dob is None else doc_dob == patient.dob


Agreement = Literal["exact", "close", "differs"]
# An OCR slip, not another person: both name parts this near once digits are read back as letters.
_CLOSE_NAME_RATIO = 70.0


def _name_parts(name: str | None) -> tuple[str, str] | None:
    parts = _split_name(name.translate(_DIGIT_AS_LETTER)) if name else None
    return None if parts is None else (parts[0].replace("L", "I"), parts[1].replace("L", "I"))


def name_agreement(doc_name: str | None, known_name: str) -> Agreement | None:
    """How the document's name agrees with a known 'LAST, FIRST' name; None when it names no one.

    "exact" is name_agrees' sense (the last name may carry OCR noise, the first given name
    not); "close" is a garbled name both of whose parts are still near the known one's.
    """
    doc, known = _name_parts(doc_name), _name_parts(known_name)
    if doc is None or known is None:
        return None
    last_ratio = fuzz.ratio(doc[0], known[0])
    if last_ratio >= _LAST_NAME_RATIO and doc[1] == known[1]:
        return "exact"
    return "close" if min(last_ratio, fuzz.ratio(doc[1], known[1])) >= _CLOSE_NAME_RATIO else "differs"


def dob_agreement(doc_dob: str | None, known_dob: str) -> Agreement | None:
    """ "close" is one digit misread: the same ISO date but for one digit."""
    if doc_dob is None:
        return None
    if doc_dob == known_dob:
        return "exact"
    slips = [(a, b) for a, b in zip(doc_dob, known_dob, strict=False) if a != b]
    one_slip = len(doc_dob) == len(known_dob) and len(slips) == 1 and all(c.isdigit() for c in slips[0])
    return "close" if one_slip else "differs"


def luhn_valid(mrn: str) -> bool:
    """True when the last digit is the Luhn check digit of the others."""
    if not re.fullmatch(r"[0-9]{2,}", mrn):
        return False
    total = 0
    for i, ch in enumerate(reversed(mrn)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0
