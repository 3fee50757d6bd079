"""Barcodes: labels and separator sheets through a simulated scan, and what their values mean."""

from __future__ import annotations

from functools import lru_cache

import pytest
from PIL import Image

from pipeline.core.errors import MedarchiveError
from pipeline.pages.barcodes import (
    BarcodeError,
    BarcodeRead,
    doc_type_from,
    is_separator,
    mrn_values,
    read_barcodes,
)
from pipeline.samples import labels
from pipeline.samples import scans as samples

FORMATS = ["Code128", "Code39", "DataMatrix", "QRCode"]
MRN_PATTERN = r"\d{6,10}"
LINES = [
    "PROGRESS NOTE",
    "",
    "Patient Name: SMITH, JOHN    MRN: 00482913",
    "DOB: 03/14/1962",
    *["The patient was seen today for follow-up of hypertension and diabetes mellitus."] * 25,
]


@lru_cache(maxsize=4)
def text_page(dpi: int) -> Image.Image:
    return samples.render_page(LINES, dpi=dpi)


def labelled_page(
    fmt: str, dpi: int, at: tuple[float, float], value: str = "00482913"
) -> tuple[Image.Image, tuple[int, int]]:
    label = labels.patient_label(value, "SMITH, JOHN", "03/14/1962", fmt, dpi)
    xy = (round(at[0] * dpi), round(at[1] * dpi))
    return labels.paste_label(text_page(dpi), label, xy), xy


def read(image: Image.Image, formats: list[str] = FORMATS) -> list[tuple[str, str]]:
    return [(r.value, r.format) for r in read_barcodes(image, formats)]


# ---------------------------------------------------------------- labels through a scan


@pytest.mark.parametrize("dpi", [300, 200])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("skew", "seed"), [(1.5, 1), (-2.0, 2)])
def test_label_on_a_text_page_reads_back_after_noise_and_skew(fmt, dpi, skew, seed):
    page, (x, y) = labelled_page(fmt, dpi, at=(5.2, 0.5))
    scanned = labels.scan_like(page, skew_deg=skew, noise=0.003, seed=seed)
    reads = read_barcodes(scanned, FORMATS)
    assert [(r.value, r.format) for r in reads] == [("00482913", fmt)]
    # Inside the label, give or take what a 2-degree turn moves it (0.07 inch per 2 inches).
    label_w, label_h = labels.patient_label("00482913", "SMITH, JOHN", "03/14/1962", fmt, dpi).size
    slack = round(0.25 * dpi)
    assert x - slack <= reads[0].left <= x + label_w
    assert y - slack <= reads[0].top <= y + label_h
    assert mrn_values(reads, MRN_PATTERN) == ["00482913"]


@pytest.mark.parametrize(
    ("fmt", "dpi", "skew", "seed"),
    [
        ("DataMatrix", 300, -2.0, 1),
        ("QRCode", 200, 1.0, 0),
    ],
)
def test_specks_do_not_hide_a_2d_label(fmt, dpi, skew, seed):
    # Cases zxing's local-average binarizer alone misses; the fixed threshold reads them.
    page, _ = labelled_page(fmt, dpi, at=(5.2, 0.5))
    assert read(labels.scan_like(page, skew_deg=skew, noise=0.002, seed=seed)) == [("00482913", fmt)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_faded_label_is_read(fmt):
    label = labels.patient_label("00482913", "SMITH, JOHN", "03/14/1962", fmt, 300)
    faded = label.point(lambda v: 150 + v * 105 // 255)  # worn thermal print: grey bars
    page = labels.paste_label(text_page(300), faded, (1560, 150))
    assert read(labels.scan_like(page, skew_deg=1.0, noise=0.002, seed=3)) == [("00482913", fmt)]


def test_sideways_label_is_read():
    label = labels.patient_label("00482913", "SMITH, JOHN", "03/14/1962", "Code128", 300).rotate(90, expand=True)
    page = labels.paste_label(text_page(300), label, (2000, 1200))
    assert read(labels.scan_like(page, skew_deg=1.0, noise=0.002, seed=4)) == [("00482913", "Code128")]


def test_two_labels_are_listed_top_to_bottom():
    page, _ = labelled_page("QRCode", 300, at=(5.2, 8.5), value="MRN00519377")
    code39 = labels.patient_label("00482913", "SMITH, JOHN", "03/14/1962", "Code39", 300)
    page = labels.paste_label(page, code39, (300, 150))
    reads = read_barcodes(labels.scan_like(page, skew_deg=-1.0, noise=0.002, seed=5), FORMATS)
    assert [(r.value, r.format) for r in reads] == [("00482913", "Code39"), ("MRN00519377", "QRCode")]
    assert mrn_values(reads, MRN_PATTERN) == ["00482913", "00519377"]


def test_text_pages_have_no_barcodes():
    for dpi in (300, 200):
        assert read(labels.scan_like(text_page(dpi), skew_deg=1.5, noise=0.01, seed=6)) == []


def test_only_the_configured_formats_are_read():
    page, _ = labelled_page("QRCode", 300, at=(5.2, 0.5))
    assert read(page, ["Code128", "Code39"]) == []
    assert read(page, ["QRCode"]) == [("00482913", "QRCode")]
    assert read(page, []) == []


def test_unknown_format_is_a_clear_error():
    with pytest.raises(BarcodeError, match="unknown barcode format 'Code 1288'") as err:
        read_barcodes(text_page(200), ["Code128", "Code 1288"])
    assert isinstance(err.value, MedarchiveError)


def test_rgb_and_bitonal_images_are_read():
    page, _ = labelled_page("Code128", 300, at=(5.2, 0.5))
    assert read(page.convert("RGB")) == [("00482913", "Code128")]
    assert read(page.convert("1")) == [("00482913", "Code128")]


# ---------------------------------------------------------------- separator sheets


@pytest.mark.parametrize("dpi", [300, 200])
@pytest.mark.parametrize(("skew", "noise"), [(2.0, 0.003), (-1.0, 0.02)])
def test_separator_sheet_is_detected(dpi, skew, noise):
    sheet = labels.scan_like(labels.separator_sheet(dpi), skew_deg=skew, noise=noise, seed=7)
    assert sheet.size == (round(8.5 * dpi), round(11 * dpi))
    for formats in (FORMATS, ["Code128"], ["Code39"]):
        reads = read_barcodes(sheet, formats)
        assert is_separator(reads, "PATCHT"), formats
        assert mrn_values(reads, MRN_PATTERN) == []


def test_separator_sheet_carries_both_codes_and_a_custom_value():
    assert read(labels.separator_sheet(300, value="SEP-0001")) == [("SEP-0001", "Code128"), ("SEP-0001", "Code39")]


def test_labelled_page_is_not_a_separator():
    page, _ = labelled_page("Code128", 300, at=(5.2, 0.5))
    assert not is_separator(read_barcodes(page, FORMATS), "PATCHT")


# ---------------------------------------------------------------- values


def reads_of(*values: str) -> list[BarcodeRead]:
    return [BarcodeRead(v, "Code128", 0, 10 * i) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    "value",
    [
        "00482913",
        "MRN00482913",
        "MRN:00482913",
        "MRN: 00482913",
        "mrn 00482913",
        "MRN#00482913",
        "MRN-00482913",
        " 00482913 ",
    ],
)
def test_mrn_values_take_the_number_with_or_without_prefix(value):
    assert mrn_values(reads_of(value), MRN_PATTERN) == ["00482913"]


@pytest.mark.parametrize(
    "value",
    [
        "PATCHT",
        "MRN",
        "MRN:",
        "12345",
        "A00482913",
        "00482913X",
        "MRN 0048 2913",
        "MRN:MRN00482913",
        "ACCT00482913",
        "00482913/01",
        "http://example.org/00482913",
    ],
)
def test_mrn_values_reject_what_is_not_an_mrn(value):
    assert mrn_values(reads_of(value), MRN_PATTERN) == []


def test_mrn_values_are_distinct_in_page_order():
    reads = reads_of("00519377", "MRN00482913", "00482913", "PATCHT", "MRN:00519377")
    assert mrn_values(reads, MRN_PATTERN) == ["00519377", "00482913"]


@pytest.mark.parametrize(
    ("printed", "value", "check_char"),
    [
        ("00482913", "00482913", False),
        ("00482913R", "00482913R", True),  # R is the mod-43 check character of 00482913
        ("999990002", "999990002", True),  # 2 checks 99999000, or the MRN is 999990002
    ],
)
def test_code39_check_characters_are_flagged(printed, value, check_char):
    page = labels.paste_label(text_page(300), labels.barcode_image(printed, "Code39", 3), (300, 300))
    assert [(r.value, r.check_char) for r in read_barcodes(page, ["Code39"])] == [(value, check_char)]


def test_code39_check_character_is_no_guess_at_the_mrn():
    checked = [BarcodeRead("999990002", "Code39", 0, 0, check_char=True)]
    assert mrn_values(checked, MRN_PATTERN) == []  # 99999000 or 999990002: either fits
    assert mrn_values(checked, r"\d{8}") == ["99999000"]
    assert mrn_values(checked, r"\d{9}") == ["999990002"]
    letter = [BarcodeRead("MRN00482913R", "Code39", 0, 0, check_char=True)]
    assert mrn_values(letter, MRN_PATTERN) == ["00482913"]
    assert mrn_values([BarcodeRead("999990002", "Code39", 0, 0)], MRN_PATTERN) == ["999990002"]


def test_separator_with_a_check_character_is_a_separator():
    assert is_separator([BarcodeRead("PATCHT7", "Code39", 0, 0, check_char=True)], "PATCHT")
    assert not is_separator([BarcodeRead("PATCHT7", "Code39", 0, 0)], "PATCHT")


def test_mrn_pattern_that_includes_the_prefix_keeps_it():
    assert mrn_values(reads_of("MRN00482913", "00482913"), r"MRN\d{8}") == ["MRN00482913"]


def test_is_separator_needs_the_exact_value():
    assert is_separator(reads_of("00482913", "PATCHT"), "PATCHT")
    assert is_separator(reads_of("PATCHT "), "PATCHT")
    assert not is_separator(reads_of("patcht", "PATCHT2", "XPATCHT"), "PATCHT")
    assert not is_separator([], "PATCHT")


def test_doc_type_from_barcodes():
    mapping = {"FORM-CONSENT": "consent_form", "FORM-RX": "prescription", "FORM-RX2": "prescription"}
    assert doc_type_from(reads_of("00482913", "FORM-CONSENT"), mapping) == "consent_form"
    assert doc_type_from(reads_of("FORM-RX", "FORM-RX2"), mapping) == "prescription"
    assert doc_type_from(reads_of("FORM-RX", "FORM-CONSENT"), mapping) is None  # two forms: no answer
    assert doc_type_from(reads_of("00482913"), mapping) is None
    assert doc_type_from(reads_of("FORM-RX"), {}) is None
