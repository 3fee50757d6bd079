"""`medarchive ingest` end to end: generated scans in, filed and searchable documents out."""

from __future__ import annotations

import hashlib
import json
import random
import stat
import subprocess

import pytest
from PIL import Image

from pipeline.core.config import ExtractionSettings, FilingSettings
from pipeline.core.models import Decision
from pipeline.identify.decide import decide
from pipeline.identify.extract import extract_identifiers
from pipeline.pages.process import PageTask, process_page
from pipeline.pages.raster import despeckled
from pipeline.samples import scans as samples
from pipeline.samples.dust import speck_density
from tests.conftest import born_digital, document, invoke_cli, json_lines, run_cli, scanned, write_config

BAD_REASONS = {
    "empty": "empty file (0 bytes)",
    "not_pdf": "not a PDF",
    "truncated": "damaged PDF",
    "encrypted": "needs a password",
    "bomb": "decompression bomb",
}


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pdftotext(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """One ingest run over scans of every delivery kind; returns (config, inputs, truth, result)."""
    folder = tmp_path_factory.mktemp("ingest")
    config_path = write_config(folder)
    inputs = folder / "in"
    inputs.mkdir()
    rng = random.Random(42)
    patients = [samples.make_patient(rng) for _ in range(6)]
    plan = {
        "clean-300.pdf": ("discharge_summary", patients[0], "scan", {}),
        "noisy-2pages.pdf": ("lab_result", patients[1], "noisy", {"pages": 2}),
        "fax-204x98.pdf": ("consultation", patients[2], "fax", {}),
        "fax-204x196.pdf": ("radiology_report", patients[3], "fax_fine", {}),
        "bitonal-g4.pdf": ("operative_report", patients[4], "bitonal", {}),
        "born-digital.pdf": ("pathology_report", patients[5], "digital", {"pages": 3}),
        "two-mrns.pdf": ("progress_note", patients[0], "digital", {"conflicting_mrn": True}),
        "no-patient.pdf": ("consent_form", None, "digital", {}),
    }
    truth = {}
    for name, (doc_type, patient, style, options) in plan.items():
        doc = samples.make_document(rng, doc_type, patient, distractors=True, **options)
        samples.write_sample_pdf(inputs / name, doc, style, seed=len(truth))
        truth[name] = doc
    scanned(inputs / "scan-200dpi.pdf", document(77, "referral_letter"), dpi=200)
    truth["scan-200dpi.pdf"] = document(77, "referral_letter")
    before = {p.name: digest(p) for p in inputs.iterdir()}
    result = run_cli(config_path, "ingest", str(inputs))
    after = {p.name: digest(p) for p in inputs.iterdir()}
    assert before == after, "ingest must never modify its inputs"
    return config_path, inputs, truth, result


def rows_by_source(config_path) -> dict[str, dict]:
    return {r["source"]["file"]: r for r in json_lines(invoke_cli(config_path, "list", "--json", check=True).stdout)}


def test_every_input_is_filed_under_its_patient_or_queued(archive):
    config_path, _, truth, result = archive
    assert result.returncode == 0, result.stderr
    rows = rows_by_source(config_path)
    assert sorted(rows) == sorted(truth)
    for name, doc in truth.items():
        row = rows[name]
        if doc.expect == "filed":
            assert (row["status"], row["mrn"]) == ("filed", doc.patient.mrn), (name, row)
            assert row["path"].split("/archive/")[1].startswith(doc.patient.mrn + "/")
        else:
            assert row["status"] == "review" and row["mrn"] is None, (name, row)
    assert "conflicting MRNs" in rows["two-mrns.pdf"]["review_reason"]
    assert rows["no-patient.pdf"]["review_reason"] == "no MRN found on any page"


def test_identifiers_and_types_are_read(archive):
    config_path, _, truth, _ = archive
    rows = rows_by_source(config_path)
    for name in ("clean-300.pdf", "born-digital.pdf", "bitonal-g4.pdf"):
        doc = truth[name]
        assert rows[name]["patient_name"] == doc.patient.name
        assert rows[name]["dob"] == doc.patient.dob
        assert rows[name]["doc_date"] == doc.doc_date
    for name, doc in truth.items():
        assert rows[name]["doc_type"] == doc.doc_type, name


def test_list_json_has_the_documented_keys(archive):
    config_path, _, _, _ = archive
    row = next(iter(rows_by_source(config_path).values()))
    for key in (
        "doc_id",
        "status",
        "mrn",
        "patient_name",
        "dob",
        "doc_type",
        "doc_date",
        "pages",
        "path",
        "sha256",
        "review_reason",
        "source",
    ):
        assert key in row
    assert set(row["source"]) == {"file", "pages"}


def test_archived_pdf_keeps_every_page_and_is_searchable(archive):
    config_path, inputs, truth, _ = archive
    rows = rows_by_source(config_path)
    for name in ("noisy-2pages.pdf", "fax-204x98.pdf", "born-digital.pdf"):
        row = rows[name]
        assert row["pages"] == len(truth[name].pages) == row["source"]["pages"][-1]
        text = pdftotext(row["path"])
        assert truth[name].patient.mrn in text.replace(" ", "")
        assert digest(__import__("pathlib").Path(row["path"])) == row["sha256"]
    sidecar = json.loads(
        invoke_cli(config_path, "show", rows["noisy-2pages.pdf"]["doc_id"], "--json", check=True).stdout
    )
    assert [p["page"] for p in sidecar["page_texts"]] == [1, 2]
    assert all(p["source"] == "ocr" and p["text"] for p in sidecar["page_texts"])
    digital = json.loads(invoke_cli(config_path, "show", rows["born-digital.pdf"]["doc_id"], "--json").stdout)
    assert {p["source"] for p in digital["page_texts"]} == {"text-layer"}


def test_search_finds_documents_with_snippets_and_filters(archive):
    config_path, _, truth, _ = archive
    doc = truth["clean-300.pdf"]
    hits = json_lines(invoke_cli(config_path, "search", f"mrn:{doc.patient.mrn}", "--json", check=True).stdout)
    assert {h["doc_type"] for h in hits} >= {"discharge_summary"}
    for key in ("doc_id", "mrn", "patient_name", "doc_type", "doc_date", "status", "score", "snippet", "path"):
        assert key in hits[0]
    typed = json_lines(invoke_cli(config_path, "search", "", "--type", "lab_result", "--json").stdout)
    assert [h["doc_type"] for h in typed] == ["lab_result"]
    review = json_lines(invoke_cli(config_path, "search", "", "--status", "review", "--json").stdout)
    assert len(review) == 2
    dated = json_lines(
        invoke_cli(config_path, "search", "", "--from", doc.doc_date, "--to", doc.doc_date, "--json").stdout
    )
    assert doc.doc_date in {h["doc_date"] for h in dated}
    human = invoke_cli(config_path, "search", "discharge", check=True).stdout
    assert "**" in human


def test_same_bytes_again_are_duplicates_not_filed_twice(archive):
    config_path, inputs, truth, _ = archive
    again = invoke_cli(config_path, "ingest", str(inputs / "clean-300.pdf"))
    assert again.returncode == 0
    assert again.stdout.startswith("duplicate")
    assert len(rows_by_source(config_path)) == len(truth)


def test_reindex_rebuilds_the_same_index(archive):
    config_path, _, truth, _ = archive
    before = json_lines(invoke_cli(config_path, "search", "", "--limit", "100", "--json").stdout)
    assert "reindexed 9 document(s)" in invoke_cli(config_path, "reindex", check=True).stdout
    after = json_lines(invoke_cli(config_path, "search", "", "--limit", "100", "--json").stdout)
    assert sorted(h["doc_id"] for h in before) == sorted(h["doc_id"] for h in after)
    assert len(after) == len(truth)


def test_files_are_private(archive):
    config_path, _, _, _ = archive
    root = config_path.parent / "data"
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        elif not path.name.endswith("WRITELOCK"):
            assert mode == 0o600, path


def test_bad_inputs_are_set_aside_with_reasons_and_the_run_goes_on(tmp_path, config_path):
    kinds = samples.write_bad_inputs(tmp_path / "bad")
    good = born_digital(tmp_path / "bad" / "good.pdf", document(5, "lab_result"))
    before = {p.name: digest(p) for p in (tmp_path / "bad").iterdir()}
    result = run_cli(config_path, "ingest", str(tmp_path / "bad"))
    assert result.returncode == 2
    assert {p.name: digest(p) for p in (tmp_path / "bad").iterdir()} == before
    failed = {f["file"]: f["reason"] for f in json_lines(invoke_cli(config_path, "list", "--failed", "--json").stdout)}
    assert sorted(failed) == sorted(kinds)
    for name, kind in kinds.items():
        assert BAD_REASONS[kind] in failed[name], (name, failed[name])
        assert (config_path.parent / "data" / "failed").glob(f"*_{name}")
    assert [r["source"]["file"] for r in json_lines(invoke_cli(config_path, "list", "--json").stdout)] == [good.name]


def test_a_page_that_cannot_be_read_sends_the_document_to_review(tmp_path):
    config_path = write_config(tmp_path, ocr={"page_timeout_seconds": 0.01})
    path = scanned(tmp_path / "slow.pdf", document(6, "progress_note"))
    assert run_cli(config_path, "ingest", str(path)).returncode == 0
    (row,) = json_lines(invoke_cli(config_path, "list", "--json").stdout)
    assert row["status"] == "review" and row["pages"] == 1
    assert "could not be read" in row["review_reason"] and "timed out" in row["review_reason"]


def test_bad_config_names_the_key_and_exits_1(tmp_path):
    config_path = write_config(tmp_path, ocr={"dpii": 300})
    result = run_cli(config_path, "list")
    assert result.returncode == 1
    assert "ocr.dpii: unknown setting" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_each_type_is_classified_from_born_digital_text(tmp_path, config_path):
    rng = random.Random(9)
    for doc_type in samples.DOC_TYPES:
        doc = samples.make_document(rng, doc_type, samples.make_patient(rng), title=doc_type != "lab_result")
        born_digital(tmp_path / f"{doc_type}.pdf", doc)
    invoke_cli(config_path, "ingest", *[str(tmp_path / f"{t}.pdf") for t in samples.DOC_TYPES], check=True)
    got = {
        r["source"]["file"][:-4]: r["doc_type"] for r in json_lines(invoke_cli(config_path, "list", "--json").stdout)
    }
    assert got == {t: t for t in samples.DOC_TYPES}


# ---------------------------------------------------------------- dusty scans


def _page_image(**look: float) -> Image.Image:
    doc = samples.make_document(random.Random(5), "progress_note", samples.make_patient(random.Random(5)))
    return samples.render_page(list(doc.pages[0]), rng=random.Random(1), **look).convert("L")


def _dark_pixels(image: Image.Image) -> int:
    return sum(image.histogram()[:128])


def test_dusty_page_loses_its_specks_but_not_its_print():
    clean = _page_image(blur=0.8)
    dusty = _page_image(blur=0.8, noise=0.0015)
    cleaned = despeckled(dusty, 300)
    assert speck_density(dusty, 300) > 5 * speck_density(cleaned, 300)
    # The specks added about a tenth to the ink; what is left is the print, nearly all of it.
    assert 0.97 * _dark_pixels(clean) < _dark_pixels(cleaned) < 1.02 * _dark_pixels(clean)


@pytest.mark.parametrize("look", [{"blur": 0.5}, {}, {"blur": 0.8, "font_size_pt": 12}])
def test_clean_page_is_read_as_rendered(look):
    page = _page_image(**look)
    assert despeckled(page, 300) is page


def test_small_print_keeps_its_periods_and_dots():
    # 9-point print has dots small enough to be counted as specks; cleaning keeps them.
    page = _page_image(font_size_pt=9)
    assert _dark_pixels(despeckled(page, 300)) > 0.99 * _dark_pixels(page)


def test_thin_rules_survive_cleaning():
    # A form's rules two pixels wide are print, not dust, even on a dusty page.
    page = _page_image(blur=0.8, noise=0.0015)
    for top in range(600, 3000, 300):
        page.paste(0, (150, top, 2400, top + 2))
    cleaned = despeckled(page, 300)
    assert all(cleaned.getpixel((x, top)) < 64 for top in range(600, 3000, 300) for x in range(200, 2400, 50))


def test_mrn_on_a_dusty_scan_is_read_clearly_enough_to_file(tmp_path):
    # A noisy delivery whose MRN tesseract read at confidence 15 from the undespeckled
    # page ("Unit No. 54661017" with dust on it): sent to review instead of filed.
    doc = samples.make_corpus(72, seed=0)[59]
    pdf = tmp_path / "dusty.pdf"
    samples.write_sample_pdf(pdf, doc, "noisy", seed=59)
    page = process_page(PageTask(pdf, 1, True, 300, "eng", 120, 50))
    ids = extract_identifiers([(1, page.text)], ExtractionSettings())
    # Read once, so filed only where a single clear read may file (issue #25); every digit is clear.
    alone = FilingSettings(second_witness=False)
    assert decide([page], ids, alone) == Decision("filed", doc.patient.mrn, corroboration=("single_read",))
