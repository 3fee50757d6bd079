"""Where one scanned batch becomes several documents.

Two documents merged into one can put one patient's pages in another's record, so every
rule here errs towards splitting: a page that was cut off wrongly costs a clerk a minute
in review, a page glued to the wrong patient is a misfile.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from pipeline.core.config import (
    BarcodeSettings,
    BoxSettings,
    ClassificationSettings,
    ExtractionSettings,
)
from pipeline.core.models import BarcodeRead
from pipeline.identify.extract import find_mrn_candidates
from pipeline.pages.barcodes import is_separator, mrn_values

_TOP_LINES = 8  # letterhead (name, address, phone) then the title
_FOOTER_LINES = 3
_MAX_HEADING_WORDS = 8
_TITLE_RATIO = 90.0
_SHORT_TITLE = 6  # shorter normalised titles ("rx", "ub 04") must match exactly
_WORD = re.compile(r"[a-z0-9]+")
_DIGIT_AS_LETTER = str.maketrans("0123456789", "oizeasgtbg")  # "0PERATIVE", "Operat1ve"
# "Page 2 of 3": a later page of a document, whose running header may repeat its title.
_LATER_PAGE = re.compile(r"\bpage\s+0*([2-9]|[1-9]\d+)\s*(?:of|/)\s*\d+\b", re.IGNORECASE)


@dataclass(frozen=True)
class PageSignals:
    page_no: int
    separator: bool
    mrns: tuple[str, ...]
    title: str | None  # the doc_type whose title heads the page, if any
    continued: bool = False  # the page numbers itself as a later page ("Page 2 of 3")
    box_sheet: bool = False  # a box label sheet (pipeline/paper): never a page of a document
    box: str | None = None  # what its barcode read; None on a label sheet whose barcode did not read


def split_pages(pages: Sequence[PageSignals], *, separator_sheets: bool, automatic: bool) -> list[list[int]]:
    """The page numbers of each document, in order; separator and box label pages belong to none.

    With ``automatic``, a page also starts a new document when it carries an MRN the
    current document has not shown (even when it has shown none: those pages may be
    someone else's), or a title at its top, unless that is the running header of a
    continued page repeating the current document's own title.
    """
    documents: list[list[int]] = []
    current: list[int] = []
    mrns: set[str] = set()
    titles: set[str] = set()
    for page in pages:
        if page.box_sheet or (separator_sheets and page.separator):
            documents.append(current)
            current, mrns, titles = [], set(), set()
            continue
        running_header = page.continued and page.title in titles
        new_title = page.title is not None and not running_header
        if automatic and current and (new_title or not mrns.issuperset(page.mrns)):
            documents.append(current)
            current, mrns, titles = [], set(), set()
        current.append(page.page_no)
        mrns.update(page.mrns)
        titles.update([page.title] if page.title else [])
    documents.append(current)
    return [doc for doc in documents if doc]


def boxes_of(groups: Sequence[Sequence[int]], pages: Sequence[PageSignals]) -> list[tuple[str | None, str | None]]:
    """Each document's (box, how it is known): from the last box label sheet before its first page.

    A sheet whose barcode did not read makes the box of what follows unknown ("label unreadable")
    rather than letting the box of an earlier sheet run on.
    """
    sheets = [(p.page_no, p.box) for p in pages if p.box_sheet]
    found = []
    for group in groups:
        before = [box for page_no, box in sheets if page_no < group[0]]
        if not before:
            found.append((None, None))
        else:
            found.append((before[-1], "label sheet" if before[-1] else "label unreadable"))
    return found


def box_label(text: str, reads: Sequence[BarcodeRead], boxes: BoxSettings) -> tuple[bool, str | None]:
    """Whether a page is a box label sheet, and the box its barcode names (None if none read)."""
    values = [r for read in reads for r in read.readings if boxes.is_box(r)]
    if values:
        return True, values[0]
    head = " ".join(" ".join(_normalise(line)) for line in text.splitlines()[:_TOP_LINES] if line.strip())
    title = " ".join(_normalise(boxes.label_title))
    return bool(title) and fuzz.partial_ratio(title, head) >= _TITLE_RATIO, None


def page_signals(
    page_no: int,
    text: str,
    reads: Sequence[BarcodeRead],
    *,
    extraction: ExtractionSettings,
    classification: ClassificationSettings,
    barcodes: BarcodeSettings,
    boxes: BoxSettings | None = None,
) -> PageSignals:
    """What one page says about where documents begin: separator, box label, MRNs (text and barcode), title."""
    reads = reads if barcodes.enabled else ()
    box_sheet, box = box_label(text, reads, boxes) if boxes is not None else (False, None)
    mrns = [c.value for c in find_mrn_candidates(page_no, text, extraction)]
    mrns += mrn_values(reads, extraction.mrn_pattern)
    lines = [line for line in text.splitlines() if line.strip()]
    # Page numbers live in running headers and footers; "see page 2 of 3" in a body is no claim.
    continued = any(_LATER_PAGE.search(line) for line in lines[:_TOP_LINES] + lines[-_FOOTER_LINES:])
    return PageSignals(
        page_no,
        is_separator(reads, barcodes.separator_value, barcodes.patch_bars_alone),
        tuple(dict.fromkeys(mrns)),
        top_title(text, classification),
        continued,
        box_sheet,
        box,
    )


def _normalise(line: str) -> list[str]:
    words = _WORD.findall(line.lower().replace("&", " and "))
    return [w if w.isdigit() else w.translate(_DIGIT_AS_LETTER) for w in words]


@dataclass(frozen=True)
class _Titles:
    owner: dict[str, str | None]  # normalised title -> doc type; None when two types share it
    fuzzy: tuple[str, ...]  # the titles long enough to match with OCR noise


@lru_cache(maxsize=8)
def _titles(rules: tuple[tuple[str, tuple[str, ...]], ...]) -> _Titles:
    owner: dict[str, str | None] = {}
    for doc_type, titles in rules:
        for title in titles:
            key = " ".join(_normalise(title))
            if key:
                owner[key] = doc_type if owner.get(key, doc_type) == doc_type else None
    return _Titles(owner, tuple(t for t in owner if len(t) >= _SHORT_TITLE))


def _heading(words: list[str], titles: _Titles) -> str | None:
    """The doc type when the words are a title, alone or followed by numbers (a date)."""
    for n in range(len(words), 0, -1):
        if not all(w.isdigit() for w in words[n:]):
            continue
        head = " ".join(words[:n])
        if head in titles.owner:
            return titles.owner[head]
        hit = process.extractOne(head, titles.fuzzy, scorer=fuzz.ratio, score_cutoff=_TITLE_RATIO)
        if hit:
            return titles.owner[hit[0]]
    return None


def top_title(text: str, settings: ClassificationSettings) -> str | None:
    """The doc type whose title is a heading among the page's first lines, if any.

    classify.py scores titles for the whole document; this asks only whether a page
    opens with one, which is what marks the first page of a new document.
    """
    titles = _titles(tuple((name, tuple(rule.titles)) for name, rule in settings.types.items()))
    lines = [line for line in text.splitlines() if line.strip()][:_TOP_LINES]
    for line in lines:
        if line.rstrip().endswith(":"):
            continue  # "Consultations:" labels a section of the body, it does not head a document
        words = _normalise(line)
        if 0 < len(words) <= _MAX_HEADING_WORDS and (doc_type := _heading(words, titles)):
            return doc_type
    return None
