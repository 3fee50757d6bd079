"""The sample generator: ground truth that holds, PDFs that are what they claim."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from pipeline.core.config import (
    DEFAULT_MRN_LABELS,
    DEFAULT_NOT_MRN_LABELS,
    DEFAULT_TAXONOMY,
)
from pipeline.samples import scans as samples

needs = {
    tool: pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} not installed")
    for tool in ("pdftoppm", "pdftotext", "tesseract")
}


def make(seed: int, doc_type: str = "discharge_summary", patient: bool = True, **kwargs) -> samples.SampleDoc:
    rng = random.Random(seed)
    return samples.make_document(rng, doc_type, samples.make_patient(rng) if patient else None, **kwargs)


def text_of(doc: samples.SampleDoc) -> str:
    return "\n".join(doc.lines)


@pytest.fixture(scope="module")
def page_300() -> tuple[samples.SampleDoc, Image.Image]:
    doc = make(7, "radiology_report", layout="inline", label_style="MRN", title=True)
    return doc, samples.render_page(doc.pages[0], dpi=300, heading_lines=doc.heading_lines)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("bad")
    return folder, samples.write_bad_inputs(folder)


@pytest.fixture(scope="module")
def sample_set(tmp_path_factory) -> list[tuple[Path, samples.SampleDoc]]:
    return samples.write_sample_set(tmp_path_factory.mktemp("drop"), count=6, seed=3)


# ---------------------------------------------------------------------- ground truth


@pytest.mark.parametrize("doc_type", samples.DOC_TYPES)
def test_every_type_prints_its_patient_once_labelled_and_never_inside_a_decoy(doc_type):
    for seed in range(8):
        doc = make(seed, doc_type, layout=samples.LAYOUTS[seed % len(samples.LAYOUTS)], pages=1 + seed % 3)
        text, mrn = text_of(doc), doc.patient.mrn
        assert doc.expect == "filed" and doc.extra_mrns == ()
        assert any(re.fullmatch(p, doc.mrn_label) for p in DEFAULT_MRN_LABELS), doc.mrn_label
        assert doc.mrn_label in text and mrn in text
        numbers = re.findall(r"[A-Z]*\d[\d-]*", text)
        assert all(n == mrn or mrn not in n for n in numbers), "a decoy number contains the MRN"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", doc.doc_date) and doc.doc_date > doc.patient.dob


def test_decoys_carry_labels_that_are_not_mrn_labels():
    doc = make(11, "insurance_billing", layout="inline")
    decoys = [line for line in doc.lines if re.search(r"(Member ID|Claim|Policy|Group)", line)]
    assert decoys
    for line in decoys:
        assert any(re.search(p, line) for p in DEFAULT_NOT_MRN_LABELS)


def test_distractors_off_leaves_no_decoy_numbers():
    text = text_of(make(2, "prescription", distractors=False, layout="inline"))
    assert not re.search(r"\b(NPI|DEA|Account|Acct|FIN|CSN|Fax|Phone|Tel)\b", text)


def test_a_conflicting_mrn_is_printed_and_sends_the_document_to_review():
    doc = make(5, "lab_result", conflicting_mrn=True, pages=2)
    (other,) = doc.extra_mrns
    assert other != doc.patient.mrn and other in "\n".join(doc.pages[-1])
    assert samples.ground_truth_json(doc)["expect"] == "review"
    chosen = make(5, "lab_result", conflicting_mrn="1234567")
    assert chosen.extra_mrns == ("1234567",)


def test_a_document_without_a_patient_has_no_identifiers_and_goes_to_review():
    for seed in range(6):
        doc = make(seed, "consent_form", patient=False)
        truth = samples.ground_truth_json(doc)
        assert truth["mrn"] is None and truth["name"] is None and truth["expect"] == "review"
        assert "I hereby consent" in " ".join(doc.lines).replace("\n", " ")


def test_title_false_drops_the_title_but_keeps_a_typical_body():
    doc = make(4, "operative_report", title=False)
    assert doc.title is None
    assert not any(
        t.lower() == line.lower() for line in doc.lines for t in DEFAULT_TAXONOMY["operative_report"]["titles"]
    )
    assert "Preoperative Diagnosis" in text_of(doc) or "PREOPERATIVE DIAGNOSIS" in text_of(doc)


def test_multi_page_documents_repeat_the_patient_and_number_their_pages():
    doc = make(9, "history_physical", pages=3)
    assert len(doc.pages) == 3
    for k, page in enumerate(doc.pages, 1):
        assert page[-1] == f"Page {k} of 3"
        assert doc.patient.mrn in "\n".join(page)


def test_every_page_fits_at_12_points():
    for seed, doc_type in enumerate(samples.DOC_TYPES * 4):
        doc = make(seed, doc_type, layout=samples.LAYOUTS[seed % 5], pages=1 + seed % 4, conflicting_mrn=seed % 3 == 0)
        for k, page in enumerate(doc.pages):
            samples.render_page(page, dpi=72, font_size_pt=12, heading_lines=doc.heading_lines if k == 0 else 0)


def test_the_same_seed_gives_the_same_document():
    assert make(21, "referral_letter") == make(21, "referral_letter")
    assert make(21, "referral_letter") != make(22, "referral_letter")


def test_patients_are_plain_ascii_with_6_to_8_digit_mrns():
    rng = random.Random(0)
    patients = [samples.make_patient(rng) for _ in range(300)]
    assert all(re.fullmatch(r"\d{6,8}", p.mrn) for p in patients)
    assert any(p.mrn.startswith("0") for p in patients)
    assert all(p.name.isascii() and p.name == f"{p.last}, {p.first}".upper() for p in patients)


def test_the_benchmark_corpus_covers_every_type_and_both_outcomes():
    docs = samples.make_corpus(60, seed=1)
    assert len(docs) == 60 and {d.doc_type for d in docs} == set(samples.DOC_TYPES)
    assert {d.expect for d in docs} == {"filed", "review"}


# ------------------------------------------------------------------------- rendering


def test_a_rendered_page_is_grayscale_letter_at_its_dpi(page_300):
    _, image = page_300
    assert image.mode == "L" and image.size == (2550, 3300) and image.info["dpi"] == (300, 300)
    sideways = samples.render_page(["Page fed sideways"], dpi=100, rotate=90)
    assert sideways.size == (1100, 850)
    with pytest.raises(ValueError):
        samples.render_page(["x"], rotate=45)
    with pytest.raises(ValueError):
        samples.render_page(["line"] * 80, dpi=72)


def test_a_fax_page_is_bitonal_at_fax_resolution(page_300):
    _, image = page_300
    standard, fine = samples.fax_page(image), samples.fax_page(image, fine=True)
    assert standard.mode == "1" and standard.size == (1734, 1078) and standard.info["dpi"] == (204, 98)
    assert fine.size == (1734, 2156) and fine.info["dpi"] == (204, 196)


@needs["tesseract"]
def test_tesseract_reads_the_mrn_and_title_of_a_300_dpi_page(page_300, tmp_path):
    doc, image = page_300
    image.save(tmp_path / "page.png", dpi=(300, 300))
    done = subprocess.run(
        ["tesseract", str(tmp_path / "page.png"), "-"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        timeout=120,
        check=True,
    )
    assert doc.patient.mrn in done.stdout
    assert doc.title.lower() in done.stdout.lower()


# ------------------------------------------------------------------------------ PDFs


def page_size(path: Path) -> tuple[float, float]:
    with pikepdf.open(path) as pdf:
        box = pdf.pages[0].MediaBox
        return float(box[2]) - float(box[0]), float(box[3]) - float(box[1])


@pytest.mark.parametrize("encoding", ["jpeg", "flate", "g4"])
def test_scanned_pdfs_are_letter_size_whatever_the_encoding(page_300, tmp_path, encoding):
    _, image = page_300
    path = tmp_path / f"{encoding}.pdf"
    samples.write_scanned_pdf(path, [image, image], encoding=encoding)
    with pikepdf.open(path) as pdf:
        assert len(pdf.pages) == 2
        (xobject,) = pdf.pages[0].Resources.XObject.values()
        assert (int(xobject.Width), int(xobject.Height)) == (2550, 3300)
    assert page_size(path) == pytest.approx((612, 792))


def test_a_fax_pdf_keeps_its_physical_size_despite_unequal_dpi(page_300, tmp_path):
    _, image = page_300
    samples.write_scanned_pdf(tmp_path / "fax.pdf", [samples.fax_page(image)], encoding="g4")
    assert page_size(tmp_path / "fax.pdf") == pytest.approx((612, 792), abs=0.5)


@needs["pdftoppm"]
def test_a_g4_page_renders_mostly_white_with_black_text(page_300, tmp_path):
    _, image = page_300
    path = tmp_path / "g4.pdf"
    samples.write_scanned_pdf(path, [image], encoding="g4")
    subprocess.run(["pdftoppm", "-r", "50", "-gray", "-png", str(path), str(tmp_path / "out")], check=True)
    rendered = Image.open(next(tmp_path.glob("out*.png"))).convert("L")
    histogram = rendered.histogram()
    pixels = rendered.width * rendered.height
    assert sum(histogram[200:]) / pixels > 0.9
    assert sum(histogram[:100]) / pixels > 0.005
    # Not merely some black: the ink is where the text is (top, not bottom, of the page).
    top, bottom = (rendered.crop((0, y, rendered.width, y + 100)) for y in (30, rendered.height - 130))
    assert top.getextrema()[0] == 0 and bottom.getextrema()[0] > 100


@needs["pdftotext"]
def test_born_digital_text_comes_back_from_pdftotext(tmp_path):
    doc = make(3, "lab_result", pages=2)
    path = tmp_path / "digital.pdf"
    samples.write_born_digital_pdf(path, doc.pages, heading_lines=doc.heading_lines)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    words = " ".join(text.split())
    for line in doc.lines:
        for cell in line.split("\t"):
            assert " ".join(cell.split()) in words


# ------------------------------------------------------------------------ bad inputs


def test_bad_inputs_are_what_they_claim(bad_inputs):
    tmp_path, kinds = bad_inputs
    assert sorted(set(kinds.values())) == ["bomb", "empty", "encrypted", "not_pdf", "truncated"]
    assert all((tmp_path / name).stat().st_size < 10_000 for name in kinds)
    assert (tmp_path / "empty.pdf").stat().st_size == 0
    assert not (tmp_path / "not_a_pdf.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "truncated.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(pikepdf.PdfError):
        pikepdf.open(tmp_path / "truncated.pdf")
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(tmp_path / "encrypted.pdf")
    with pikepdf.open(tmp_path / "encrypted.pdf", password="patient") as pdf:
        assert pdf.is_encrypted and len(pdf.pages) == 1


def test_the_bombs_declare_more_pixels_than_any_page_budget(bad_inputs):
    tmp_path, kinds = bad_inputs
    budget = 180_000_000
    bombs = [name for name, kind in kinds.items() if kind == "bomb"]
    assert len(bombs) == 2
    with pikepdf.open(tmp_path / "bomb_image.pdf") as pdf:
        (image,) = pdf.pages[0].Resources.XObject.values()
        assert int(image.Width) * int(image.Height) > budget
    width, height = page_size(tmp_path / "bomb_page.pdf")
    assert (width / 72 * 300) * (height / 72 * 300) > budget


# ------------------------------------------------------------------------ sample set


def test_the_sample_set_mixes_scans_faxes_and_text_and_is_reproducible(sample_set, tmp_path):
    names = [path.name for path, _ in sample_set]
    assert names == [
        "01-scan.pdf",
        "02-fax.pdf",
        "03-bitonal.pdf",
        "04-digital.pdf",
        "05-noisy.pdf",
        "06-upside_down.pdf",
    ]
    folder = sample_set[0][0].parent
    assert sorted(p.name for p in folder.iterdir()) == names  # no partial files left behind
    assert page_size(folder / "02-fax.pdf") == pytest.approx((612, 792), abs=0.5)
    assert [samples.ground_truth_json(doc)["expect"] for _, doc in sample_set].count("review") == 1
    again = samples.write_sample_set(tmp_path, count=6, seed=3)
    assert [path.read_bytes() for path, _ in again] == [path.read_bytes() for path, _ in sample_set]
