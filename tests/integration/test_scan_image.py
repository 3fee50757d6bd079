"""A bare scan's own image stands in for pdftoppm only when it is what pdftoppm would draw."""

from __future__ import annotations

import io
import random
import subprocess
from pathlib import Path

import img2pdf
import pikepdf
import pytest
from PIL import Image, ImageChops, ImageStat

from pipeline.pages.scan_image import bare_scan
from pipeline.samples import scans as samples


@pytest.fixture(scope="module")
def page() -> Image.Image:
    rng = random.Random(4)
    doc = samples.make_document(rng, "lab_result", samples.make_patient(rng), pages=1)
    return samples.render_page(list(doc.pages[0]), dpi=300, rng=rng, skew_deg=0.5, noise=0.0015).convert("L")


def _rendered(pdf: Path, tmp_path: Path) -> Image.Image:
    base = tmp_path / f"{pdf.stem}-render"
    subprocess.run(["pdftoppm", "-r", "300", "-gray", "-cropbox", "-singlefile", str(pdf), str(base)], check=True)
    return Image.open(f"{base}.pgm")


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]


@pytest.mark.parametrize("encoding", ["jpeg", "flate", "g4"])
def test_scanner_pages_give_the_pixels_pdftoppm_draws(tmp_path, page, encoding):
    pdf = tmp_path / f"{encoding}.pdf"
    samples.write_scanned_pdf(pdf, [page], encoding=encoding, dpi=(300, 300))
    scan = bare_scan(pdf, 1, 300)
    assert scan is not None and scan.image is not None and scan.image.mode == "L"
    # pdftoppm resamples by a fraction of a pixel; a wrong polarity, offset or scale is far off.
    assert _mean_difference(scan.image, _rendered(pdf, tmp_path)) < 2.5
    if encoding == "flate":
        assert _mean_difference(scan.image, page) == 0


def test_colour_scan_is_read_in_gray(tmp_path, page):
    buffer = io.BytesIO()
    page.convert("RGB").save(buffer, "JPEG", quality=90, dpi=(300, 300))
    pdf = tmp_path / "colour.pdf"
    pdf.write_bytes(img2pdf.convert(buffer.getvalue()))
    scan = bare_scan(pdf, 1, 300)
    assert scan is not None and scan.image is not None and scan.image.mode == "L"
    assert _mean_difference(scan.image, _rendered(pdf, tmp_path)) < 2.5


def test_fax_with_white_as_one_keeps_its_polarity(tmp_path, page):
    # img2pdf writes G4 as it comes from the TIFF (BlackIs1 false), unlike write_scanned_pdf.
    buffer = io.BytesIO()
    page.point(lambda v: 255 if v > 128 else 0).convert("1").save(buffer, "TIFF", compression="group4", dpi=(300, 300))
    pdf = tmp_path / "fax.pdf"
    pdf.write_bytes(img2pdf.convert(buffer.getvalue()))
    scan = bare_scan(pdf, 1, 300)
    assert scan is not None and scan.image is not None
    assert _mean_difference(scan.image, _rendered(pdf, tmp_path)) < 2.5


def test_other_resolutions_are_left_to_the_renderer(tmp_path, page):
    pdf = tmp_path / "200dpi.pdf"
    samples.write_scanned_pdf(pdf, [page.resize((1700, 2200))], encoding="jpeg", dpi=(200, 200))
    assert bare_scan(pdf, 1, 300).image is None
    assert bare_scan(pdf, 1, 200).image is not None


def _edited(source: Path, target: Path, change) -> Path:
    with pikepdf.open(source) as pdf:
        change(pdf, pdf.pages[0])
        pdf.save(target)
    return target


def _with_text(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
    font = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica)
    page.Resources.Font = pikepdf.Dictionary(F1=font)
    page.contents_add(pikepdf.Stream(pdf, b"BT /F1 12 Tf 3 Tr 72 72 Td (MRN 00482913) Tj ET"))


def _turned(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
    page.Rotate = 90


def _masked(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
    image = page.Resources.XObject.Im0
    image.Decode = pikepdf.Array([1, 0])


def _moved(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
    page.MediaBox = pikepdf.Array([0, 0, 700, 900])


@pytest.mark.parametrize("change", [_turned, _masked, _moved])
def test_an_image_only_page_drawn_differently_is_rendered(tmp_path, page, change):
    pdf = tmp_path / "scan.pdf"
    samples.write_scanned_pdf(pdf, [page], encoding="jpeg", dpi=(300, 300))
    scan = bare_scan(_edited(pdf, tmp_path / "changed.pdf", change), 1, 300)
    assert scan is not None and scan.image is None


def test_a_page_with_text_is_not_a_bare_scan(tmp_path, page):
    pdf = tmp_path / "scan.pdf"
    samples.write_scanned_pdf(pdf, [page], encoding="jpeg", dpi=(300, 300))
    assert bare_scan(_edited(pdf, tmp_path / "with-text.pdf", _with_text), 1, 300) is None


def test_unreadable_pdf_is_left_to_the_renderer(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\n% nothing else\n")
    assert bare_scan(broken, 1, 300) is None
