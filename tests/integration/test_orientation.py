"""Pages fed upside down or sideways: found, turned for OCR and in the archived PDF."""

import subprocess

import pytest

from pipeline.archive.textlayer import build_pdf
from pipeline.core.models import Word
from pipeline.pages.orientation import is_suspect, parse_osd
from pipeline.pages.process import PageTask, process_page
from pipeline.samples import scans as samples
from tests.conftest import document


def words(conf, width=40, height=12, n=20, text="word"):
    return [Word(text, conf, 0, 0, width, height) for _ in range(n)]


def test_clean_upright_page_is_not_suspect():
    assert not is_suspect(words(92))


def test_low_confidence_nonsense_is_suspect():
    assert is_suspect(words(44, text="ssaupOUs"))


def test_noisy_upright_prose_is_not_suspect():
    assert not is_suspect(words(50, n=16) + words(50, n=4, text="the"))


def test_tall_words_mean_sideways_text():
    assert is_suspect(words(95, width=12, height=40))


def test_sparse_page_is_never_checked():
    assert not is_suspect(words(10, n=5))


@pytest.mark.parametrize(
    "output, expected",
    [
        ("Orientation in degrees: 180\nRotate: 180\nOrientation confidence: 18.09\n", 180),
        ("Orientation in degrees: 270\nRotate: 90\nOrientation confidence: 7.2\n", 90),
        ("Orientation in degrees: 180\nRotate: 180\nOrientation confidence: 0.40\n", 0),
        ("Rotate: 0\nOrientation confidence: 12\n", 0),
        ("garbage", 0),
    ],
)
def test_osd_output(output, expected):
    assert parse_osd(output) == expected


def test_upside_down_scan_is_read_and_archived_upright(tmp_path):
    doc = document(21, "discharge_summary")
    page = samples.render_page(list(doc.pages[0]), dpi=300).rotate(180)
    source = tmp_path / "upside-down.pdf"
    samples.write_scanned_pdf(source, [page], encoding="jpeg", dpi=(300, 300))
    result = process_page(PageTask(source, 1, True, 300, "eng", 120, 40))
    assert result.rotation == 180
    assert doc.patient.mrn in result.text.replace(" ", "")
    out = tmp_path / "archived.pdf"
    build_pdf(source, [result], out)
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True).stdout
    assert doc.patient.mrn in text.replace(" ", "")
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True).stdout
    assert "Page rot:        180" in info
