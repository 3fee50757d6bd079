"""Splitting a scanned batch into documents: separator sheets, patient changes, titles."""

from __future__ import annotations

import random

import pytest

from pipeline.core.config import (
    BarcodeSettings,
    ClassificationSettings,
    ExtractionSettings,
)
from pipeline.identify.split import PageSignals, page_signals, split_pages, top_title
from pipeline.pages.barcodes import BarcodeRead, read_barcodes
from pipeline.samples import labels
from pipeline.samples import scans as samples

SEP = "separator"
FORMATS = ["Code128", "Code39"]


def signals(*pages: object) -> list[PageSignals]:
    """Pages from shorthands: SEP, an MRN string, a tuple of MRNs, or a dict of fields."""
    out = []
    for k, page in enumerate(pages, start=1):
        if page == SEP:
            out.append(PageSignals(k, True, (), None))
        elif isinstance(page, dict):
            out.append(PageSignals(k, False, tuple(page.get("mrns", ())), page.get("title")))
        elif isinstance(page, tuple):
            out.append(PageSignals(k, False, page, None))
        else:
            out.append(PageSignals(k, False, (page,) if page else (), None))
    return out


def by_separators(*pages: object) -> list[list[int]]:
    return split_pages(signals(*pages), separator_sheets=True, automatic=False)


def automatically(*pages: object, separator_sheets: bool = False) -> list[list[int]]:
    return split_pages(signals(*pages), separator_sheets=separator_sheets, automatic=True)


# ---------------------------------------------------------------- separator sheets


@pytest.mark.parametrize("count", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batches_of_documents_between_separator_sheets(count, seed):
    rng = random.Random(count * 10 + seed)
    pages: list[PageSignals] = []
    expected = []

    def separators(n: int) -> None:
        for _ in range(n):
            pages.append(PageSignals(len(pages) + 1, True, (), None))

    separators(rng.randint(0, 2))  # a sheet before the first document, or two
    for d in range(count):
        separators(rng.randint(1, 2) if d else 0)
        doc = []
        for _ in range(rng.randint(1, 4)):
            pages.append(PageSignals(len(pages) + 1, False, (), None))
            doc.append(len(pages))
        expected.append(doc)
    separators(rng.randint(0, 2))
    assert split_pages(pages, separator_sheets=True, automatic=False) == expected
    assert split_pages(pages, separator_sheets=True, automatic=True) == expected


def test_separator_sheets_are_dropped_and_end_documents():
    assert by_separators(None, None, SEP, None, SEP, None, None, None) == [[1, 2], [4], [6, 7, 8]]


def test_separators_at_the_ends_and_in_a_row_make_no_empty_documents():
    assert by_separators(SEP, None, None, SEP, SEP, None, SEP) == [[2, 3], [6]]
    assert by_separators(SEP, SEP, None, SEP, SEP, SEP, None, None, SEP, SEP) == [[3], [7, 8]]


def test_only_separators_is_no_document():
    assert by_separators(SEP, SEP) == []
    assert by_separators() == []


def test_without_separator_sheets_a_separator_page_is_an_ordinary_page():
    pages = signals(None, SEP, None)
    assert split_pages(pages, separator_sheets=False, automatic=False) == [[1, 2, 3]]


def test_separators_alone_never_split_on_patients_or_titles():
    assert by_separators("00482913", "00519377", {"title": "lab_result"}) == [[1, 2, 3]]


# ---------------------------------------------------------------- automatic


def test_a_different_mrn_starts_a_new_document():
    assert automatically("00482913", None, "00482913", "00519377", None, "00482913") == [[1, 2, 3], [4, 5], [6]]


def test_pages_without_an_mrn_stay_with_the_document_before():
    assert automatically("00482913", None, None, None) == [[1, 2, 3, 4]]


def test_a_page_with_a_second_patient_starts_a_new_document():
    assert automatically("00482913", ("00482913", "00519377"), None) == [[1], [2, 3]]


def test_an_mrn_after_pages_without_one_starts_a_new_document():
    # Whose the earlier pages are is unknown: they must not be filed under this patient.
    assert automatically(None, None, "00482913", None) == [[1, 2], [3, 4]]


def test_a_title_starts_a_new_document_unless_it_heads_the_first_page():
    pages = (
        {"title": "progress_note", "mrns": ["00482913"]},
        None,
        {"title": "lab_result", "mrns": ["00482913"]},  # same patient, new document
        {"mrns": ["00482913"]},
        {"title": "lab_result"},
    )
    assert automatically(*pages) == [[1, 2], [3, 4], [5]]


def test_automatic_and_separator_sheets_together():
    pages = ("00482913", "00519377", SEP, SEP, None, {"title": "consent_form"}, SEP, "00482913")
    assert automatically(*pages, separator_sheets=True) == [[1], [2], [5], [6], [8]]


def test_automatic_off_keeps_patients_together():
    assert split_pages(signals("00482913", "00519377"), separator_sheets=False, automatic=False) == [[1, 2]]


def test_a_continued_page_repeating_the_documents_title_stays_with_it():
    pages = [
        PageSignals(1, False, (), "discharge_summary"),
        PageSignals(2, False, (), "discharge_summary", continued=True),  # running header
        PageSignals(3, False, (), None, continued=True),
    ]
    assert split_pages(pages, separator_sheets=False, automatic=True) == [[1, 2, 3]]


def test_a_continued_page_with_another_title_starts_a_new_document():
    # A partial document (its first page lost) must not join the document before it.
    pages = [
        PageSignals(1, False, ("00482913",), "discharge_summary"),
        PageSignals(2, False, (), "lab_result", continued=True),
        PageSignals(3, False, (), None),
        PageSignals(4, False, (), "lab_result", continued=True),
    ]
    assert split_pages(pages, separator_sheets=False, automatic=True) == [[1], [2, 3, 4]]


def test_a_continued_page_after_an_untitled_start_is_split_on_its_title():
    pages = [PageSignals(1, False, (), None), PageSignals(2, False, (), "progress_note", continued=True)]
    assert split_pages(pages, separator_sheets=False, automatic=True) == [[1], [2]]


# ---------------------------------------------------------------- titles


@pytest.mark.parametrize(
    ("text", "doc_type"),
    [
        ("DISCHARGE SUMMARY", "discharge_summary"),
        ("Riverside General Hospital\n1200 Oak Street\n\nProgress Note 03/14/2024", "progress_note"),
        ("History & Physical", "history_physical"),
        ("H&P", "history_physical"),
        ("0PERATIVE REP0RT", "operative_report"),  # OCR noise
        ("Rx", "prescription"),
        ("Discharge Date: 03/14/2024", None),
        ("The discharge summary was sent to the primary care physician last week.", None),
        ("Consult", None),
        ("Consultations:", None),  # a section of the body
        ("PRESCRIPTION:", None),
        ("\n".join(["Line of letterhead"] * 8 + ["Laboratory Report"]), None),  # not at the top
        ("", None),
    ],
)
def test_top_title(text, doc_type):
    assert top_title(text, ClassificationSettings()) == doc_type


def test_top_title_uses_the_configured_titles():
    settings = ClassificationSettings(types={"wound_care": {"titles": ["Wound Assessment"]}})
    assert top_title("WOUND ASSESSMENT", settings) == "wound_care"
    assert top_title("DISCHARGE SUMMARY", settings) is None


def test_a_title_two_types_share_decides_nothing():
    settings = ClassificationSettings(types={"a": {"titles": ["Clinic Report"]}, "b": {"titles": ["Clinic Report"]}})
    assert top_title("Clinic Report", settings) is None


# ---------------------------------------------------------------- page signals


def make_signals(page_no: int, text: str, reads: list[BarcodeRead], **barcodes: object) -> PageSignals:
    return page_signals(
        page_no,
        text,
        reads,
        extraction=ExtractionSettings(),
        classification=ClassificationSettings(),
        barcodes=BarcodeSettings(**barcodes),
    )


def test_page_signals_from_text_and_barcodes():
    text = "Riverside General Hospital\nDISCHARGE SUMMARY\nPatient Name: Smith, John    MRN: 00482913\n"
    reads = [BarcodeRead("MRN00519377", "Code128", 10, 10), BarcodeRead("00482913", "QRCode", 10, 400)]
    assert make_signals(3, text, reads) == PageSignals(3, False, ("00482913", "00519377"), "discharge_summary")


def test_page_signals_see_page_numbers_only_in_headers_and_footers():
    later = "DISCHARGE SUMMARY\n\nHospital course was uneventful.\n\nPage 2 of 3"
    assert make_signals(2, later, []) == PageSignals(2, False, (), "discharge_summary", continued=True)
    assert make_signals(1, later.replace("Page 2", "Page 1"), []).continued is False
    assert make_signals(9, later.replace("Page 2", "page 12"), []).continued is True
    body = "\n".join(
        [
            "DISCHARGE SUMMARY",
            *["Hospital course was uneventful."] * 10,
            "Results are on page 2 of 3 of the attached report.",
            *["Stable."] * 5,
        ]
    )
    assert make_signals(1, body, []).continued is False


def test_separator_page_signals_and_disabled_barcodes():
    reads = [BarcodeRead("PATCHT", "Code128", 900, 750), BarcodeRead("00482913", "Code39", 0, 0)]
    assert make_signals(4, "DOCUMENT SEPARATOR", reads) == PageSignals(4, True, ("00482913",), None)
    assert make_signals(4, "DOCUMENT SEPARATOR", reads, separator_value="BATCH").separator is False
    assert make_signals(4, "DOCUMENT SEPARATOR", reads, enabled=False) == PageSignals(4, False, (), None)


def test_patch_bars_alone_separate_only_when_configured():
    from pipeline.pages.barcodes import PATCH_T_FORMAT

    bars = [BarcodeRead("PATCHT", PATCH_T_FORMAT, 0, 0)]
    assert make_signals(2, "PATCH T", bars).separator is False
    assert make_signals(2, "PATCH T", bars, patch_bars_alone=True).separator is True
    assert make_signals(2, "PATCH T", bars, patch_bars_alone=True, enabled=False).separator is False


def test_a_garbled_mrn_label_on_a_page_is_a_patient_signal():
    signal = make_signals(1, "Patient Name: Ann Lee    Med Ree No. 57629388", [])
    assert signal.mrns == ("57629388",)


def test_a_scanned_batch_splits_where_the_separator_sheets_are():
    rng = random.Random(11)
    types = ("lab_result", "consent_form", "referral_letter")
    docs = [samples.make_document(rng, t, samples.make_patient(rng)) for t in types]
    pages: list[tuple[str, object]] = []
    for k, doc in enumerate(docs):
        if k:
            pages.append(("DOCUMENT SEPARATOR", labels.separator_sheet(200)))
        pages += [("\n".join(lines), samples.render_page(list(lines), dpi=200)) for lines in doc.pages]
    found = [
        make_signals(n, text, read_barcodes(labels.scan_like(image, skew_deg=1.0, noise=0.003, seed=n), FORMATS))
        for n, (text, image) in enumerate(pages, start=1)
    ]
    expected, n = [], 0
    for k, doc in enumerate(docs):
        n += 1 if k else 0
        expected.append(list(range(n + 1, n + len(doc.pages) + 1)))
        n += len(doc.pages)
    assert split_pages(found, separator_sheets=True, automatic=False) == expected
    assert sum(p.separator for p in found) == 2


def test_automatic_split_of_generated_documents_for_two_patients():
    rng = random.Random(5)
    first, second = samples.make_patient(rng), samples.make_patient(rng)
    plan = [
        ("discharge_summary", first, 3),
        ("lab_result", first, 1),
        ("progress_note", second, 2),
        ("consent_form", second, 1),
        ("pathology_report", None, 2),
    ]
    # Inline patient blocks: extract.py reads their MRN on the first page too.
    docs = [samples.make_document(rng, t, patient, pages=pages, layout="inline") for t, patient, pages in plan]
    texts = ["\n".join(lines) for doc in docs for lines in doc.pages]
    found = [make_signals(n, text, []) for n, text in enumerate(texts, start=1)]
    expected, n = [], 0
    for doc in docs:
        expected.append(list(range(n + 1, n + len(doc.pages) + 1)))
        n += len(doc.pages)
    assert split_pages(found, separator_sheets=False, automatic=True) == expected
