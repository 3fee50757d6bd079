"""The printed Kodak-style separator sheet cuts a scanned batch, end to end (OCR included)."""

from __future__ import annotations

import random

from pipeline.samples import scans as samples
from pipeline.samples.separators import Scan, scanned_sheet
from tests.conftest import json_lines, run_cli


def test_printed_sheets_upside_down_in_a_g4_fax_batch_cut_it(tmp_path, config_path):
    rng = random.Random(5)
    a, b = samples.make_patient(rng), samples.make_patient(rng)
    first = samples.make_document(rng, "lab_result", a, distractors=False)
    second = samples.make_document(rng, "consent_form", b, distractors=False)
    pages = [
        samples.render_page(list(first.pages[0]), dpi=200, rng=rng),
        scanned_sheet(Scan(dpi=200, upside_down=True, skew_deg=0.8)),
        scanned_sheet(Scan(dpi=200, blur=1.0)),  # two in a row
        samples.render_page(list(second.pages[0]), dpi=200, rng=rng),
        scanned_sheet(Scan(dpi=200, page_size="a4")),  # the last page
    ]
    samples.write_scanned_pdf(tmp_path / "batch.pdf", pages, encoding="g4", dpi=(200, 200))
    result = run_cli(config_path, "ingest", str(tmp_path / "batch.pdf"))
    assert result.returncode == 0, result.stderr
    rows = sorted(json_lines(run_cli(config_path, "list", "--json").stdout), key=lambda r: r["source"]["pages"])
    assert [r["source"]["pages"] for r in rows] == [[1], [4]]
    assert [(r["status"], r["mrn"]) for r in rows] == [("filed", a.mrn), ("filed", b.mrn)]


def test_a_file_of_separator_sheets_only_archives_nothing_and_is_not_a_failure(tmp_path, config_path):
    pages = [scanned_sheet(Scan(dpi=200)), scanned_sheet(Scan(dpi=200, upside_down=True))]
    samples.write_scanned_pdf(tmp_path / "sheets.pdf", pages, encoding="g4", dpi=(200, 200))
    result = run_cli(config_path, "ingest", str(tmp_path / "sheets.pdf"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "skipped    sheets.pdf: holds only separator sheets (2 pages); nothing archived"
    assert "1 skipped" in result.stderr
    assert not json_lines(run_cli(config_path, "list", "--json").stdout)
    assert not json_lines(run_cli(config_path, "list", "--failed", "--json").stdout)
