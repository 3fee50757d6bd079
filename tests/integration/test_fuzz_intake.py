"""Fuzzed intake: broken PDFs made from the project's own samples (truncated, bit-flipped,
lying about lengths and sizes, with looping or very deep page trees, poisoned metadata...)
go through intake and page reading, each in a process of its own. Every one must be read
or refused with a reason: no exception escapes, no process dies, none runs past its time.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pikepdf
import pytest

from pipeline.core.config import IntakeSettings
from pipeline.intake.vet import inspect_pdf, repaired_copy
from pipeline.samples import fuzz, mutate

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("pdftoppm", "pdftotext", "tesseract")),
    reason="needs poppler-utils and tesseract",
)

CASES = 300
SEED = 13
PAGE_TIMEOUT = 10.0
# A case's time: intake, then each page read within the page timeout, and slack for a
# loaded machine. A case past it is killed and counted as a hang.
CASE_LIMIT = (fuzz.PAGES_READ + 2) * PAGE_TIMEOUT
# At the seeds' 50 dpi a letter page is 0.2 megapixels; pages and images far larger are
# refused as bombs, as they would be at 300 dpi, rather than slowly rendered here.
READING = fuzz.Reading(page_timeout=PAGE_TIMEOUT, ocr_every=50, intake=IntakeSettings(max_page_pixels=20_000_000))


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> list[fuzz.Verdict]:
    workdir = tmp_path_factory.mktemp("fuzz")
    found = list(fuzz.run_cases(range(CASES), SEED, workdir, READING, workers=2, limit=CASE_LIMIT))
    return sorted(found, key=lambda v: v.number)


def _listed(verdicts: list[fuzz.Verdict]) -> str:
    return "\n".join(f"case {v.number} ({v.kind} of {v.seed_name}): {v.reason}" for v in verdicts[:20])


def test_every_case_was_tried_and_every_kind_of_damage_made(verdicts: list[fuzz.Verdict]) -> None:
    assert [v.number for v in verdicts] == list(range(CASES))
    assert {v.kind.split("+")[0] for v in verdicts} >= set(mutate.KINDS) - {"combined"}
    assert any("+" in v.kind for v in verdicts)


def test_no_exception_escapes_intake_or_page_reading(verdicts: list[fuzz.Verdict]) -> None:
    crashes = [v for v in verdicts if v.status == "crash"]
    assert not crashes, f"{len(crashes)} case(s) crashed:\n{_listed(crashes)}"


def test_no_case_runs_past_its_time(verdicts: list[fuzz.Verdict]) -> None:
    hangs = [v for v in verdicts if v.status == "hang"]
    assert not hangs, f"{len(hangs)} case(s) hung:\n{_listed(hangs)}"


def test_every_case_is_read_or_refused_with_a_reason(verdicts: list[fuzz.Verdict]) -> None:
    assert {v.status for v in verdicts} == {"read", "refused"}
    refused = [v for v in verdicts if v.status == "refused"]
    assert all(v.reason.strip() for v in refused)
    assert all(error.strip() for v in verdicts for error in v.page_errors)
    # Damage this varied is mostly repaired, but not always.
    assert len(refused) < len(verdicts) / 2


def test_reasons_do_not_name_the_file(verdicts: list[fuzz.Verdict]) -> None:
    """A file's name may be a patient's; qpdf puts the path first in every message."""
    named = [v for v in verdicts if "case.pdf" in v.reason or any("case.pdf" in e for e in v.page_errors)]
    assert not named, _listed(named)


def test_the_same_seed_makes_the_same_cases() -> None:
    assert mutate.case(7, SEED) == mutate.case(7, SEED)
    assert mutate.case(7, SEED).data != mutate.case(7, SEED + 1).data


def test_the_xmp_poison_is_read_from_a_repaired_copy_without_its_metadata(tmp_path: Path) -> None:
    source = tmp_path / "poison.pdf"
    source.write_bytes(mutate.xmp_poison_pdf())
    with pikepdf.open(source) as pdf, pytest.raises(pikepdf.PdfError, match="XMP metadata"):
        pdf.save(io.BytesIO())  # the trap itself

    intake = inspect_pdf(source, IntakeSettings(), 300)
    assert intake.warnings, "the poison must need qpdf's repair"
    target = tmp_path / "repaired.pdf"
    repaired_copy(source, target)

    assert source.read_bytes() == mutate.xmp_poison_pdf()
    with pikepdf.open(target) as repaired:
        assert "/Metadata" not in repaired.Root
        assert len(repaired.pages) == 1
