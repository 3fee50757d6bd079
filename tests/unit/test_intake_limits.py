"""Intake refuses what would cost far more than any chart: a page tree that lists too many pages."""

from __future__ import annotations

import pikepdf
import pytest

from pipeline.core.config import IntakeSettings
from pipeline.core.errors import IntakeError
from pipeline.intake.vet import inspect_pdf


def _pdf_with_pages(path, count: int):
    with pikepdf.new() as pdf:
        for _ in range(count):
            pdf.add_blank_page(page_size=(612, 792))
        pdf.save(path)
    return path


def test_a_pdf_over_the_page_limit_is_refused_with_the_setting_to_change(tmp_path):
    path = _pdf_with_pages(tmp_path / "long.pdf", 3)
    assert inspect_pdf(path, IntakeSettings(max_pages=3), 300).page_count == 3
    with pytest.raises(IntakeError, match=r"3 pages, above the limit of 2; split it, or raise intake.max_pages"):
        inspect_pdf(path, IntakeSettings(max_pages=2), 300)
