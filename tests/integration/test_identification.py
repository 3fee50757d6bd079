"""Batches cut at separator sheets, barcode labels, and the patient index, end to end."""

from __future__ import annotations

import csv
import json
import random

from pipeline.samples import labels
from pipeline.samples import scans as samples
from tests.conftest import invoke_cli, json_lines, run_cli, write_config


def page_of(doc, k=0, rng=None):
    return samples.render_page(list(doc.pages[k]), dpi=300, rng=rng)


def make(rng, doc_type, patient, **kw):
    return samples.make_document(rng, doc_type, patient, distractors=False, **kw)


def test_separator_sheets_split_a_batch_and_each_document_is_filed_on_its_own(tmp_path, config_path):
    rng = random.Random(1)
    a, b, c = (samples.make_patient(rng) for _ in range(3))
    first, second, third = (
        make(rng, "lab_result", a),
        make(rng, "progress_note", b, pages=2),
        make(rng, "consent_form", c),
    )
    sheet = labels.separator_sheet()
    images = [page_of(first), sheet, page_of(second, 0), page_of(second, 1), sheet, page_of(third)]
    samples.write_scanned_pdf(tmp_path / "batch.pdf", images, encoding="jpeg", dpi=(300, 300))
    result = invoke_cli(config_path, "ingest", str(tmp_path / "batch.pdf"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("split      batch.pdf into 3 documents")
    rows = sorted(json_lines(invoke_cli(config_path, "list", "--json").stdout), key=lambda r: r["source"]["pages"])
    assert [r["source"]["pages"] for r in rows] == [[1], [3, 4], [6]]
    assert [(r["status"], r["mrn"]) for r in rows] == [("filed", a.mrn), ("filed", b.mrn), ("filed", c.mrn)]
    assert [r["pages"] for r in rows] == [1, 2, 1]
    assert [r["doc_type"] for r in rows] == ["lab_result", "progress_note", "consent_form"]


def test_barcode_label_files_even_when_print_is_unreadable_and_conflicts_go_to_review(tmp_path, config_path):
    rng = random.Random(2)
    patient, other = samples.make_patient(rng), samples.make_patient(rng)
    no_print = make(rng, "radiology_report", None)
    label = labels.patient_label(patient.mrn, patient.name, patient.dob, "DataMatrix")
    labelled = labels.paste_label(page_of(no_print), label, (1500, 150))
    conflicting = labels.paste_label(
        page_of(make(rng, "lab_result", other)),
        labels.patient_label(patient.mrn, patient.name, patient.dob),
        (1400, 150),
    )
    samples.write_scanned_pdf(tmp_path / "labelled.pdf", [labelled], encoding="jpeg", dpi=(300, 300))
    samples.write_scanned_pdf(tmp_path / "conflict.pdf", [conflicting], encoding="jpeg", dpi=(300, 300))
    invoke_cli(config_path, "ingest", str(tmp_path / "labelled.pdf"), str(tmp_path / "conflict.pdf"), check=True)
    rows = {r["source"]["file"]: r for r in json_lines(invoke_cli(config_path, "list", "--json").stdout)}
    assert (rows["labelled.pdf"]["status"], rows["labelled.pdf"]["mrn"]) == ("filed", patient.mrn)
    assert rows["conflict.pdf"]["status"] == "review"
    assert rows["conflict.pdf"]["review_reason"] == f"barcode MRN {patient.mrn} conflicts with printed MRN {other.mrn}"


def test_roster_confirms_corrects_and_refuses(tmp_path):
    rng = random.Random(3)
    known, stranger = samples.make_patient(rng), samples.make_patient(rng)
    with open(tmp_path / "roster.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["MRN", "Last", "First", "Birth Date"])
        writer.writerow([known.mrn, known.last, known.first, known.dob])
    config_path = write_config(
        tmp_path,
        roster={
            "path": "roster.csv",
            "columns": {"mrn": "MRN", "last_name": "Last", "first_name": "First", "dob": "Birth Date"},
        },
    )
    for name, doc in (
        ("known.pdf", make(rng, "lab_result", known)),
        ("stranger.pdf", make(rng, "lab_result", stranger)),
    ):
        samples.write_born_digital_pdf(tmp_path / name, doc.pages)
    invoke_cli(config_path, "ingest", str(tmp_path / "known.pdf"), str(tmp_path / "stranger.pdf"), check=True)
    rows = {r["source"]["file"]: r for r in json_lines(invoke_cli(config_path, "list", "--json").stdout)}
    assert (rows["known.pdf"]["status"], rows["known.pdf"]["mrn"]) == ("filed", known.mrn)
    assert rows["stranger.pdf"]["review_reason"] == f"MRN {stranger.mrn} is not in the patient index"


def test_bad_roster_is_a_clear_error(tmp_path):
    (tmp_path / "roster.csv").write_text("id,surname\n1,X\n")
    config_path = write_config(tmp_path, roster={"path": "roster.csv"})
    samples.write_born_digital_pdf(tmp_path / "x.pdf", make(random.Random(4), "lab_result", None).pages)
    result = run_cli(config_path, "ingest", str(tmp_path / "x.pdf"))
    assert result.returncode == 1
    assert "roster" in result.stderr and "Traceback" not in result.stderr


def test_label_low_on_a_page_of_text_is_found_when_whole_pages_are_searched(tmp_path):
    rng = random.Random(5)
    patient = samples.make_patient(rng)
    page = labels.paste_label(
        page_of(make(rng, "radiology_report", None)),
        labels.patient_label(patient.mrn, patient.name, patient.dob),
        (1400, 2900),
    )
    samples.write_scanned_pdf(tmp_path / "low-label.pdf", [page], encoding="jpeg", dpi=(300, 300))
    found = {}
    for name, settings in (("header", {}), ("whole", {"whole_page": True})):
        (tmp_path / name).mkdir()
        config_path = write_config(tmp_path / name, barcodes=settings)
        invoke_cli(config_path, "ingest", str(tmp_path / "low-label.pdf"), check=True)
        (row,) = json_lines(invoke_cli(config_path, "list", "--json").stdout)
        sidecar = json.loads(invoke_cli(config_path, "show", row["doc_id"], "--json").stdout)
        found[name] = [b["value"] for b in sidecar["page_texts"][0]["barcodes"]]
    assert found == {"header": [], "whole": [patient.mrn]}
