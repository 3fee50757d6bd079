"""The typed sidecar reads what earlier versions wrote and writes it back unchanged."""

from __future__ import annotations

import json

import pytest

from pipeline.archive.sidecar import (
    HistoryEvent,
    Placement,
    Sidecar,
    read_sidecar,
    write_sidecar,
)

# A review-queue document later assigned, as schema 1 writes it (keys sorted on disk).
WRITTEN = {
    "schema": 1,
    "doc_id": "0123456789abcdef-1",
    "status": "filed",
    "mrn": "1234567",
    "patient_name": "DOE, JANE",
    "dob": "1970-01-02",
    "doc_type": "lab_report",
    "type_confidence": 0.812,
    "type_cues": ["title: Laboratory Report"],
    "doc_date": "2024-03-05",
    "pages": 2,
    "sha256": "ab" * 32,
    "path": "archive/1234567/2024-03-05_lab_report_0123456789abcdef-1.pdf",
    "review_reason": None,
    "suggested_mrn": "1234567",
    "corrections": ["MRN 1234S67 read as 1234567"],
    "source": {"file": "scan.pdf", "pages": [1, 2], "sha256": "cd" * 32, "label": None},
    "identifiers": {
        "mrn_candidates": [
            {
                "value": "1234567",
                "raw": "1234S67",
                "label": "MRN",
                "page_no": 1,
                "offset": 40,
                "confidence": 0.9,
                "source": "text",
                "corrected": True,
            }
        ],
        "name": "DOE, JANE",
        "dob": "1970-01-02",
        "doc_date": "2024-03-05",
    },
    "page_texts": [
        {
            "page": 1,
            "source": "ocr",
            "text": "LABORATORY REPORT",
            "ocr_seconds": 1.2,
            "rotation": 0,
            "mean_conf": 91.5,
            "error": None,
            "barcodes": [{"value": "1234567", "format": "Code128"}],
        },
        {
            "page": 2,
            "source": "text-layer",
            "text": "page two",
            "ocr_seconds": 0.0,
            "rotation": 90,
            "mean_conf": None,
            "error": None,
            "barcodes": [],
        },
    ],
    "history": [
        {"at": "2024-03-06T10:00:00+00:00", "by": "scanner", "action": "queued for review", "reason": "no MRN"},
        {
            "at": "2024-03-06T11:00:00+00:00",
            "by": "clerk",
            "action": "review.assign",
            "reason": None,
            "from": {"mrn": None, "doc_type": "lab_report", "status": "review"},
            "to": {"mrn": "1234567", "doc_type": "lab_report"},
        },
    ],
}


def test_a_schema_1_sidecar_round_trips_to_the_same_json():
    sidecar = Sidecar.from_json(json.loads(json.dumps(WRITTEN)))
    assert sidecar.to_json() == WRITTEN
    assert json.dumps(sidecar.to_json(), sort_keys=True) == json.dumps(WRITTEN, sort_keys=True)


def test_attributes_reach_every_nested_record():
    sidecar = Sidecar.from_json(WRITTEN)
    assert (sidecar.doc_id, sidecar.mrn, sidecar.pages, sidecar.source.file) == (
        "0123456789abcdef-1",
        "1234567",
        2,
        "scan.pdf",
    )
    assert sidecar.identifiers.mrn_candidates[0].raw == "1234S67"
    assert sidecar.page_texts[1].rotation == 90 and sidecar.page_texts[0].barcodes[0]["format"] == "Code128"
    assert sidecar.history[1].moved_from == Placement(None, "lab_report", "review")
    assert sidecar.since == "2024-03-06T10:00:00+00:00"
    assert sidecar.text == "LABORATORY REPORT\n\f\npage two"
    assert sidecar.type_source is None


def test_unknown_keys_are_kept_at_every_level():
    newer = json.loads(json.dumps(WRITTEN))
    newer["ehr_sent"] = {"fhir": "2024-03-07"}
    newer["source"]["scanner"] = "ward 3"
    newer["page_texts"][0]["skew"] = 0.4
    newer["history"][0]["host"] = "scan-01"
    newer["identifiers"]["encounter"] = "E1"
    assert Sidecar.from_json(newer).to_json() == newer


def test_type_source_is_written_only_when_set():
    sidecar = Sidecar.from_json({**WRITTEN, "type_source": "model, 0.93"})
    assert sidecar.type_source == "model, 0.93"
    assert sidecar.to_json()["type_source"] == "model, 0.93"
    assert "type_source" not in Sidecar.from_json(WRITTEN).to_json()


def test_an_older_sidecar_without_the_later_keys_still_reads():
    oldest = {
        k: v for k, v in WRITTEN.items() if k not in ("suggested_mrn", "corrections", "identifiers", "history", "pages")
    }
    sidecar = Sidecar.from_json(oldest)
    assert (sidecar.suggested_mrn, sidecar.corrections, sidecar.history, sidecar.pages) == (None, (), (), 0)
    assert sidecar.since is None


@pytest.mark.parametrize(
    "broken, error",
    [
        ({k: v for k, v in WRITTEN.items() if k != "doc_id"}, KeyError),
        ({**WRITTEN, "source": "scan.pdf"}, TypeError),
        ({**WRITTEN, "schema": 2}, ValueError),
        ([WRITTEN], TypeError),
    ],
)
def test_what_is_not_a_sidecar_is_refused(broken, error):
    with pytest.raises(error):
        Sidecar.from_json(broken)


def test_a_move_files_the_document_and_appends_its_history(tmp_path):
    queued = Sidecar.from_json(
        {**WRITTEN, "status": "review", "mrn": None, "review_reason": "no MRN", "history": WRITTEN["history"][:1]}
    )
    event = HistoryEvent(
        "2024-03-06T11:00:00+00:00",
        "clerk",
        "review.assign",
        None,
        Placement(None, "lab_report", "review"),
        Placement("1234567", "lab_report"),
    )
    moved = queued.moved(mrn="1234567", doc_type="lab_report", path=WRITTEN["path"], event=event)
    assert moved.to_json() == WRITTEN
    assert queued.status == "review"  # the record read is left as it was
    path = write_sidecar(tmp_path / "doc.json", moved)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert json.loads(path.read_text()) == WRITTEN and read_sidecar(path) == moved


def test_corroboration_and_candidates_are_written_only_when_set():
    sidecar = Sidecar.from_json({**WRITTEN, "corroboration": ["barcode", "patient_index:dob"]})
    assert sidecar.corroboration == ("barcode", "patient_index:dob")
    assert sidecar.to_json()["corroboration"] == ["barcode", "patient_index:dob"]
    older = Sidecar.from_json(WRITTEN)
    assert (older.corroboration, older.candidate_mrns) == ((), ())
    assert "corroboration" not in older.to_json() and "candidate_mrns" not in older.to_json()
    doubtful = Sidecar.from_json({**WRITTEN, "candidate_mrns": ["00482919", "00482913"]})
    assert doubtful.to_json()["candidate_mrns"] == ["00482919", "00482913"]
