"""Box label sheets in a batch, and when a box may be closed or destroyed: the pure parts."""

from __future__ import annotations

from datetime import date

from pipeline.core.config import BoxSettings
from pipeline.core.models import BarcodeRead
from pipeline.identify.split import PageSignals, box_label, boxes_of, split_pages
from pipeline.paper.rules import BoxedDocument, FailedInput, close_refusal, destroy_refusal

BOXES = BoxSettings()


def page(n: int, *, sheet: bool = False, box: str | None = None) -> PageSignals:
    return PageSignals(n, False, (), None, box_sheet=sheet, box=box)


def test_a_label_sheet_is_no_page_and_names_the_box_of_what_follows():
    pages = [page(1, sheet=True, box="BOX-000123"), page(2), page(3), page(4, sheet=True, box=None), page(5)]
    groups = split_pages(pages, separator_sheets=True, automatic=False)
    assert groups == [[2, 3], [5]]
    assert boxes_of(groups, pages) == [("BOX-000123", "label sheet"), (None, "label unreadable")]
    assert boxes_of([[1, 2]], [page(1), page(2)]) == [(None, None)]


def test_a_label_sheet_is_known_by_its_barcode_or_its_title():
    code = BarcodeRead("BOX-004711", "Code128", 10, 10)
    assert box_label("", [code], BOXES) == (True, "BOX-004711")
    assert box_label("STORAGE BOX LABEL\nMedical Records\nBOX-0O4711", [], BOXES) == (True, None)
    assert box_label("STORAGE B0X LABEL\n", [], BOXES) == (True, None)  # OCR-garbled title
    assert box_label("DISCHARGE SUMMARY\nPatient: DOE, JANE", [BarcodeRead("00482913", "Code128", 1, 1)], BOXES) == (
        False,
        None,
    )


def doc(doc_id: str, status: str = "filed", mrn: str = "100", scanned: str = "2026-09-01T10:00:00+00:00"):
    return BoxedDocument(doc_id, status, mrn, 2, scanned)


def test_a_box_with_a_page_in_review_or_failed_cannot_close():
    assert close_refusal("open", [doc("a"), doc("b")], []) is None
    refusal = close_refusal("open", [doc("a"), doc("b", "review")], [FailedInput("scan7.pdf", "unreadable")])
    assert refusal is not None and "still in review: b" in refusal and "scan7.pdf" in refusal
    assert close_refusal("closed", [doc("a")], []) == "the box is closed, not open"
    assert close_refusal("open", [], []) == "the box holds no scanned document"


def test_destroy_waits_for_the_keep_period_and_never_under_a_legal_hold():
    docs = [doc("a", scanned="2026-09-01T10:00:00+00:00"), doc("b", mrn="200", scanned="2026-09-10T08:00:00+00:00")]
    refusal = destroy_refusal("shipped", docs, [], 90, date(2026, 12, 8))
    assert refusal is not None and "from 2026-12-09" in refusal
    assert destroy_refusal("shipped", docs, [], 90, date(2026, 12, 9)) is None
    assert "legal hold covers MRN 200" in (destroy_refusal("shipped", docs, ["200"], 90, date(2027, 6, 1)) or "")
    assert "close it" in (destroy_refusal("open", docs, [], 90, date(2027, 6, 1)) or "")
    assert destroy_refusal("destroyed", docs, [], 90, date(2027, 6, 1)) == "the box was destroyed already"


def test_a_drop_folder_box_reaches_every_document_unless_a_label_sheet_says_otherwise(tmp_path):
    from pipeline.core.config import load_config
    from pipeline.core.models import PageText
    from pipeline.identify.documents import SourceFacts, build_documents
    from watch_folders.claims import claim

    path = tmp_path / "config.yaml"
    path.write_text("data_root: data\nwatch:\n  folders:\n  - {path: drop, box: BOX-000777}\n")
    config = load_config(path)
    folder = config.drop_folders[0]
    folder.path.mkdir(parents=True)
    (folder.path / "scan.pdf").write_bytes(b"%PDF-1.4")
    claimed = claim(config, folder.path / "scan.pdf", folder)
    assert claimed is not None and claimed.box == "BOX-000777"

    note = "DISCHARGE SUMMARY\nPatient: DOE, JANE  MRN: 00482913\nDOB: 1961-04-12"
    pages = [PageText(1, note, "text-layer")]
    (doc,) = build_documents(pages, SourceFacts("scan.pdf", "ab" * 32, box=claimed.box), config, None)
    assert (doc.box, doc.box_how) == ("BOX-000777", "drop folder")
    label = PageText(1, "STORAGE BOX LABEL", "ocr", barcodes=(BarcodeRead("BOX-000123", "Code128", 5, 5),))
    (doc,) = build_documents(
        [label, PageText(2, note, "ocr")], SourceFacts("s.pdf", "cd" * 32, box="BOX-000777"), config, None
    )
    assert (doc.box, doc.box_how, doc.source_pages) == ("BOX-000123", "label sheet", [2])


def test_a_drop_folder_box_must_look_like_a_box(tmp_path):
    import pytest

    from pipeline.core.config import load_config
    from pipeline.core.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text("watch:\n  folders:\n  - {path: drop, box: crate-7}\n")
    with pytest.raises(ConfigError, match=r"watch.folders\[0\].box"):
        load_config(path)
