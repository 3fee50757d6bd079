"""Separator sheets as departments print them (Kodak-style "PATCH T": title, patch bars,
Code 39 in the middle), scanned every way they arrive, found anywhere on the page."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.core.config import Config
from pipeline.core.models import PageText
from pipeline.identify.documents import SourceFacts, build_documents
from pipeline.pages.barcodes import PATCH_T_FORMAT, is_separator, separator_reads
from pipeline.pages.raster import despeckled, render_page
from pipeline.pages.scan_image import bare_scan
from pipeline.samples import labels
from pipeline.samples import scans as samples
from pipeline.samples.separators import Scan, scanned_sheet

FORMATS = ("Code128", "Code39", "DataMatrix", "QRCode")
WORKER_DPI = 300


def as_the_worker_sees_it(image: Image.Image, encoding: str, folder: Path) -> Image.Image:
    """The page after the PDF round trip: the scan's own image, or a 300-dpi render of it."""
    pdf = folder / "sheet.pdf"
    samples.write_scanned_pdf(pdf, [image], encoding=encoding)
    scan = bare_scan(pdf, 1, WORKER_DPI)
    if scan is not None and scan.image is not None:
        page = scan.image
    else:
        page = Image.open(render_page(pdf, 1, WORKER_DPI, folder, 60))
        page.load()
    return despeckled(page, WORKER_DPI)


SCANS = {
    "letter 300 dpi JPEG": (Scan(dpi=300), "jpeg"),
    "letter 200 dpi CCITT G4": (Scan(dpi=200), "g4"),
    "A4 300 dpi G4 upside down": (Scan(page_size="a4", upside_down=True), "g4"),
    "A4 200 dpi JPEG upside down and fuzzy": (Scan(dpi=200, page_size="a4", upside_down=True, blur=1.0), "jpeg"),
    "fuzzy and speckled": (Scan(blur=1.5, noise=0.0015, seed=3), "jpeg"),
    "turned 1.5 degrees and stretched": (Scan(skew_deg=1.5, stretch=1.02), "g4"),
    "turned the other way and shrunk": (Scan(dpi=200, skew_deg=-1.2, stretch=0.98, blur=0.8), "jpeg"),
}


@pytest.mark.parametrize("name", SCANS)
def test_the_printed_sheet_is_a_separator_however_it_was_scanned(name, tmp_path):
    scan, encoding = SCANS[name]
    page = as_the_worker_sees_it(scanned_sheet(scan), encoding, tmp_path)
    reads = separator_reads(page, FORMATS, "PATCHT")
    assert {r.format for r in reads} == {"Code39", PATCH_T_FORMAT}
    assert is_separator(reads, "PATCHT")


def _text_page(seed: int) -> Image.Image:
    rng = random.Random(seed)
    doc = samples.make_document(rng, rng.choice(samples.DOC_TYPES), samples.make_patient(rng))
    return samples.render_page(list(doc.pages[0]), dpi=300, rng=rng)


@pytest.mark.parametrize("fmt", ["Code39", "Code128", "QRCode"])
def test_a_separator_code_anywhere_on_a_page_of_text_is_found(fmt):
    code = labels.barcode_image("PATCHT", fmt, 8 if fmt == "QRCode" else 4)
    page = labels.paste_label(_text_page(1), code, (300, 2700))  # near the foot
    reads = separator_reads(page, FORMATS, "PATCHT")
    assert [(r.value, r.format) for r in reads] == [("PATCHT", fmt)]
    assert reads[0].top > 2000  # in page pixels, not the overview's


def test_other_codes_low_on_a_page_are_not_reported():
    label = labels.patient_label("00482913", "DOE, JANE", "1962-03-14", "Code128")
    page = labels.paste_label(_text_page(2), label, (300, 2700))
    assert separator_reads(page, FORMATS, "PATCHT") == []


@pytest.mark.parametrize("seed", range(4))
def test_pages_of_text_show_no_patch_bars(seed):
    assert separator_reads(_text_page(seed), (), "PATCHT") == []


def test_the_old_barcode_only_sheet_has_no_patch_bars():
    reads = separator_reads(labels.separator_sheet(), FORMATS, "PATCHT")
    assert PATCH_T_FORMAT not in {r.format for r in reads}
    assert is_separator(reads, "PATCHT")


def test_the_bars_alone_separate_only_when_the_setting_says_so():
    sheet = scanned_sheet(Scan(upside_down=True), value="NOTASEP")  # the bars, but another code
    reads = separator_reads(sheet, FORMATS, "PATCHT")
    assert [r.format for r in reads] == [PATCH_T_FORMAT]
    assert not is_separator(reads, "PATCHT")
    assert is_separator(reads, "PATCHT", patch_bars=True)


def test_barcodes_disabled_look_for_nothing():
    assert separator_reads(scanned_sheet(), (), "PATCHT")[0].format == PATCH_T_FORMAT  # bars only
    assert is_separator([], "PATCHT", patch_bars=True) is False


# ---------------------------------------------------------------- batches


@pytest.fixture(scope="module")
def sheet_reads(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sheet")
    page = as_the_worker_sees_it(scanned_sheet(Scan(dpi=200, upside_down=True)), "g4", folder)
    return tuple(separator_reads(page, FORMATS, "PATCHT"))


def _batch(layout: str, reads) -> list[PageText]:
    """'S' a separator sheet, a letter a one-page document of that patient."""
    rng = random.Random(7)
    patients = {}
    pages = []
    for n, key in enumerate(layout, start=1):
        if key == "S":
            pages.append(PageText(n, "PATCH T\nDOCUMENT SEPARATOR SHEET\n*PATCHT*", "ocr", barcodes=reads))
            continue
        patient = patients.setdefault(key, samples.make_patient(rng))
        doc = samples.make_document(
            rng, "progress_note", patient, distractors=False, layout="inline", label_style="MRN"
        )
        pages.append(PageText(n, "\n".join(doc.pages[0]), "ocr"))
    return pages


@pytest.mark.parametrize(
    "layout, groups",
    [
        ("SA", [[2]]),  # first page
        ("AS", [[1]]),  # last page
        ("ASSB", [[1], [4]]),  # two in a row make no empty document
        ("AASBS", [[1, 2], [4]]),  # middle of a batch, and last
        ("SSASBSSCSS", [[3], [5], [8]]),
    ],
)
def test_sheets_cut_batches_where_they_lie(layout, groups, sheet_reads):
    # One OCR read of each MRN: the second-witness rule is not what this test is about.
    config = Config(path=Path("config.yaml"), filing={"second_witness": False})
    documents = build_documents(_batch(layout, sheet_reads), SourceFacts("batch.pdf", "0" * 64), config, None)
    assert [d.source_pages for d in documents] == groups
    assert all(d.decision.status == "filed" for d in documents)


def test_a_file_of_separator_sheets_only_makes_no_document(sheet_reads):
    assert (
        build_documents(
            _batch("SS", sheet_reads), SourceFacts("seps.pdf", "0" * 64), Config(path=Path("config.yaml")), None
        )
        == []
    )


def test_blank_black_and_sliver_pages_are_no_separators():
    assert separator_reads(Image.new("L", (2550, 3300), 255), FORMATS, "PATCHT") == []
    assert separator_reads(Image.new("L", (2550, 3300), 0), FORMATS, "PATCHT") == []
    assert separator_reads(Image.new("L", (40, 9000), 255), FORMATS, "PATCHT") == []


@pytest.mark.parametrize(("left", "width", "darkness"), [(1275, 40, 150), (1100, 80, 170), (1400, 25, 200)])
def test_a_sheet_whose_code_a_toner_streak_crosses_still_separates(left, width, darkness, tmp_path):
    """A drum streak down the page through the Code 39 (issue 25): the bars say patch sheet,
    and the code is read on the page cut at a grey level the streak does not reach."""
    sheet = np.asarray(scanned_sheet(Scan(dpi=300)), np.int16).copy()
    sheet[:, left - width // 2 : left + width // 2] -= darkness
    page = Image.fromarray(np.clip(sheet, 0, 255).astype(np.uint8))
    reads = separator_reads(page, FORMATS, "PATCHT")
    assert any(r.format == "Code39" and r.value == "PATCHT" for r in reads)
    assert is_separator(reads, "PATCHT")  # by its code: no need for patch_bars_alone
