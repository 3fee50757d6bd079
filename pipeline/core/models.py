"""Plain records that cross stages. Workers return them; the writer consumes them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

UNCLASSIFIED = "unclassified"
# What became of one input. "skipped": nothing to archive (a file of separator sheets only).
OUTCOME_STATUSES = ("filed", "review", "failed", "duplicate", "skipped")
PageSource = Literal["ocr", "text-layer", "none"]
Status = Literal["filed", "review"]


@dataclass(frozen=True)
class BarcodeRead:
    value: str
    format: str  # zxing-cpp's name: "Code128", "Code39", "DataMatrix", "QRCode"
    left: int  # top-left of the symbol's bounding box, in page pixels
    top: int
    # Code 39 only: the last character is a valid optional check character. It may be
    # one, or data that happens to fit ("999990002" is 99999000 checked, or itself).
    check_char: bool = False

    @property
    def readings(self) -> tuple[str, ...]:
        """What the symbol may carry: the value, and without its check character if it has one."""
        value = self.value.strip()
        return (value, value[:-1]) if self.check_char else (value,)


@dataclass(frozen=True)
class Word:
    """One OCR word with tesseract's confidence (0-100) and its box in pixels.

    ``char_confs`` holds tesseract's confidence (0-100) of each character, for words
    with a digit in them only (MRNs and dates are where one misread character misfiles);
    empty when unknown.
    """

    text: str
    conf: float
    left: int = 0
    top: int = 0
    width: int = 0
    height: int = 0
    char_confs: tuple[float, ...] = ()


@dataclass
class PageText:
    """The text of one input page, however it was obtained.

    ``layer_pdf`` is tesseract's text-only PDF page for OCRed pages; it is grafted
    under the original page and never stored in the sidecar.
    """

    page_no: int
    text: str
    source: PageSource
    words: list[Word] = field(default_factory=list)
    ocr_seconds: float = 0.0
    rotation: int = 0
    mean_conf: float | None = None
    error: str | None = None
    barcodes: tuple[BarcodeRead, ...] = ()
    layer_pdf: bytes | None = field(default=None, repr=False)
    # How a poorly read page was read again (why, which reading won, its cost); None when it was not.
    second_look: dict[str, object] | None = None

    def to_json(self) -> dict[str, Any]:
        extra = {"second_look": self.second_look} if self.second_look else {}
        return {
            "page": self.page_no,
            "source": self.source,
            "text": self.text,
            "ocr_seconds": round(self.ocr_seconds, 3),
            "rotation": self.rotation,
            "mean_conf": None if self.mean_conf is None else round(self.mean_conf, 1),
            "error": self.error,
            "barcodes": [{"value": b.value, "format": b.format} for b in self.barcodes],
            **extra,
        }


@dataclass(frozen=True)
class MrnCandidate:
    """A medical record number found in the document, with where and how it was read.

    ``confidence`` is 0..1. ``corrected`` is true when OCR look-alikes (O for 0...)
    were mapped to digits to obtain ``value``; ``raw`` keeps what was on the page.
    """

    value: str
    raw: str
    label: str
    page_no: int
    offset: int
    confidence: float = 1.0
    source: Literal["text", "barcode"] = "text"
    corrected: bool = False


@dataclass
class Identifiers:
    """Who the document is about and when it was written (dates ISO 8601)."""

    mrn_candidates: list[MrnCandidate] = field(default_factory=list)
    name: str | None = None
    dob: str | None = None
    doc_date: str | None = None
    # Numbers of the MRN's shape printed without an MRN label: never filed on alone, only
    # when the patient index gives one to the patient the name and DOB name.
    unlabelled_mrns: list[str] = field(default_factory=list)

    @property
    def distinct_mrns(self) -> list[str]:
        return sorted({c.value for c in self.mrn_candidates})


@dataclass(frozen=True)
class FiledPatient:
    """What the documents already filed under one MRN say of its patient (the archive's history)."""

    mrn: str
    names: tuple[str, ...] = ()
    dobs: tuple[str, ...] = ()
    documents: int = 0


@dataclass(frozen=True)
class Classification:
    doc_type: str
    confidence: float
    cues: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Where a document goes: filed under ``mrn``, or to review because of ``reason``."""

    status: Status
    mrn: str | None = None
    reason: str | None = None
    suggested_mrn: str | None = None
    corrections: tuple[str, ...] = ()
    # What corroborated the MRN of a filing ("barcode", "second_page", "patient_index:dob"...).
    corroboration: tuple[str, ...] = ()
    # Other MRNs the read may be (a doubtful or confusable digit), for the clerk.
    candidates: tuple[str, ...] = ()


@dataclass
class Document:
    """One logical document cut from one input file."""

    doc_id: str
    source_file: str
    source_pages: list[int]
    sha256: str
    pages: list[PageText]
    identifiers: Identifiers
    classification: Classification
    decision: Decision
    source_label: str | None = None
    box: str | None = None  # the off-site box of the paper original (pipeline/paper)
    box_how: str | None = None  # "label sheet", "drop folder", "label unreadable"

    def identifiers_json(self) -> dict[str, Any]:
        return asdict(self.identifiers)
